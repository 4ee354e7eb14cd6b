#include "examples/server/service.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/server/json_replies.h"
#include "modelpool/version.h"

namespace modelpool::server {
namespace {

using Json = nlohmann::json;

Reply JsonReply(const Json& json, int status = 200) { return {status, Dump(json)}; }

GenerationOptions Generation(const SummarizeParameters& parameters) {
  GenerationOptions generation;
  generation.max_new_tokens = parameters.max_new_tokens;
  generation.min_new_tokens = parameters.min_new_tokens;
  generation.num_beams = parameters.num_beams;
  generation.no_repeat_ngram_size = parameters.no_repeat_ngram_size;
  generation.length_penalty = parameters.length_penalty;
  return generation;
}

int64_t Bytes(const std::vector<std::string>& texts) {
  int64_t bytes = 0;
  for (const std::string& text : texts) bytes += static_cast<int64_t>(text.size());
  return bytes;
}

Json SummariesJson(const std::vector<std::string>& summaries) {
  Json json = Json::array();
  for (const std::string& summary : summaries) json.push_back({{"summary_text", summary}});
  return json;
}

}  // namespace

Reply ErrorReply(const absl::Status& status) {
  Reply reply;
  reply.status = HttpStatusOf(status);
  reply.body = ErrorBody(reply.status, status.message());
  if (reply.status == 429 || reply.status == 503) reply.retry_after_s = 1;
  return reply;
}

absl::StatusOr<std::unique_ptr<Service>> Service::Create(std::vector<ServedModel> models,
                                                         WorkerPoolOptions pool_options,
                                                         ServiceOptions options) {
  std::unique_ptr<Service> service(new Service(std::move(models), options));
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(std::move(pool_options));
  if (!pool.ok()) return pool.status();
  service->pool_ = *std::move(pool);
  for (const ServedModel& model : service->models_) {
    const absl::Status registered =
        model.embedder != nullptr
            ? service->pool_->RegisterModel<EmbeddingModel>(model.name, model.embedder)
            : service->pool_->RegisterModel<SummarizationModel>(model.name, model.summarizer);
    if (!registered.ok()) return registered;
  }
  absl::StatusOr<std::unique_ptr<PoolMetrics>> metrics = PoolMetrics::Create(*service->pool_);
  if (!metrics.ok()) return metrics.status();
  service->metrics_ = *std::move(metrics);
  return service;
}

Service::Service(std::vector<ServedModel> models, ServiceOptions options)
    : models_(std::move(models)), options_(options) {}

Service::~Service() {
  metrics_.reset();  // stops listening before the pool goes
}

absl::Status Service::Preload() {
  for (const ServedModel& model : models_) {
    const absl::Status loaded = pool_->PreloadModel(model.name, 1);
    if (!loaded.ok()) {
      absl::MutexLock lock(&mu_);
      not_ready_ = absl::StrCat(model.name, ": ", loaded.message());
      return loaded;
    }
  }
  ready_ = true;
  return absl::OkStatus();
}

void Service::Shutdown(absl::Duration drain) {
  stopping_ = true;
  pool_->Shutdown(drain);
}

absl::StatusOr<const ServedModel*> Service::Find(const std::string* name, bool embedding) const {
  const char* kind = embedding ? "an embedding" : "a summarization";
  for (const ServedModel& model : models_) {
    const bool is_embedding = model.embedder != nullptr;
    if (name == nullptr && is_embedding == embedding) return &model;
    if (name != nullptr && model.name == *name) {
      if (is_embedding != embedding) {
        return absl::InvalidArgumentError(
            absl::StrCat("model '", *name, "' is not ", kind, " model"));
      }
      return &model;
    }
  }
  std::vector<std::string> names;
  for (const ServedModel& model : models_) names.push_back(model.name);
  if (name == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no ", kind, " model is served (models: ", absl::StrJoin(names, ", "), ")"));
  }
  return absl::NotFoundError(absl::StrCat("model '", name->substr(0, 200),
                                          "' is not served (models: ", absl::StrJoin(names, ", "),
                                          ")"));
}

SubmitOptions Service::Submission(int64_t tokens) const {
  SubmitOptions submit;
  submit.deadline = absl::Now() + options_.queue_timeout;
  submit.tokens = tokens;
  return submit;
}

Reply Service::OpenAiEmbeddings(absl::string_view body) {
  absl::StatusOr<OpenAiEmbeddingsRequest> request = ParseOpenAiEmbeddings(body, options_.limits);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<const ServedModel*> model = Find(&request->model, /*embedding=*/true);
  if (!model.ok()) return ErrorReply(model.status());
  if (request->dimensions.has_value() && *request->dimensions > (*model)->embedder->dimension()) {
    return ErrorReply(absl::InvalidArgumentError(
        absl::StrCat("'dimensions' is ", *request->dimensions, " but ", request->model,
                     " gives vectors of ", (*model)->embedder->dimension())));
  }
  EmbedRequest embed{.texts = std::move(request->input.texts),
                     .token_ids = std::move(request->input.token_ids)};
  absl::StatusOr<Embeddings> out =
      pool_->Submit(request->model, std::move(embed), Submission(0)).get();
  if (!out.ok()) return ErrorReply(out.status());
  return JsonReply(
      OpenAiEmbeddingsJson(*out, request->model, request->base64, request->dimensions));
}

Reply Service::OpenAiModels() const {
  Json data = Json::array();
  for (const ServedModel& model : models_) {
    data.push_back(
        {{"id", model.name}, {"object", "model"}, {"created", 0}, {"owned_by", "modelpool"}});
  }
  return JsonReply({{"object", "list"}, {"data", std::move(data)}});
}

Reply Service::TeiEmbed(absl::string_view body) {
  absl::StatusOr<TeiEmbedRequest> request = ParseTeiEmbed(body, options_.limits);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<const ServedModel*> model =
      Find(request->model.has_value() ? &*request->model : nullptr, /*embedding=*/true);
  if (!model.ok()) return ErrorReply(model.status());
  EmbedRequest embed{.texts = std::move(request->inputs)};
  embed.options.normalize = request->normalize;
  absl::StatusOr<Embeddings> out =
      pool_->Submit((*model)->name, std::move(embed), Submission(0)).get();
  if (!out.ok()) return ErrorReply(out.status());
  if (!request->truncate && !out->truncated_rows.empty()) {
    return ErrorReply(absl::OutOfRangeError(absl::StrCat(
        "input ", out->truncated_rows.front(), " is longer than ",
        (*model)->embedder->max_seq_length(), " tokens; send \"truncate\": true to cut it")));
  }
  Json vectors = Json::array();
  for (int64_t i = 0; i < out->size(); ++i) vectors.push_back(Vector(*out, i, std::nullopt));
  return JsonReply(vectors);
}

Reply Service::TeiInfo() const {
  absl::StatusOr<const ServedModel*> model = Find(nullptr, /*embedding=*/true);
  if (!model.ok()) return ErrorReply(model.status());
  return JsonReply({{"model_id", (*model)->name},
                    {"model_type", {{"embedding", {{"pooling", "model"}}}}},
                    {"max_input_length", (*model)->embedder->max_seq_length()},
                    {"max_client_batch_size", options_.limits.max_inputs},
                    {"dimension", (*model)->embedder->dimension()},
                    {"version", MODELPOOL_VERSION_STRING}});
}

Reply Service::HfSummarize(absl::string_view body) {
  absl::StatusOr<HfSummarizeRequest> request = ParseHfSummarize(body, options_.limits);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<const ServedModel*> model =
      Find(request->model.has_value() ? &*request->model : nullptr, /*embedding=*/false);
  if (!model.ok()) return ErrorReply(model.status());
  const int64_t bytes = Bytes(request->inputs);
  SummarizeRequest summarize{std::move(request->inputs), Generation(request->parameters)};
  absl::StatusOr<std::vector<std::string>> out =
      pool_->Submit((*model)->name, std::move(summarize), Submission(bytes / 4 + 1)).get();
  if (!out.ok()) return ErrorReply(out.status());
  return JsonReply(SummariesJson(*out));
}

absl::Status Service::Keep(JobId id, Job job) {
  const auto ended = [](const auto& entry) {
    const auto ready = [](const auto& future) {
      return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    };
    return entry.second.embedding ? ready(entry.second.embeddings) : ready(entry.second.summaries);
  };
  absl::MutexLock lock(&mu_);
  auto it = jobs_.begin();  // ids grow: the oldest first
  while (static_cast<int>(jobs_.size()) >= options_.max_jobs ||
         kept_inputs_ + job.inputs > options_.max_kept_inputs) {
    it = std::find_if(it, jobs_.end(), ended);
    if (it == jobs_.end()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many jobs are pending (at most ", options_.max_jobs, " jobs and ",
                       options_.max_kept_inputs, " inputs are kept)"));
    }
    kept_inputs_ -= it->second.inputs;
    it = jobs_.erase(it);
  }
  kept_inputs_ += job.inputs;
  jobs_.emplace(id, std::move(job));
  return absl::OkStatus();
}

Reply Service::SubmitJob(absl::string_view body) {
  absl::StatusOr<JobRequest> request = ParseJob(body, options_.limits);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<Priority> priority = ParsePriority(request->priority);
  if (!priority.ok()) return ErrorReply(priority.status());
  bool embedding = true;
  absl::StatusOr<const ServedModel*> model = Find(&request->model, embedding);
  if (!model.ok() && model.status().code() == absl::StatusCode::kInvalidArgument) {
    embedding = false;
    model = Find(&request->model, embedding);
  }
  if (!model.ok()) return ErrorReply(model.status());
  SubmitOptions submit;
  submit.priority_class = *priority;
  submit.tokens = Bytes(request->input) / 4 + 1;
  if (request->deadline_ms.has_value()) {
    submit.deadline = absl::Now() + absl::Milliseconds(*request->deadline_ms);
  }
  Job job;
  job.embedding = embedding;
  job.inputs = static_cast<int64_t>(request->input.size());
  JobId id = 0;
  if (embedding) {
    JobHandle<Embeddings> handle =
        pool_->SubmitJob(request->model, EmbedRequest{.texts = std::move(request->input)}, submit);
    id = handle.id;
    job.embeddings = handle.result.share();
  } else {
    JobHandle<std::vector<std::string>> handle = pool_->SubmitJob(
        request->model,
        SummarizeRequest{std::move(request->input), Generation(request->parameters)}, submit);
    id = handle.id;
    job.summaries = handle.result.share();
  }
  if (absl::Status kept = Keep(id, job); !kept.ok()) {
    (void)pool_->Cancel(id);
    return ErrorReply(kept);
  }
  absl::StatusOr<JobInfo> info = pool_->Poll(id);
  if (!info.ok()) return ErrorReply(info.status());
  if (info->state == JobState::kFailed && info->at(JobState::kRunning) == absl::InfinitePast()) {
    return ErrorReply(info->status);  // refused at submission: a full queue, a shutdown
  }
  return JsonReply({{"id", id}, {"status", std::string(JobStateName(info->state))}}, 202);
}

Reply Service::GetJob(absl::string_view text) {
  absl::StatusOr<uint64_t> id = ParseJobId(text);
  if (!id.ok()) return ErrorReply(id.status());
  Job job;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(*id);
    if (it == jobs_.end()) return ErrorReply(absl::NotFoundError(absl::StrCat("no job ", *id)));
    job = it->second;
  }
  absl::StatusOr<JobInfo> info = pool_->Poll(*id);
  if (!info.ok()) return ErrorReply(info.status());
  Json json = JobJson(*info);
  if (info->state == JobState::kSucceeded) {
    if (job.embedding) {
      const absl::StatusOr<Embeddings>& out = job.embeddings.get();
      if (out.ok())
        json["result"] = OpenAiEmbeddingsJson(*out, info->model_id, false, std::nullopt);
    } else {
      const absl::StatusOr<std::vector<std::string>>& out = job.summaries.get();
      if (out.ok()) json["result"] = SummariesJson(*out);
    }
  }
  return JsonReply(json);
}

Reply Service::CancelJob(absl::string_view text) {
  absl::StatusOr<uint64_t> id = ParseJobId(text);
  if (!id.ok()) return ErrorReply(id.status());
  {
    absl::MutexLock lock(&mu_);
    if (!jobs_.contains(*id)) return ErrorReply(absl::NotFoundError(absl::StrCat("no job ", *id)));
  }
  const absl::Status cancelled = pool_->Cancel(*id);
  if (cancelled.code() == absl::StatusCode::kFailedPrecondition) {
    Reply reply = ErrorReply(cancelled);
    reply.status = 409;
    reply.body = ErrorBody(409, cancelled.message());
    return reply;
  }
  if (!cancelled.ok()) return ErrorReply(cancelled);
  return JsonReply({{"id", *id}, {"status", "cancelled"}});
}

Reply Service::Stats() const { return JsonReply(StatsJson(pool_->Stats())); }

Reply Service::Health() const { return JsonReply({{"status", "ok"}}); }

Reply Service::Ready() const {
  if (stopping_) return ErrorReply(absl::UnavailableError("the server is shutting down"));
  if (!ready_) {
    absl::MutexLock lock(&mu_);
    return ErrorReply(absl::UnavailableError(not_ready_));
  }
  return JsonReply({{"status", "ready"}});
}

Reply Service::Metrics() const {
  return {200, metrics_->TextExposition(), "text/plain; version=0.0.4; charset=utf-8"};
}

}  // namespace modelpool::server
