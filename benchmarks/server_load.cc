// server_load: how many embedding requests a running modelpool-server answers, and how fast.
// `--clients` threads, each on its own keep-alive connection, send POST /v1/embeddings with
// `--texts` texts each, one request at a time, for `--seconds`; then prints requests/s,
// tokens/s (the replies' usage) and the latency percentiles.
//
//   server_load --url http://127.0.0.1:8080 --model NAME [--api-key KEY] [--clients 256]
//               [--texts 1] [--seconds 20] [--corpus corpus.txt] [--warmup 3]
//
// Without --corpus, short generated sentences. Start the server with --threads at least
// --clients: it serves one connection per thread.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmarks/corpus.h"
#include "examples/common/command_line.h"

ABSL_FLAG(std::string, url, "http://127.0.0.1:8080", "the server");
ABSL_FLAG(std::string, model, "", "the model's name on the server");
ABSL_FLAG(std::string, api_key, "", "the server's API key, if it has one");
ABSL_FLAG(int64_t, clients, 256, "connections, each sending one request at a time");
ABSL_FLAG(int64_t, texts, 1, "texts per request");
ABSL_FLAG(int64_t, seconds, 20, "how long to measure");
ABSL_FLAG(int64_t, warmup, 3, "seconds of load before measuring");
ABSL_FLAG(std::string, corpus, "", "texts, one a line; generated sentences when empty");

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> Texts() {
  if (!absl::GetFlag(FLAGS_corpus).empty()) {
    return modelpool::bench::ReadCorpus(absl::GetFlag(FLAGS_corpus));
  }
  static const char* const kWords[] = {"the",  "river", "stone", "quiet", "light", "market",
                                       "runs", "under", "moon",  "field", "rain",  "people"};
  std::vector<std::string> texts;
  for (int i = 0; i < 4096; ++i) {
    std::string text;
    for (int w = 0; w < 6 + i % 10; ++w)
      absl::StrAppend(&text, w ? " " : "", kWords[(i + w * 5) % 12]);
    texts.push_back(std::move(text));
  }
  return texts;
}

struct ClientResult {
  std::vector<double> latencies_ms;  // of requests that ended in the measured window
  int64_t tokens = 0;
  int64_t errors = 0;
  std::string first_error;
};

}  // namespace

int main(int argc, char** argv) {
  modelpool::cli::ParseCommandLine(
      argc, argv,
      "server_load --url http://127.0.0.1:8080 --model NAME [--api-key KEY] [--clients 256] "
      "[--texts 1] [--seconds 20] [--corpus FILE] [--warmup 3]");
  const std::string model = modelpool::cli::Required(FLAGS_model);
  const int clients = static_cast<int>(modelpool::cli::InRange(FLAGS_clients, 1, 4096));
  const int per_request = static_cast<int>(modelpool::cli::InRange(FLAGS_texts, 1, 2048));
  const int64_t seconds = modelpool::cli::InRange(FLAGS_seconds, 1, 3600);
  const int64_t warmup = modelpool::cli::InRange(FLAGS_warmup, 0, 600);
  const std::vector<std::string> texts = Texts();
  if (texts.empty()) modelpool::cli::Fail("the corpus is empty");
  httplib::Headers headers;
  if (!absl::GetFlag(FLAGS_api_key).empty()) {
    headers.emplace("Authorization", absl::StrCat("Bearer ", absl::GetFlag(FLAGS_api_key)));
  }

  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + std::chrono::seconds(warmup);
  const Clock::time_point stop_at = measure_from + std::chrono::seconds(seconds);
  std::vector<ClientResult> results(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(absl::GetFlag(FLAGS_url));
      client.set_keep_alive(true);
      client.set_read_timeout(std::chrono::seconds(120));
      ClientResult& result = results[c];
      for (size_t next = static_cast<size_t>(c) * 7919; Clock::now() < stop_at;) {
        nlohmann::json input = nlohmann::json::array();
        for (int t = 0; t < per_request; ++t) input.push_back(texts[next++ % texts.size()]);
        const std::string body = nlohmann::json{{"model", model}, {"input", input}}.dump();
        const Clock::time_point sent = Clock::now();
        httplib::Result reply = client.Post("/v1/embeddings", headers, body, "application/json");
        const Clock::time_point received = Clock::now();
        const bool measured = sent >= measure_from && received <= stop_at;
        if (!reply || reply->status != 200) {
          ++result.errors;
          if (result.first_error.empty()) {
            result.first_error = reply
                                     ? absl::StrCat(reply->status, " ", reply->body.substr(0, 200))
                                     : httplib::to_string(reply.error());
          }
          continue;
        }
        if (!measured) continue;
        result.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(received - sent).count());
        const auto usage = nlohmann::json::parse(reply->body, nullptr, false);
        if (!usage.is_discarded()) result.tokens += usage["usage"].value("total_tokens", 0);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  std::vector<double> latencies;
  int64_t tokens = 0, errors = 0;
  std::string first_error;
  for (const ClientResult& r : results) {
    latencies.insert(latencies.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    tokens += r.tokens;
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
  }
  if (latencies.empty()) modelpool::cli::Fail(absl::StrCat("no request succeeded: ", first_error));
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    return latencies[std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()))];
  };
  const double requests_per_s = static_cast<double>(latencies.size()) / seconds;
  absl::PrintF(
      "{\"what\": \"server_load\", \"clients\": %d, \"texts_per_request\": %d, \"requests\": %d, "
      "\"errors\": %d, \"seconds\": %d, \"requests_per_s\": %.1f, \"texts_per_s\": %.1f, "
      "\"tokens_per_s\": %.0f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}\n",
      clients, per_request, latencies.size(), errors, seconds, requests_per_s,
      requests_per_s * per_request, static_cast<double>(tokens) / seconds, percentile(0.5),
      percentile(0.99), latencies.back());
  if (errors > 0)
    absl::FPrintF(stderr, "server_load: %d errors, the first: %s\n", errors, first_error);
  return 0;
}
