#include <cstdint>

#include "absl/strings/str_cat.h"
#include "lib/workers/scheduling_policy.h"

namespace modelpool::workers_internal {
namespace {

// Note [The modelpool policy]
// Jobs rank by tier, then within a tier. kCritical jobs are the top tier. Any other job that has
// waited the aging bound is in the next one (first come, first served among them), above every
// other class: so no job waits much past the aging bound unless kCritical work alone fills the
// pool, and kCritical work never waits behind a backlog of aged jobs. The others are in their
// class's tier. Within a class, jobs rank by priority, deadline and age. A worker keeps to its
// model: it takes its model's best job unless another model's best job is in a strictly higher
// tier, so it drains its model's work in a row and loads another only for work that outranks its
// own. Changing models, it takes within the best tier on offer a model it can run without a load
// (an idle instance on its device) before one it would have to load, and of those to load the one
// with the most tokens queued. A load goes where it fits best (see
// `SchedulerView::BetterPlacedElsewhere`). Evictions spare models with queued work that ranks with
// the job being loaded for, and take the least recently used first, weighted by how often they are
// used.
class ModelpoolPolicy : public SchedulingPolicy {
 public:
  absl::string_view name() const override { return "modelpool"; }

  QueuedJob* Choose(const SchedulerView& view, int worker) const override {
    const std::string& current = view.current_model(worker);
    QueuedJob* own = nullptr;
    QueuedJob* best = nullptr;
    bool best_loads = false;
    view.queue().ForEachModel([&](const std::string& model) {
      if (!view.CanTake(worker, model)) return;
      QueuedJob* job = BestOf(view, model, worker);
      if (job == nullptr) return;
      const bool loads = view.NeedsLoad(worker, model);
      // A job pinned to this worker (round robin) is this worker's to take.
      if (loads && job->pin < 0 && view.BetterPlacedElsewhere(worker, model)) return;
      if (model == current) own = job;
      if (best == nullptr || Better(view, *job, loads, *best, best_loads)) {
        best = job;
        best_loads = loads;
      }
    });
    if (own != nullptr && Tier(view, *best) >= Tier(view, *own)) return own;
    return best;
  }

  bool MayEvict(const SchedulerView& view, const std::string& model,
                const QueuedJob* job) const override {
    QueuedJob* waiting = BestOf(view, model, -1);
    if (waiting == nullptr) return true;
    return job != nullptr && Tier(view, *job) < Tier(view, *waiting);
  }

  double EvictionScore(const EvictionCandidate& candidate, absl::Time now) const override {
    return MemoryGovernor::LruWeightedScore(candidate, now);
  }

 private:
  // 0 for kCritical; 1 for any other job that has waited the aging bound; then the classes.
  static constexpr int kAgedTier = 1;
  static int Tier(const SchedulerView& view, const QueuedJob& job) {
    if (job.priority_class == Priority::kCritical) return 0;
    if (view.Starving(job)) return kAgedTier;
    return 1 + static_cast<int>(job.priority_class);
  }

  static bool Before(const SchedulerView& view, const QueuedJob& a, const QueuedJob& b) {
    const int ta = Tier(view, a), tb = Tier(view, b);
    if (ta != tb) return ta < tb;
    if (ta == kAgedTier) return a.seq < b.seq;
    return RanksBefore(a, b);
  }

  // Which of two models' first jobs a worker changing models takes: the higher tier; within a
  // tier a model it can run without a load; then, for a load, the model with more work queued
  // (one load serves it all); then the first by rank.
  static bool Better(const SchedulerView& view, const QueuedJob& a, bool a_loads,
                     const QueuedJob& b, bool b_loads) {
    const int ta = Tier(view, a), tb = Tier(view, b);
    if (ta != tb) return ta < tb;
    if (a_loads != b_loads) return !a_loads;
    if (a_loads) {
      const int64_t qa = view.queue().Tokens(a.model), qb = view.queue().Tokens(b.model);
      if (qa != qb) return qa > qb;
    }
    return Before(view, a, b);
  }

  // The job of `model` that `worker` would take first: its best kCritical one, else its oldest
  // if that one has aged (it is then the model's first in the aged tier), else its best by class
  // and rank.
  static QueuedJob* BestOf(const SchedulerView& view, const std::string& model, int worker) {
    QueuedJob* best = view.queue().Best(model, worker);
    if (best != nullptr && best->priority_class == Priority::kCritical) return best;
    QueuedJob* oldest = view.queue().Oldest(model, worker);
    if (oldest != nullptr && view.Starving(*oldest)) return oldest;
    return best;
  }
};

// The baseline, as Ollama schedules: the oldest request first whatever its model or class, its
// model loaded on demand wherever the free worker is, and the least recently used idle instance
// evicted when memory runs short.
class FifoLruPolicy : public SchedulingPolicy {
 public:
  absl::string_view name() const override { return "fifo-lru"; }

  QueuedJob* Choose(const SchedulerView& view, int worker) const override {
    QueuedJob* oldest = nullptr;
    view.queue().ForEachModel([&](const std::string& model) {
      if (!view.CanTake(worker, model)) return;
      QueuedJob* job = view.queue().Oldest(model, worker);
      if (job != nullptr && (oldest == nullptr || job->seq < oldest->seq)) oldest = job;
    });
    return oldest;
  }

  bool MayEvict(const SchedulerView&, const std::string&, const QueuedJob*) const override {
    return true;
  }

  double EvictionScore(const EvictionCandidate& candidate, absl::Time now) const override {
    if (candidate.last_used == absl::InfinitePast()) return 1e18;
    return absl::ToDoubleSeconds(now - candidate.last_used);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulingPolicy>> MakeSchedulingPolicy(absl::string_view name) {
  if (name == "modelpool") return std::make_unique<ModelpoolPolicy>();
  if (name == "fifo-lru") return std::make_unique<FifoLruPolicy>();
  return absl::InvalidArgumentError(
      absl::StrCat("no scheduling policy \"", name, "\": modelpool or fifo-lru"));
}

}  // namespace modelpool::workers_internal
