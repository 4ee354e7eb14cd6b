#ifndef MODELPOOL_EXAMPLES_SERVER_JSON_REPLIES_H_
#define MODELPOOL_EXAMPLES_SERVER_JSON_REPLIES_H_

// The JSON bodies of modelpool-server's replies, built from the SDK's results.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "modelpool/models/embedding_model.h"
#include "modelpool/workers/job.h"
#include "modelpool/workers/worker_pool_stats.h"

namespace modelpool::server {

// `json` as text; strings that are not valid UTF-8 (a summary, an echoed input) get U+FFFD.
std::string Dump(const nlohmann::json& json);

// Row `row` of `embeddings`, cut to its first `dimensions` values and scaled back to unit length
// when `dimensions` is set (as OpenAI's `dimensions` does).
std::vector<float> Vector(const Embeddings& embeddings, int64_t row,
                          std::optional<int64_t> dimensions);

// OpenAI's embeddings reply: `object`, `data[].embedding` (floats, or base64 of little-endian
// float32), `data[].index`, `model`, `usage`.
nlohmann::json OpenAiEmbeddingsJson(const Embeddings& embeddings, const std::string& model,
                                    bool base64, std::optional<int64_t> dimensions);

// A job as `GET /jobs/{id}` shows it; times are Unix seconds, null for states not reached.
nlohmann::json JobJson(const JobInfo& job);

// `GET /stats`: devices, models, workers and the queue.
nlohmann::json StatsJson(const WorkerPoolStats& stats);

}  // namespace modelpool::server

#endif  // MODELPOOL_EXAMPLES_SERVER_JSON_REPLIES_H_
