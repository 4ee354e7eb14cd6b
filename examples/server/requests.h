#ifndef MODELPOOL_EXAMPLES_SERVER_REQUESTS_H_
#define MODELPOOL_EXAMPLES_SERVER_REQUESTS_H_

// The bodies of modelpool-server's requests, read from untrusted JSON into plain structs and
// checked against the server's limits. No libtorch, so that it is fuzzed on its own. Every
// failure is a Status whose code says the HTTP status (see `HttpStatusOf`): InvalidArgument for
// malformed JSON, wrong types or values, OutOfRange for too many inputs.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace modelpool::server {

struct RequestLimits {
  // Inputs (texts or rows of ids) in one request.
  int64_t max_inputs = 2048;
  // Ids in one row of token ids.
  int64_t max_ids_per_input = 1 << 16;
  // Texts of /summarize and job requests.
  int64_t max_summaries = 64;
};

// What a request gives as its input: texts, or rows of token ids (OpenAI's embeddings only).
struct Inputs {
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> token_ids;
  size_t size() const { return texts.empty() ? token_ids.size() : texts.size(); }
};

// POST /v1/embeddings (OpenAI).
struct OpenAiEmbeddingsRequest {
  std::string model;
  Inputs input;
  bool base64 = false;
  std::optional<int64_t> dimensions;
};
absl::StatusOr<OpenAiEmbeddingsRequest> ParseOpenAiEmbeddings(absl::string_view body,
                                                              const RequestLimits& limits);

// POST /embed (text-embeddings-inference). `model` is the server's only embedding model unless
// the body names another.
struct TeiEmbedRequest {
  std::optional<std::string> model;
  std::vector<std::string> inputs;
  bool normalize = true;
  bool truncate = false;
};
absl::StatusOr<TeiEmbedRequest> ParseTeiEmbed(absl::string_view body, const RequestLimits& limits);

// POST /summarize (Hugging Face inference).
struct SummarizeParameters {
  std::optional<int> max_new_tokens, min_new_tokens, num_beams, no_repeat_ngram_size;
  std::optional<double> length_penalty;
};
struct HfSummarizeRequest {
  std::optional<std::string> model;
  std::vector<std::string> inputs;
  SummarizeParameters parameters;
};
absl::StatusOr<HfSummarizeRequest> ParseHfSummarize(absl::string_view body,
                                                    const RequestLimits& limits);

// POST /jobs.
struct JobRequest {
  std::string model;
  std::vector<std::string> input;
  std::string priority = "normal";
  std::optional<int64_t> deadline_ms;
  SummarizeParameters parameters;  // summarization models only
};
absl::StatusOr<JobRequest> ParseJob(absl::string_view body, const RequestLimits& limits);

// The id of /jobs/{id}: a positive decimal integer that fits 64 bits.
absl::StatusOr<uint64_t> ParseJobId(absl::string_view text);

// The HTTP status that a Status from parsing or from the SDK answers with: 400 InvalidArgument
// and FailedPrecondition, 401 Unauthenticated, 404 NotFound, 413 OutOfRange, 429
// ResourceExhausted, 503 Unavailable and Cancelled, 504 DeadlineExceeded, else 500.
int HttpStatusOf(const absl::Status& status);

// Whether `given` equals `expected`, in a time that depends only on their lengths (not on
// where they first differ), for API keys.
bool ConstantTimeEquals(absl::string_view given, absl::string_view expected);

// The OpenAI error body: {"error": {"message", "type", "code"}}.
std::string ErrorBody(int http_status, absl::string_view message);

}  // namespace modelpool::server

#endif  // MODELPOOL_EXAMPLES_SERVER_REQUESTS_H_
