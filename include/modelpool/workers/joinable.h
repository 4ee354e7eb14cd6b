#ifndef MODELPOOL_WORKERS_JOINABLE_H_
#define MODELPOOL_WORKERS_JOINABLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace modelpool {

// Joinable
//
// A request that may run in one call with other queued requests of its model: a worker that
// takes it runs, with it, queued requests of the same model whose `key` is equal and whose
// type is the same `Joinable<T, Request, Result>` (see `WorkerSettings::batch_window`). `run`
// gets every joined request and returns one result per request, in the same order; each
// caller gets its own.
//
// Example: texts embedded together when they ask for the same options.
//   Joinable<Encoder, std::vector<std::string>, Vectors> joinable{
//       .key = options_text,
//       .request = texts,
//       .rows = static_cast<int64_t>(texts.size()),
//       .run = [](Encoder& encoder, absl::Span<const std::vector<std::string>* const> all) {
//         return encoder.EncodeEach(all);  // one result per request
//       }};
template <typename T, typename Request, typename Result>
struct Joinable {
  using RunFn = std::function<std::vector<absl::StatusOr<Result>>(
      T&, absl::Span<const Request* const> requests)>;

  // Requests of one model with equal keys may run together.
  std::string key;
  Request request;
  // The items in `request` (texts, rows): what the pool's batch statistics count.
  int64_t rows = 1;
  // Runs one or more requests of one key as one call: one result per request, in order. An
  // exception it throws, or a result count that does not match, fails every request it got.
  RunFn run;
  // The tokens a result says were processed; unset: the requests' `SubmitOptions::tokens`.
  std::function<int64_t(const Result&)> tokens;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_JOINABLE_H_
