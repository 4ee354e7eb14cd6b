// modelpool-server: embedding and summarization models over HTTP.
//
//   modelpool-server --model NAME=PATH [--model NAME=PATH ...] [--host 127.0.0.1] [--port 8080]
//                    [--api-key KEY] [--max-body-mb 16] [--max-inputs 2048] [--threads 16]
//                    [--dtype float16] [--read-timeout 10s] [--write-timeout 10s]
//                    [--queue-timeout 60s] [--drain-timeout 10s] [--max-queued 4096]
//
// PATH is a model folder or a Hugging Face id in the local cache; whether the model embeds or
// summarizes comes from its files. Routes: POST /v1/embeddings and GET /v1/models (OpenAI),
// POST /embed and GET /info (text-embeddings-inference), POST /summarize (Hugging Face
// inference), POST /jobs, GET and DELETE /jobs/{id}, GET /stats, /health, /ready, /metrics.
// With --api-key every route but /health needs "Authorization: Bearer KEY". --port 0 picks a
// free port. Prints "listening on http://HOST:PORT" once it accepts requests. SIGTERM and
// SIGINT stop accepting, finish what is queued (up to --drain-timeout) and exit with status 0.

#include <httplib.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/common/command_line.h"
#include "examples/server/listen_backlog.h"
#include "examples/server/requests.h"
#include "examples/server/service.h"
#include "modelpool/base/logging.h"

ABSL_FLAG(std::vector<std::string>, model, {},
          "NAME=PATH: serve the model in PATH (a folder or a Hugging Face id in the local cache) "
          "as NAME; repeat the flag for more models");
ABSL_FLAG(std::string, host, "127.0.0.1", "the address to listen on");
ABSL_FLAG(int64_t, port, 8080, "the port to listen on; 0 picks a free one");
ABSL_FLAG(std::string, api_key, "", "when set, every route but /health needs this bearer key");
ABSL_FLAG(int64_t, max_body_mb, 16, "the largest request body, in MiB (413 beyond)");
ABSL_FLAG(int64_t, max_inputs, 2048, "the most texts in one embedding request (413 beyond)");
ABSL_FLAG(int64_t, threads, 16, "threads that serve HTTP connections");
ABSL_FLAG(std::string, dtype, "", "float32, float16 or bfloat16; each model's default when empty");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(10), "the longest wait for a client's bytes");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(10), "the longest wait to send a reply");
ABSL_FLAG(absl::Duration, queue_timeout, absl::Seconds(60),
          "a request not started by then ends with 504");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM, how long queued requests may still run");
ABSL_FLAG(int64_t, max_queued, 4096, "requests queued beyond which requests get 429");

namespace {

namespace cli = modelpool::cli;
using modelpool::server::Reply;
using modelpool::server::ServedModel;
using modelpool::server::Service;

constexpr char kUsage[] =
    "modelpool-server --model NAME=PATH [--model NAME=PATH ...] [--host 127.0.0.1] [--port 8080]\n"
    "                 [--api-key KEY] [--max-body-mb 16] [--max-inputs 2048] [--threads 16]\n"
    "                 [--dtype float16] [--read-timeout 10s] [--write-timeout 10s]\n"
    "                 [--queue-timeout 60s] [--drain-timeout 10s] [--max-queued 4096]";

// Abseil keeps the last of a repeated flag; --model is taken out of argv first and gathered.
std::vector<std::string> TakeModels(int& argc, char** argv) {
  std::vector<std::string> models;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--model" || arg == "-model") && i + 1 < argc) {
      models.push_back(argv[++i]);
    } else if (absl::StartsWith(arg, "--model=") || absl::StartsWith(arg, "-model=")) {
      models.push_back(arg.substr(arg.find('=') + 1));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return models;
}

ServedModel Load(const std::string& spec, std::optional<modelpool::DType> dtype) {
  const size_t equals = spec.find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == spec.size()) {
    cli::Fail(absl::StrCat("--model ", spec, ": expected NAME=PATH"));
  }
  ServedModel model{.name = spec.substr(0, equals)};
  const std::string path = spec.substr(equals + 1);
  auto embedder = modelpool::EmbeddingModelManager::Create({.model_dir = path, .dtype = dtype});
  if (embedder.ok()) {
    model.embedder = *std::move(embedder);
    return model;
  }
  auto summarizer =
      modelpool::SummarizationModelManager::Create({.model_dir = path, .dtype = dtype});
  if (summarizer.ok()) {
    model.summarizer = *std::move(summarizer);
    return model;
  }
  cli::Fail(absl::StrCat("--model ", spec, ": neither an embedding model (",
                         embedder.status().message(), ") nor a summarization model (",
                         summarizer.status().message(), ")"));
}

void Send(const Reply& reply, httplib::Response& res) {
  res.status = reply.status;
  res.set_content(reply.body, reply.content_type.c_str());
  if (reply.retry_after_s > 0) res.set_header("Retry-After", std::to_string(reply.retry_after_s));
}

// A route that runs models: 503 until every model has loaded once.
httplib::Server::Handler ModelRoute(Service& service, Reply (Service::*route)(absl::string_view)) {
  return [&service, route](const httplib::Request& req, httplib::Response& res) {
    if (!service.ready()) {
      Send(modelpool::server::ErrorReply(absl::UnavailableError("the models are not ready")), res);
      return;
    }
    Send((service.*route)(req.body), res);
  };
}

httplib::Server::Handler Route(const Service& service, Reply (Service::*route)() const) {
  return [&service, route](const httplib::Request&, httplib::Response& res) {
    Send((service.*route)(), res);
  };
}

httplib::Server::Handler JobRoute(Service& service, Reply (Service::*route)(absl::string_view)) {
  return [&service, route](const httplib::Request& req, httplib::Response& res) {
    Send((service.*route)(req.matches[1].str()), res);
  };
}

// The message of an error httplib answers by itself (no route, a body too large, a request it
// cannot read).
std::string HttpErrorMessage(const httplib::Request& req, int status, int64_t max_body) {
  switch (status) {
    case 404:
      return absl::StrCat("no route ", req.method, " ", req.path.substr(0, 200));
    case 413:
      return absl::StrCat("the body is larger than ", max_body, " bytes");
    case 405:
      return absl::StrCat("method ", req.method, " is not allowed here");
    default:
      return absl::StrCat("the request could not be read (HTTP ", status, ")");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread starts, so that every thread inherits the mask and only the waiter below
  // takes these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> specs = TakeModels(argc, argv);
  cli::ParseCommandLine(argc, argv, kUsage);
  if (specs.empty()) specs = absl::GetFlag(FLAGS_model);
  if (specs.empty()) cli::Fail("--model NAME=PATH is needed (see --help)");
  const int64_t port = cli::InRange(FLAGS_port, 0, 65535);
  const int64_t max_body = cli::InRange(FLAGS_max_body_mb, 1, 1024) << 20;
  const int64_t threads = cli::InRange(FLAGS_threads, 1, 1024);
  std::optional<modelpool::DType> dtype;
  if (!absl::GetFlag(FLAGS_dtype).empty()) dtype = cli::DTypeOf(FLAGS_dtype);
  for (const auto* flag :
       {&FLAGS_read_timeout, &FLAGS_write_timeout, &FLAGS_queue_timeout, &FLAGS_drain_timeout}) {
    const absl::Duration value = absl::GetFlag(*flag);
    if (value <= absl::ZeroDuration() || value > absl::Hours(24)) {
      cli::Fail(
          absl::StrCat("--", absl::GetFlagReflectionHandle(*flag).Name(), " must lie in (0, 24h]"));
    }
  }

  std::vector<ServedModel> models;
  for (const std::string& spec : specs) {
    ServedModel model = Load(spec, dtype);
    for (const ServedModel& other : models) {
      if (other.name == model.name)
        cli::Fail(absl::StrCat("--model ", model.name, " is given twice"));
    }
    models.push_back(std::move(model));
  }
  modelpool::server::ServiceOptions options;
  options.limits.max_inputs = cli::InRange(FLAGS_max_inputs, 1, 1 << 20);
  options.queue_timeout = absl::GetFlag(FLAGS_queue_timeout);
  modelpool::WorkerPoolOptions pool_options;
  pool_options.max_queued_requests = static_cast<int>(cli::InRange(FLAGS_max_queued, 1, 1 << 24));
  pool_options.shutdown_drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  auto service = Service::Create(std::move(models), std::move(pool_options), options);
  if (!service.ok()) cli::Fail(service.status());
  Service& svc = **service;

  httplib::Server server;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server.set_payload_max_length(static_cast<size_t>(max_body));
  server.set_read_timeout(absl::ToChronoSeconds(absl::GetFlag(FLAGS_read_timeout)));
  server.set_write_timeout(absl::ToChronoSeconds(absl::GetFlag(FLAGS_write_timeout)));
  server.set_keep_alive_timeout(5);
  server.set_keep_alive_max_count(1000);
  // Accepted sockets inherit these. Without TCP_NODELAY a reply's headers and body go out as two
  // segments and the second waits for the client's delayed ACK (40 ms on Linux).
  server.set_socket_options([](socket_t sock) {
    const int on = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  });
  const std::string bearer = absl::StrCat("Bearer ", absl::GetFlag(FLAGS_api_key));
  const bool needs_key = !absl::GetFlag(FLAGS_api_key).empty();
  server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (!needs_key || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (modelpool::server::ConstantTimeEquals(req.get_header_value("Authorization"), bearer)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    Send(modelpool::server::ErrorReply(
             absl::UnauthenticatedError("a valid API key is needed: Authorization: Bearer KEY")),
         res);
    res.set_header("WWW-Authenticate", "Bearer");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        res.set_content(
            modelpool::server::ErrorBody(res.status, HttpErrorMessage(req, res.status, max_body)),
            "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content(modelpool::server::ErrorBody(500, "the request failed unexpectedly"),
                        "application/json");
      });
  server.Post("/v1/embeddings", ModelRoute(svc, &Service::OpenAiEmbeddings));
  server.Post("/embed", ModelRoute(svc, &Service::TeiEmbed));
  server.Post("/summarize", ModelRoute(svc, &Service::HfSummarize));
  server.Post("/jobs", ModelRoute(svc, &Service::SubmitJob));
  server.Get(R"(/jobs/([^/]+))", JobRoute(svc, &Service::GetJob));
  server.Delete(R"(/jobs/([^/]+))", JobRoute(svc, &Service::CancelJob));
  server.Get("/v1/models", Route(svc, &Service::OpenAiModels));
  server.Get("/info", Route(svc, &Service::TeiInfo));
  server.Get("/stats", Route(svc, &Service::Stats));
  server.Get("/health", Route(svc, &Service::Health));
  server.Get("/ready", Route(svc, &Service::Ready));
  server.Get("/metrics", Route(svc, &Service::Metrics));

  const std::string host = absl::GetFlag(FLAGS_host);
  int bound = 0;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else {
    bound = server.bind_to_port(host, static_cast<int>(port)) ? static_cast<int>(port) : -1;
  }
  if (bound <= 0) cli::Fail(absl::StrCat("cannot listen on ", host, ":", port));
  if (modelpool::server::WidenListenBacklog(bound) == 0) {
    modelpool::Log(modelpool::LogSeverity::kWarning,
                   "the listen backlog stays at httplib's 5: clients connecting at once may "
                   "be reset (Note [Listen backlog])");
  }

  std::thread preload([&svc] {
    if (absl::Status loaded = svc.Preload(); !loaded.ok()) {
      modelpool::Log(modelpool::LogSeverity::kError,
                     absl::StrCat("a model could not be loaded: ", loaded.ToString()));
    }
  });
  std::atomic<bool> listener_ended{false};
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    // httplib's stop() does nothing before the listener runs, and a signal may come first.
    while (!listener_ended) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  std::printf("listening on http://%s:%d\n", host.c_str(), bound);
  std::fflush(stdout);
  const bool listened = server.listen_after_bind();
  listener_ended = true;
  // Wakes the waiter if the listener ended without a signal.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  preload.join();
  svc.Shutdown(absl::GetFlag(FLAGS_drain_timeout));
  std::printf("stopped\n");
  std::fflush(stdout);
  return listened ? 0 : 1;
}
