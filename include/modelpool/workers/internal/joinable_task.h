#ifndef MODELPOOL_WORKERS_INTERNAL_JOINABLE_TASK_H_
#define MODELPOOL_WORKERS_INTERNAL_JOINABLE_TASK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "modelpool/base/status.h"
#include "modelpool/workers/joinable.h"

namespace modelpool::workers_internal {

// What one call of joined requests did: each request's status, in the order given, and the
// tokens the call processed (-1 when the requests do not say).
struct JoinedRun {
  std::vector<absl::Status> statuses;
  int64_t tokens = -1;
  // Per request, whether the call reached it (its own result holds its outcome); a fault
  // injected before the call leaves it false.
  std::vector<bool> ran;
};

// JoinableTask
//
// A queued request's `Joinable`, with its types erased. The scheduler joins requests whose
// tasks have equal keys and the same dynamic type, and runs them through the first one's
// `RunTogether()`.
class JoinableTask {
 public:
  virtual ~JoinableTask() = default;
  virtual const std::string& key() const = 0;
  virtual int64_t rows() const = 0;
  // Runs `tasks` (all of this one's type and key, this one among them) as one call on
  // `instance`; each task keeps its own result.
  virtual JoinedRun RunTogether(void* instance, absl::Span<JoinableTask* const> tasks) = 0;
  // Tokens its result says it processed (0 for a failure) once it has run; -1 when its
  // results do not say.
  virtual int64_t ResultTokens() const = 0;
};

template <typename T, typename Request, typename Result>
class TypedJoinableTask final : public JoinableTask {
 public:
  explicit TypedJoinableTask(Joinable<T, Request, Result> joinable)
      : joinable_(std::move(joinable)) {}

  const std::string& key() const override { return joinable_.key; }
  int64_t rows() const override { return joinable_.rows; }

  JoinedRun RunTogether(void* instance, absl::Span<JoinableTask* const> tasks) override {
    std::vector<TypedJoinableTask*> typed;
    std::vector<const Request*> requests;
    for (JoinableTask* task : tasks) {
      // The scheduler joins tasks of one dynamic type only.
      typed.push_back(static_cast<TypedJoinableTask*>(task));
      requests.push_back(&typed.back()->joinable_.request);
    }
    using Results = std::vector<absl::StatusOr<Result>>;
    absl::StatusOr<Results> results =
        CallCatching("running joined requests", [&]() -> absl::StatusOr<Results> {
          return joinable_.run(*static_cast<T*>(instance), absl::MakeConstSpan(requests));
        });
    if (results.ok() && results->size() != tasks.size()) {
      results = absl::InternalError(
          absl::StrCat(tasks.size(), " joined requests gave ", results->size(), " results"));
    }
    JoinedRun run;
    if (joinable_.tokens) run.tokens = 0;
    for (size_t i = 0; i < typed.size(); ++i) {
      // Note [Statuses that cross threads]: each caller gets a status of its own.
      typed[i]->result = results.ok() ? std::move((*results)[i])
                                      : absl::StatusOr<Result>(UnsharedCopy(results.status()));
      run.statuses.push_back(UnsharedCopy(typed[i]->result.status()));
      if (joinable_.tokens && typed[i]->result.ok())
        run.tokens += joinable_.tokens(*typed[i]->result);
    }
    return run;
  }

  int64_t ResultTokens() const override {
    if (!joinable_.tokens) return -1;
    return result.ok() ? joinable_.tokens(*result) : 0;
  }

  // The request's result once it has run; what its `Task::publish` hands on.
  absl::StatusOr<Result> result = absl::UnknownError("not run");

 private:
  Joinable<T, Request, Result> joinable_;
};

}  // namespace modelpool::workers_internal

#endif  // MODELPOOL_WORKERS_INTERNAL_JOINABLE_TASK_H_
