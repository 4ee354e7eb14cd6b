#ifndef MODELPOOL_WORKERS_ORDERED_STREAM_H_
#define MODELPOOL_WORKERS_ORDERED_STREAM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "modelpool/base/internal/mutex.h"
#include "modelpool/workers/generic_worker_pool.h"

namespace modelpool {

struct StreamOptions {
  // A batch goes to the workers once its inputs cost this much (see `CostFn`).
  int64_t max_batch_cost = 64;
  // Inputs pushed but not yet taken by `Next()`; `Push()` waits while there are this many.
  // This bounds the stream's memory whatever the consumer's pace.
  int64_t max_in_flight = 1024;
  SubmitOptions submit;
};

// OrderedStream
//
// Inputs arrive one at a time (`Push`), are grouped into batches that run on the worker
// pool's workers as they fill, and come out one output per input, in input order (`Next`).
// A consumer that asks for an output whose batch is still filling flushes it, so outputs
// never wait for inputs that have not arrived. A failed batch gives its error for each of its
// inputs; the stream goes on. Push and Next may be called from different threads; the pool
// must outlive the stream.
//
// Example:
//   OrderedStream<Embedder, std::string, Vector> stream(pool, "minilm", embed_batch, cost, {});
//   producer: for (auto& text : incoming) stream.Push(text); stream.Close();
//   consumer: while (auto v = stream.Next(); v.ok() && v->has_value()) use(**v);
template <typename T, typename In, typename Out>
class OrderedStream {
 public:
  // Turns a batch of inputs into one output per input, on a worker's instance.
  using BatchFn = std::function<absl::StatusOr<std::vector<Out>>(T&, const std::vector<In>&)>;
  // What an input costs towards `max_batch_cost` (1 each if unset).
  using CostFn = std::function<int64_t(const In&)>;

  OrderedStream(GenericWorkerPool* pool, std::string model_id, BatchFn fn, CostFn cost,
                StreamOptions options)
      : pool_(pool),
        model_id_(std::move(model_id)),
        fn_(std::move(fn)),
        cost_(cost ? std::move(cost) : [](const In&) { return int64_t{1}; }),
        options_(options),
        state_(std::make_shared<State>()) {}

  OrderedStream(const OrderedStream&) = delete;
  OrderedStream& operator=(const OrderedStream&) = delete;
  // Closes the stream; outputs not taken are dropped when their batches finish.
  ~OrderedStream() { Close(); }

  // OrderedStream::Push()
  //
  // Adds an input, waiting up to `timeout` while `max_in_flight` inputs are waiting to be
  // taken (`DeadlineExceeded` then). `FailedPrecondition` after `Close()`.
  absl::Status Push(In input, absl::Duration timeout = absl::InfiniteDuration()) {
    std::optional<Batch> full;
    {
      State& s = *state_;
      MutexLock lock(&s.mu);
      const bool room = s.mu.AwaitWithDeadline(
          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return s.closed || s.pushed - s.taken < options_.max_in_flight;
          },
          absl::Now() + timeout);
      if (s.closed) return absl::FailedPreconditionError("the stream is closed");
      if (!room) {
        return absl::DeadlineExceededError(absl::StrCat("the stream holds ", options_.max_in_flight,
                                                        " inputs not yet taken by Next()"));
      }
      if (s.pending.empty()) s.pending_start = s.pushed;
      s.pending_cost += cost_(input);
      s.pending.push_back(std::move(input));
      s.outputs.emplace_back();
      ++s.pushed;
      if (s.pending_cost >= options_.max_batch_cost) full = TakePending(s);
    }
    if (full) Submit(std::move(*full));
    return absl::OkStatus();
  }

  // No more inputs: the last partial batch goes to the workers. Idempotent.
  void Close() {
    std::optional<Batch> rest;
    {
      State& s = *state_;
      MutexLock lock(&s.mu);
      s.closed = true;
      if (!s.pending.empty()) rest = TakePending(s);
    }
    if (rest) Submit(std::move(*rest));
  }

  // OrderedStream::Next()
  //
  // The output for the next input in order, its batch's error, or nullopt once the stream
  // is closed and every output has been taken. `DeadlineExceeded` if none is ready within
  // `timeout` (the output stays next).
  absl::StatusOr<std::optional<Out>> Next(absl::Duration timeout = absl::InfiniteDuration()) {
    State& s = *state_;
    std::optional<Batch> flush;
    {
      MutexLock lock(&s.mu);
      if (s.taken == s.pushed) {
        if (s.closed) return std::optional<Out>();
        if (!s.mu.AwaitWithDeadline(
                [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return s.closed || s.taken < s.pushed; },
                absl::Now() + timeout)) {
          return absl::DeadlineExceededError("no input arrived in time");
        }
        if (s.taken == s.pushed) return std::optional<Out>();
      }
      if (!s.outputs.front() && !s.pending.empty() && s.pending_start == s.taken) {
        flush = TakePending(s);
      }
    }
    if (flush) Submit(std::move(*flush));
    MutexLock lock(&s.mu);
    if (!s.mu.AwaitWithDeadline(
            [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return s.outputs.front().has_value(); },
            absl::Now() + timeout)) {
      return absl::DeadlineExceededError("the next output was not ready in time");
    }
    using Next = absl::StatusOr<std::optional<Out>>;
    absl::StatusOr<Out>& output = *s.outputs.front();
    Next next = output.ok() ? Next(std::optional<Out>(*std::move(output))) : Next(output.status());
    s.outputs.pop_front();
    ++s.taken;
    return next;
  }

  // Inputs pushed and not yet taken.
  int64_t in_flight() const {
    MutexLock lock(&state_->mu);
    return state_->pushed - state_->taken;
  }

 private:
  struct Batch {
    int64_t start = 0;  // the stream index of its first input
    std::vector<In> inputs;
  };

  // Shared with the batches in flight, which may finish after the stream is gone.
  struct State {
    Mutex mu;
    // One slot per input from `taken` on; filled when its batch finishes.
    std::deque<std::optional<absl::StatusOr<Out>>> outputs ABSL_GUARDED_BY(mu);
    int64_t taken ABSL_GUARDED_BY(mu) = 0;
    int64_t pushed ABSL_GUARDED_BY(mu) = 0;
    std::vector<In> pending ABSL_GUARDED_BY(mu);
    int64_t pending_start ABSL_GUARDED_BY(mu) = 0;
    int64_t pending_cost ABSL_GUARDED_BY(mu) = 0;
    bool closed ABSL_GUARDED_BY(mu) = false;

    // Fills the slots of the batch that starts at `start`.
    void Finish(int64_t start, size_t count, absl::StatusOr<std::vector<Out>> result) {
      MutexLock lock(&mu);
      for (size_t i = 0; i < count; ++i) {
        const int64_t slot = start + static_cast<int64_t>(i) - taken;
        if (slot < 0 || slot >= static_cast<int64_t>(outputs.size())) continue;
        if (result.ok()) {
          outputs[slot] = std::move((*result)[i]);
        } else {
          outputs[slot] = UnsharedCopy(result.status());  // Note [Statuses that cross threads]
        }
      }
    }
  };

  Batch TakePending(State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    Batch batch{s.pending_start, std::move(s.pending)};
    s.pending.clear();
    s.pending_cost = 0;
    return batch;
  }

  // Sends `batch` to the workers; called without the stream's lock (a refusal ends the batch
  // on this thread).
  void Submit(Batch batch) {
    const int64_t start = batch.start;
    const size_t count = batch.inputs.size();
    auto inputs = std::make_shared<std::vector<In>>(std::move(batch.inputs));
    pool_->SubmitCallback<T>(
        model_id_,
        [state = state_, fn = fn_, inputs, start, count](T& instance) -> absl::Status {
          absl::StatusOr<std::vector<Out>> out =
              CallCatching("a stream batch", [&] { return fn(instance, *inputs); });
          if (out.ok() && out->size() != count) {
            out = absl::InternalError(
                absl::StrCat("a batch of ", count, " inputs gave ", out->size(), " outputs"));
          }
          absl::Status status = UnsharedCopy(out.status());  // it stays on this thread
          state->Finish(start, count, std::move(out));
          return status;
        },
        [state = state_, start, count](absl::Status status) {
          state->Finish(start, count, std::move(status));
        },
        options_.submit);
  }

  GenericWorkerPool* const pool_;
  const std::string model_id_;
  const BatchFn fn_;
  const CostFn cost_;
  const StreamOptions options_;
  const std::shared_ptr<State> state_;
};

}  // namespace modelpool

#endif  // MODELPOOL_WORKERS_ORDERED_STREAM_H_
