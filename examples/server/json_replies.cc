#include "examples/server/json_replies.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/types/span.h"

namespace modelpool::server {

using Json = nlohmann::json;

std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::vector<float> Vector(const Embeddings& embeddings, int64_t row,
                          std::optional<int64_t> dimensions) {
  const absl::Span<const float> values = embeddings[row];
  if (!dimensions.has_value() || *dimensions >= static_cast<int64_t>(values.size())) {
    return std::vector<float>(values.begin(), values.end());
  }
  std::vector<float> cut(values.begin(), values.begin() + *dimensions);
  double norm = 0;
  for (float v : cut) norm += static_cast<double>(v) * v;
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (float& v : cut) v = static_cast<float>(v / norm);
  }
  return cut;
}

Json OpenAiEmbeddingsJson(const Embeddings& embeddings, const std::string& model, bool base64,
                          std::optional<int64_t> dimensions) {
  Json data = Json::array();
  for (int64_t i = 0; i < embeddings.size(); ++i) {
    const std::vector<float> vector = Vector(embeddings, i, dimensions);
    Json item = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      // The bytes of float32 values as this (little-endian) host holds them, as OpenAI sends.
      std::string bytes(vector.size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), vector.data(), bytes.size());
      item["embedding"] = absl::Base64Escape(bytes);
    } else {
      item["embedding"] = vector;
    }
    data.push_back(std::move(item));
  }
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", model},
          {"usage",
           {{"prompt_tokens", embeddings.num_tokens}, {"total_tokens", embeddings.num_tokens}}}};
}

namespace {

Json UnixSeconds(absl::Time time) {
  if (time == absl::InfinitePast() || time == absl::InfiniteFuture()) return nullptr;
  return absl::ToDoubleSeconds(time - absl::UnixEpoch());
}

}  // namespace

Json JobJson(const JobInfo& job) {
  Json json = {
      {"id", job.id},
      {"model", job.model_id},
      {"status", std::string(JobStateName(job.state))},
      {"priority", std::string(PriorityName(job.priority))},
      {"created_at", UnixSeconds(job.at(JobState::kPending))},
      {"queued_at", UnixSeconds(job.at(JobState::kQueued))},
      {"started_at", UnixSeconds(job.at(JobState::kRunning))},
      {"finished_at", IsFinal(job.state) ? UnixSeconds(job.at(job.state)) : Json(nullptr)}};
  if (job.device.has_value()) json["device"] = job.device->ToString();
  if (IsFinal(job.state) && !job.status.ok()) json["error"] = std::string(job.status.message());
  return json;
}

Json StatsJson(const WorkerPoolStats& stats) {
  Json devices = Json::array();
  for (const DeviceMemoryStats& device : stats.devices) {
    Json models = Json::array();
    for (const DeviceMemoryStats::Model& model : device.models) {
      models.push_back({{"model", model.model}, {"instances", model.instances}});
    }
    devices.push_back({{"device", device.device.ToString()},
                       {"budget_bytes", device.budget_bytes},
                       {"used_bytes", device.used_bytes},
                       {"free_bytes", device.free_bytes},
                       {"device_free_bytes", device.device_free_bytes},
                       {"loaded", std::move(models)}});
  }
  Json models = Json::array();
  for (const ModelStats& model : stats.models) {
    Json loaded = Json::array();
    for (const ModelStats::Placement& placement : model.loaded) {
      loaded.push_back({{"device", placement.device.ToString()},
                        {"instances", placement.instances},
                        {"idle", placement.idle}});
    }
    models.push_back({{"model", model.model_id},
                      {"loaded", std::move(loaded)},
                      {"workers", model.workers},
                      {"queued", model.queued},
                      {"running", model.running},
                      {"submitted", model.submitted},
                      {"succeeded", model.succeeded},
                      {"failed", model.failed},
                      {"expired", model.expired},
                      {"cancelled", model.cancelled},
                      {"rejected", model.rejected},
                      {"loads", model.loads},
                      {"evictions", model.evictions},
                      {"switches", model.switches}});
  }
  Json workers = Json::array();
  for (const WorkerStats& worker : stats.workers) {
    workers.push_back({{"id", worker.id},
                       {"device", worker.device.ToString()},
                       {"model", worker.model_id},
                       {"state", WorkerStateName(worker.state)},
                       {"completed", worker.completed},
                       {"errors", worker.errors}});
  }
  return {{"devices", std::move(devices)},
          {"models", std::move(models)},
          {"workers", std::move(workers)},
          {"queue_depth", stats.queue_depth}};
}

}  // namespace modelpool::server
