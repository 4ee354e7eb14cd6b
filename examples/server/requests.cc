#include "examples/server/requests.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lib/models/formats/json_file.h"

namespace modelpool::server {
namespace {

using Json = nlohmann::json;

absl::StatusOr<Json> ParseObject(absl::string_view body) {
  absl::StatusOr<Json> json = ParseJson(std::string_view(body.data(), body.size()), "the body");
  if (!json.ok()) return json.status();
  if (!json->is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  return json;
}

const char* TypeName(const Json& json) { return json.type_name(); }

absl::Status WrongType(absl::string_view field, absl::string_view want, const Json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", field, "' must be ", want, ", not ", TypeName(got)));
}

absl::StatusOr<std::string> String(const Json& object, absl::string_view field) {
  auto it = object.find(std::string(field));
  if (it == object.end())
    return absl::InvalidArgumentError(absl::StrCat("'", field, "' is missing"));
  if (!it->is_string()) return WrongType(field, "a string", *it);
  return it->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> OptionalString(const Json& object,
                                                          absl::string_view field) {
  auto it = object.find(std::string(field));
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return WrongType(field, "a string", *it);
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<bool> Bool(const Json& object, absl::string_view field, bool otherwise) {
  auto it = object.find(std::string(field));
  if (it == object.end() || it->is_null()) return otherwise;
  if (!it->is_boolean()) return WrongType(field, "true or false", *it);
  return it->get<bool>();
}

// An integer in [min, max], or nullopt when absent.
absl::StatusOr<std::optional<int64_t>> Integer(const Json& object, absl::string_view field,
                                               int64_t min, int64_t max) {
  auto it = object.find(std::string(field));
  if (it == object.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return WrongType(field, "an integer", *it);
  // nlohmann keeps numbers >= 0 unsigned, so that values past int64_t's range compare right.
  const bool in_range = it->is_number_unsigned()
                            ? min <= 0 || it->get<uint64_t>() >= static_cast<uint64_t>(min)
                            : it->get<int64_t>() >= min;
  const bool below_max = it->is_number_unsigned()
                             ? it->get<uint64_t>() <= static_cast<uint64_t>(max)
                             : it->get<int64_t>() <= max;
  if (!in_range || !below_max) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", field, "' must lie in [", min, ", ", max, "]"));
  }
  const int64_t value = it->get<int64_t>();
  return std::optional<int64_t>(value);
}

absl::Status CheckCount(absl::string_view field, size_t count, int64_t max) {
  if (count == 0) return absl::InvalidArgumentError(absl::StrCat("'", field, "' is empty"));
  if (static_cast<int64_t>(count) > max) {
    return absl::OutOfRangeError(
        absl::StrCat("'", field, "' holds ", count, " inputs; at most ", max, " are allowed"));
  }
  return absl::OkStatus();
}

// A string or a non-empty array of strings.
absl::StatusOr<std::vector<std::string>> Texts(const Json& object, absl::string_view field,
                                               int64_t max) {
  auto it = object.find(std::string(field));
  if (it == object.end())
    return absl::InvalidArgumentError(absl::StrCat("'", field, "' is missing"));
  if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
  if (!it->is_array()) return WrongType(field, "a string or an array of strings", *it);
  if (absl::Status count = CheckCount(field, it->size(), max); !count.ok()) return count;
  std::vector<std::string> texts;
  texts.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& text = (*it)[i];
    if (!text.is_string()) return WrongType(absl::StrCat(field, "[", i, "]"), "a string", text);
    texts.push_back(text.get<std::string>());
  }
  return texts;
}

absl::StatusOr<SummarizeParameters> Parameters(const Json& object) {
  SummarizeParameters parameters;
  auto it = object.find("parameters");
  if (it == object.end() || it->is_null()) return parameters;
  if (!it->is_object()) return WrongType("parameters", "an object", *it);
  struct IntField {
    const char* name;
    std::optional<int>* into;
    int64_t min, max;
  };
  const IntField fields[] = {
      {"max_new_tokens", &parameters.max_new_tokens, 1, 1 << 16},
      {"min_new_tokens", &parameters.min_new_tokens, 0, 1 << 16},
      {"num_beams", &parameters.num_beams, 1, 64},
      {"no_repeat_ngram_size", &parameters.no_repeat_ngram_size, 0, 1 << 16}};
  for (const IntField& field : fields) {
    absl::StatusOr<std::optional<int64_t>> value = Integer(*it, field.name, field.min, field.max);
    if (!value.ok()) return value.status();
    if (value->has_value()) *field.into = static_cast<int>(**value);
  }
  auto penalty = it->find("length_penalty");
  if (penalty != it->end() && !penalty->is_null()) {
    if (!penalty->is_number()) return WrongType("length_penalty", "a number", *penalty);
    const double value = penalty->get<double>();
    if (!(value >= -100 && value <= 100)) {
      return absl::InvalidArgumentError("'length_penalty' must lie in [-100, 100]");
    }
    parameters.length_penalty = value;
  }
  return parameters;
}

}  // namespace

absl::StatusOr<OpenAiEmbeddingsRequest> ParseOpenAiEmbeddings(absl::string_view body,
                                                              const RequestLimits& limits) {
  absl::StatusOr<Json> json = ParseObject(body);
  if (!json.ok()) return json.status();
  OpenAiEmbeddingsRequest request;
  absl::StatusOr<std::string> model = String(*json, "model");
  if (!model.ok()) return model.status();
  request.model = *std::move(model);
  auto input = json->find("input");
  if (input == json->end()) return absl::InvalidArgumentError("'input' is missing");
  if (input->is_string()) {
    request.input.texts.push_back(input->get<std::string>());
  } else if (!input->is_array()) {
    return WrongType("input", "a string or an array", *input);
  } else {
    if (absl::Status count = CheckCount("input", input->size(), limits.max_inputs); !count.ok()) {
      return count;
    }
    // An array of strings, an array of ids (one input), or an array of arrays of ids.
    const bool one_row_of_ids = (*input)[0].is_number();
    if (one_row_of_ids) request.input.token_ids.emplace_back();
    for (size_t i = 0; i < input->size(); ++i) {
      const Json& item = (*input)[i];
      const std::string where = absl::StrCat("input[", i, "]");
      if (one_row_of_ids) {
        if (!item.is_number_integer() || item.get<int64_t>() < 0 ||
            item.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
          return absl::InvalidArgumentError(absl::StrCat("'", where, "' must be a token id"));
        }
        if (static_cast<int64_t>(i) >= limits.max_ids_per_input) {
          return absl::OutOfRangeError(
              absl::StrCat("'input' holds more than ", limits.max_ids_per_input, " ids"));
        }
        request.input.token_ids.back().push_back(item.get<int32_t>());
      } else if (item.is_string()) {
        if (!request.input.token_ids.empty()) {
          return absl::InvalidArgumentError("'input' mixes texts and token ids");
        }
        request.input.texts.push_back(item.get<std::string>());
      } else if (item.is_array()) {
        if (!request.input.texts.empty()) {
          return absl::InvalidArgumentError("'input' mixes texts and token ids");
        }
        if (item.empty()) return absl::InvalidArgumentError(absl::StrCat("'", where, "' is empty"));
        if (static_cast<int64_t>(item.size()) > limits.max_ids_per_input) {
          return absl::OutOfRangeError(absl::StrCat("'", where, "' holds ", item.size(),
                                                    " ids; at most ", limits.max_ids_per_input));
        }
        std::vector<int32_t> ids;
        ids.reserve(item.size());
        for (const Json& id : item) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
              id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
            return absl::InvalidArgumentError(absl::StrCat("'", where, "' must hold token ids"));
          }
          ids.push_back(id.get<int32_t>());
        }
        request.input.token_ids.push_back(std::move(ids));
      } else {
        return WrongType(where, "a string or an array of token ids", item);
      }
    }
  }
  absl::StatusOr<std::optional<std::string>> format = OptionalString(*json, "encoding_format");
  if (!format.ok()) return format.status();
  if (format->has_value() && **format != "float" && **format != "base64") {
    return absl::InvalidArgumentError(
        absl::StrCat("'encoding_format' must be \"float\" or \"base64\", not \"", **format, "\""));
  }
  request.base64 = format->has_value() && **format == "base64";
  absl::StatusOr<std::optional<int64_t>> dimensions = Integer(*json, "dimensions", 1, 1 << 20);
  if (!dimensions.ok()) return dimensions.status();
  request.dimensions = *dimensions;
  return request;
}

absl::StatusOr<TeiEmbedRequest> ParseTeiEmbed(absl::string_view body, const RequestLimits& limits) {
  absl::StatusOr<Json> json = ParseObject(body);
  if (!json.ok()) return json.status();
  TeiEmbedRequest request;
  absl::StatusOr<std::optional<std::string>> model = OptionalString(*json, "model");
  if (!model.ok()) return model.status();
  request.model = *std::move(model);
  absl::StatusOr<std::vector<std::string>> inputs = Texts(*json, "inputs", limits.max_inputs);
  if (!inputs.ok()) return inputs.status();
  request.inputs = *std::move(inputs);
  absl::StatusOr<bool> normalize = Bool(*json, "normalize", true);
  if (!normalize.ok()) return normalize.status();
  request.normalize = *normalize;
  absl::StatusOr<bool> truncate = Bool(*json, "truncate", false);
  if (!truncate.ok()) return truncate.status();
  request.truncate = *truncate;
  return request;
}

absl::StatusOr<HfSummarizeRequest> ParseHfSummarize(absl::string_view body,
                                                    const RequestLimits& limits) {
  absl::StatusOr<Json> json = ParseObject(body);
  if (!json.ok()) return json.status();
  HfSummarizeRequest request;
  absl::StatusOr<std::optional<std::string>> model = OptionalString(*json, "model");
  if (!model.ok()) return model.status();
  request.model = *std::move(model);
  absl::StatusOr<std::vector<std::string>> inputs = Texts(*json, "inputs", limits.max_summaries);
  if (!inputs.ok()) return inputs.status();
  request.inputs = *std::move(inputs);
  absl::StatusOr<SummarizeParameters> parameters = Parameters(*json);
  if (!parameters.ok()) return parameters.status();
  request.parameters = *parameters;
  return request;
}

absl::StatusOr<JobRequest> ParseJob(absl::string_view body, const RequestLimits& limits) {
  absl::StatusOr<Json> json = ParseObject(body);
  if (!json.ok()) return json.status();
  JobRequest request;
  absl::StatusOr<std::string> model = String(*json, "model");
  if (!model.ok()) return model.status();
  request.model = *std::move(model);
  absl::StatusOr<std::vector<std::string>> input = Texts(*json, "input", limits.max_inputs);
  if (!input.ok()) return input.status();
  request.input = *std::move(input);
  absl::StatusOr<std::optional<std::string>> priority = OptionalString(*json, "priority");
  if (!priority.ok()) return priority.status();
  if (priority->has_value()) request.priority = **priority;
  absl::StatusOr<std::optional<int64_t>> deadline =
      Integer(*json, "deadline_ms", 0, int64_t{1} << 40);
  if (!deadline.ok()) return deadline.status();
  request.deadline_ms = *deadline;
  absl::StatusOr<SummarizeParameters> parameters = Parameters(*json);
  if (!parameters.ok()) return parameters.status();
  request.parameters = *parameters;
  return request;
}

absl::StatusOr<uint64_t> ParseJobId(absl::string_view text) {
  uint64_t id = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || id == 0) {
    return absl::NotFoundError(absl::StrCat("no job \"", text.substr(0, 64), "\""));
  }
  return id;
}

bool ConstantTimeEquals(absl::string_view given, absl::string_view expected) {
  // Every byte of `given` is compared, against `expected` repeated, so that neither an early
  // mismatch nor the length of the common prefix shows in the time taken.
  unsigned difference = given.size() == expected.size() ? 0 : 1;
  if (expected.empty()) return given.empty();
  for (size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i]) ^
                  static_cast<unsigned char>(expected[i % expected.size()]);
  }
  return difference == 0;
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kOutOfRange:
      return 413;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kCancelled:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorBody(int http_status, absl::string_view message) {
  const char* type = "invalid_request_error";
  const char* code = "invalid_request";
  switch (http_status) {
    case 401:
      type = "authentication_error";
      code = "invalid_api_key";
      break;
    case 404:
      code = "not_found";
      break;
    case 413:
      code = "request_too_large";
      break;
    case 429:
      type = "rate_limit_error";
      code = "queue_full";
      break;
    case 503:
      type = "server_error";
      code = "unavailable";
      break;
    case 504:
      type = "server_error";
      code = "timeout";
      break;
    default:
      if (http_status >= 500) {
        type = "server_error";
        code = "internal_error";
      }
  }
  // dump() with replacement, so that a message quoting invalid UTF-8 still makes valid JSON.
  Json body = {{"error", {{"message", std::string(message)}, {"type", type}, {"code", code}}}};
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace modelpool::server
