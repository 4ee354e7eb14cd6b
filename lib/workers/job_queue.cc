#include "lib/workers/job_queue.h"

#include <tuple>

namespace modelpool::workers_internal {

bool RanksBefore(const QueuedJob& a, const QueuedJob& b) {
  return std::make_tuple(-a.priority, a.deadline, a.seq) <
         std::make_tuple(-b.priority, b.deadline, b.seq);
}

bool JobQueue::ByRank::operator()(const QueuedJob* a, const QueuedJob* b) const {
  if (a->priority_class != b->priority_class) return a->priority_class < b->priority_class;
  return RanksBefore(*a, *b);
}

void JobQueue::Push(QueuedJob* job) {
  ModelQueue& queue = models_[job->model];
  Bucket& bucket = queue.buckets[job->pin];
  bucket.by_rank.insert(job);
  bucket.by_seq.insert(job);
  ++queue.count;
  queue.tokens += job->tokens;
  all_.insert(job);
  if (job->deadline != absl::InfiniteFuture()) deadlines_.insert(job);
  if (job->pin >= 0) ++pinned_[job->pin];
}

void JobQueue::Remove(QueuedJob* job) {
  auto model = models_.find(job->model);
  if (model == models_.end()) return;
  auto bucket = model->second.buckets.find(job->pin);
  if (bucket == model->second.buckets.end() || bucket->second.by_seq.erase(job) == 0) return;
  bucket->second.by_rank.erase(job);
  if (bucket->second.by_seq.empty()) model->second.buckets.erase(bucket);
  --model->second.count;
  model->second.tokens -= job->tokens;
  if (model->second.count == 0) models_.erase(model);
  all_.erase(job);
  deadlines_.erase(job);
  if (job->pin >= 0 && --pinned_[job->pin] == 0) pinned_.erase(job->pin);
}

template <typename Pick, typename Before>
QueuedJob* JobQueue::First(const std::string& model, int worker, Pick pick, Before before) const {
  auto it = models_.find(model);
  if (it == models_.end()) return nullptr;
  QueuedJob* first = nullptr;
  for (const auto& [pin, bucket] : it->second.buckets) {
    if (worker >= 0 && pin != -1 && pin != worker) continue;
    QueuedJob* candidate = pick(bucket);
    if (first == nullptr || before(candidate, first)) first = candidate;
  }
  return first;
}

QueuedJob* JobQueue::Best(const std::string& model, int worker) const {
  return First(
      model, worker, [](const Bucket& b) { return *b.by_rank.begin(); }, ByRank());
}

QueuedJob* JobQueue::Oldest(const std::string& model, int worker) const {
  return First(
      model, worker, [](const Bucket& b) { return *b.by_seq.begin(); }, BySeq());
}

QueuedJob* JobQueue::FirstAfter(uint64_t seq) const {
  QueuedJob probe;
  probe.seq = seq;
  auto it = all_.upper_bound(&probe);
  return it == all_.end() ? nullptr : *it;
}

QueuedJob* JobQueue::EarliestDeadline() const {
  return deadlines_.empty() ? nullptr : *deadlines_.begin();
}

int JobQueue::Count(const std::string& model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.count;
}

int64_t JobQueue::Tokens(const std::string& model) const {
  auto it = models_.find(model);
  return it == models_.end() ? 0 : it->second.tokens;
}

int JobQueue::CountPinned(int worker) const {
  auto it = pinned_.find(worker);
  return it == pinned_.end() ? 0 : it->second;
}

void JobQueue::Unpin(const std::string& model, int worker) {
  auto it = models_.find(model);
  if (it == models_.end()) return;
  auto bucket = it->second.buckets.find(worker);
  if (bucket == it->second.buckets.end()) return;
  std::vector<QueuedJob*> moving(bucket->second.by_seq.begin(), bucket->second.by_seq.end());
  for (QueuedJob* job : moving) {
    Remove(job);
    job->pin = -1;
    Push(job);
  }
}

}  // namespace modelpool::workers_internal
