// Arbitrary bytes as the body of a modelpool-server request (examples/server/requests.h):
// refused with InvalidArgument or OutOfRange, or read into values within the limits. The first
// byte chooses the reader: 0 OpenAI embeddings, 1 TEI embed, 2 summarize, 3 a job, 4 a job id.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/strings/string_view.h"
#include "examples/server/requests.h"
#include "tests/fuzz/fuzz_files.h"

namespace {

using modelpool::fuzz::Check;

const modelpool::server::RequestLimits kLimits{
    .max_inputs = 16, .max_ids_per_input = 64, .max_summaries = 4};

void CheckRefusal(const absl::Status& status) {
  Check(status.code() == absl::StatusCode::kInvalidArgument ||
            status.code() == absl::StatusCode::kOutOfRange,
        "InvalidArgument or OutOfRange");
  const int http = modelpool::server::HttpStatusOf(status);
  Check(http == 400 || http == 413, "400 or 413");
}

template <typename T>
bool Refused(const absl::StatusOr<T>& parsed) {
  if (parsed.ok()) return false;
  CheckRefusal(parsed.status());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const unsigned char selector = modelpool::fuzz::TakeSelector(&input);
  const absl::string_view body(input.data(), input.size());
  switch (selector % 5) {
    case 0: {
      auto request = modelpool::server::ParseOpenAiEmbeddings(body, kLimits);
      if (Refused(request)) break;
      const auto& input = request->input;
      Check(input.texts.empty() != input.token_ids.empty(), "texts or ids, not both");
      Check(input.size() >= 1 && input.size() <= 16, "inputs within the limit");
      for (const auto& row : input.token_ids) {
        Check(!row.empty() && row.size() <= 64, "rows within the limit");
        for (int32_t id : row) Check(id >= 0, "ids are not negative");
      }
      Check(!request->dimensions.has_value() || *request->dimensions >= 1, "dimensions >= 1");
      break;
    }
    case 1: {
      auto request = modelpool::server::ParseTeiEmbed(body, kLimits);
      if (!Refused(request)) {
        Check(!request->inputs.empty() && request->inputs.size() <= 16, "inputs within the limit");
      }
      break;
    }
    case 2: {
      auto request = modelpool::server::ParseHfSummarize(body, kLimits);
      if (!Refused(request)) {
        Check(!request->inputs.empty() && request->inputs.size() <= 4, "inputs within the limit");
        Check(!request->parameters.num_beams.has_value() || *request->parameters.num_beams >= 1,
              "beams >= 1");
      }
      break;
    }
    case 3: {
      auto request = modelpool::server::ParseJob(body, kLimits);
      if (!Refused(request)) {
        Check(!request->input.empty(), "a job has input");
        Check(!request->deadline_ms.has_value() || *request->deadline_ms >= 0, "deadline >= 0");
      }
      break;
    }
    default: {
      auto id = modelpool::server::ParseJobId(body);
      Check(id.ok() ? *id > 0 : id.status().code() == absl::StatusCode::kNotFound,
            "a positive id, or NotFound");
    }
  }
  return 0;
}
