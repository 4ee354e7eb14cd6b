#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "examples/server/requests.h"

namespace modelpool::server {
namespace {

const RequestLimits kLimits{.max_inputs = 4, .max_ids_per_input = 8, .max_summaries = 2};

absl::StatusCode CodeOf(absl::string_view body) {
  return ParseOpenAiEmbeddings(body, kLimits).status().code();
}

TEST_CASE("OpenAI embeddings requests take a string, strings, ids or rows of ids") {
  auto one = ParseOpenAiEmbeddings(R"({"model": "m", "input": "hello"})", kLimits);
  REQUIRE(one.ok());
  CHECK(one->model == "m");
  CHECK(one->input.texts == std::vector<std::string>{"hello"});
  CHECK_FALSE(one->base64);
  CHECK_FALSE(one->dimensions.has_value());

  auto many = ParseOpenAiEmbeddings(
      R"({"model": "m", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8})",
      kLimits);
  REQUIRE(many.ok());
  CHECK(many->input.texts == std::vector<std::string>{"a", "b"});
  CHECK(many->base64);
  CHECK(many->dimensions == 8);

  auto ids = ParseOpenAiEmbeddings(R"({"model": "m", "input": [101, 7, 102]})", kLimits);
  REQUIRE(ids.ok());
  CHECK(ids->input.token_ids == std::vector<std::vector<int32_t>>{{101, 7, 102}});

  auto rows = ParseOpenAiEmbeddings(R"({"model": "m", "input": [[1, 2], [3]]})", kLimits);
  REQUIRE(rows.ok());
  CHECK(rows->input.token_ids == std::vector<std::vector<int32_t>>{{1, 2}, {3}});
}

TEST_CASE("Malformed bodies and wrong types are InvalidArgument, naming the field") {
  CHECK(CodeOf("{") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf("[1]") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"input": "x"})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": 3, "input": "x"})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": 3})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": []})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": ["a", 1]})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": ["a", [1]]})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": [[-1]]})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": [[]]})") == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": "x", "encoding_format": "int8"})") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": "x", "dimensions": 0})") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": "x", "dimensions": 18446744073709551615})") ==
        absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf(R"({"model": "m", "input": "x", "dimensions": "8"})") ==
        absl::StatusCode::kInvalidArgument);
  // Invalid UTF-8 inside a string.
  CHECK(CodeOf("{\"model\": \"m\", \"input\": \"\xff\xfe\"}") ==
        absl::StatusCode::kInvalidArgument);
  auto status = ParseOpenAiEmbeddings(R"({"model": "m", "input": [true]})", kLimits).status();
  CHECK(status.message().find("input[0]") != absl::string_view::npos);
}

TEST_CASE("Too many inputs or ids are OutOfRange; deep nesting is refused before parsing") {
  CHECK(CodeOf(R"({"model": "m", "input": ["a", "b", "c", "d", "e"]})") ==
        absl::StatusCode::kOutOfRange);
  CHECK(CodeOf(R"({"model": "m", "input": [[1, 2, 3, 4, 5, 6, 7, 8, 9]]})") ==
        absl::StatusCode::kOutOfRange);
  CHECK(CodeOf(R"({"model": "m", "input": [1, 2, 3, 4, 5, 6, 7, 8, 9]})") ==
        absl::StatusCode::kOutOfRange);
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK(CodeOf(deep) == absl::StatusCode::kInvalidArgument);
  // Brackets inside strings do not count.
  const std::string text = R"({"model": "m", "input": ")" + std::string(1000, '[') + R"("})";
  CHECK(ParseOpenAiEmbeddings(text, kLimits).ok());
}

TEST_CASE("TEI, summarization and job requests read their fields and defaults") {
  auto embed = ParseTeiEmbed(R"({"inputs": ["a"], "truncate": true})", kLimits);
  REQUIRE(embed.ok());
  CHECK(embed->inputs == std::vector<std::string>{"a"});
  CHECK(embed->normalize);
  CHECK(embed->truncate);
  CHECK_FALSE(embed->model.has_value());
  CHECK(ParseTeiEmbed(R"({"inputs": "a", "normalize": "yes"})", kLimits).status().code() ==
        absl::StatusCode::kInvalidArgument);

  auto summarize = ParseHfSummarize(
      R"({"inputs": "doc", "parameters": {"max_new_tokens": 9, "num_beams": 2,
          "length_penalty": 0.5}})",
      kLimits);
  REQUIRE(summarize.ok());
  CHECK(summarize->parameters.max_new_tokens == 9);
  CHECK(summarize->parameters.num_beams == 2);
  CHECK(summarize->parameters.length_penalty == 0.5);
  CHECK_FALSE(summarize->parameters.min_new_tokens.has_value());
  CHECK(ParseHfSummarize(R"({"inputs": ["a", "b", "c"]})", kLimits).status().code() ==
        absl::StatusCode::kOutOfRange);
  CHECK(ParseHfSummarize(R"({"inputs": "a", "parameters": {"num_beams": 0}})", kLimits)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);

  auto job =
      ParseJob(R"({"model": "m", "input": "x", "priority": "high", "deadline_ms": 50})", kLimits);
  REQUIRE(job.ok());
  CHECK(job->priority == "high");
  CHECK(job->deadline_ms == 50);
  CHECK(ParseJob(R"({"model": "m", "input": "x", "deadline_ms": -1})", kLimits).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Job ids are positive decimal numbers") {
  CHECK(*ParseJobId("42") == 42);
  for (const char* bad : {"", "0", "-1", "4x", "99999999999999999999999", "0x10"}) {
    CHECK(ParseJobId(bad).status().code() == absl::StatusCode::kNotFound);
  }
}

TEST_CASE("API keys compare equal only when every byte and the length match") {
  CHECK(ConstantTimeEquals("Bearer k1", "Bearer k1"));
  CHECK_FALSE(ConstantTimeEquals("Bearer k2", "Bearer k1"));
  CHECK_FALSE(ConstantTimeEquals("Bearer k1x", "Bearer k1"));
  CHECK_FALSE(ConstantTimeEquals("Bearer k", "Bearer k1"));
  CHECK_FALSE(ConstantTimeEquals("", "Bearer k1"));
  // `expected` repeated must not match a longer `given`.
  CHECK_FALSE(ConstantTimeEquals("abab", "ab"));
}

TEST_CASE("Errors map to HTTP statuses and OpenAI's error shape") {
  CHECK(HttpStatusOf(absl::InvalidArgumentError("x")) == 400);
  CHECK(HttpStatusOf(absl::UnauthenticatedError("x")) == 401);
  CHECK(HttpStatusOf(absl::NotFoundError("x")) == 404);
  CHECK(HttpStatusOf(absl::OutOfRangeError("x")) == 413);
  CHECK(HttpStatusOf(absl::ResourceExhaustedError("x")) == 429);
  CHECK(HttpStatusOf(absl::UnavailableError("x")) == 503);
  CHECK(HttpStatusOf(absl::InternalError("x")) == 500);
  const nlohmann::json body = nlohmann::json::parse(ErrorBody(429, "queue \xff full"));
  CHECK(body["error"]["type"] == "rate_limit_error");
  CHECK(body["error"]["code"] == "queue_full");
  CHECK(body["error"]["message"].get<std::string>().find("queue") == 0);
}

}  // namespace
}  // namespace modelpool::server
