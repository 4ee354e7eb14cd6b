#include "lib/workers/job_queue.h"

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

namespace modelpool::workers_internal {
namespace {

struct Jobs {
  QueuedJob* Add(const std::string& model, Priority c, int priority = 0,
                 absl::Time deadline = absl::InfiniteFuture(), int pin = -1, int64_t tokens = 1) {
    auto job = std::make_unique<QueuedJob>();
    job->id = static_cast<JobId>(owned.size() + 1);
    job->seq = job->id;
    job->model = model;
    job->priority_class = c;
    job->priority = priority;
    job->deadline = deadline;
    job->pin = pin;
    job->tokens = tokens;
    queue.Push(job.get());
    owned.push_back(std::move(job));
    return owned.back().get();
  }
  std::vector<std::unique_ptr<QueuedJob>> owned;
  JobQueue queue;
};

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST_CASE("JobQueue ranks a model's jobs by class, priority, deadline and age") {
  Jobs j;
  QueuedJob* batch = j.Add("m", Priority::kBatch);
  QueuedJob* normal_late = j.Add("m", Priority::kNormal, 0, kT0 + absl::Seconds(9));
  QueuedJob* normal_soon = j.Add("m", Priority::kNormal, 0, kT0 + absl::Seconds(1));
  QueuedJob* normal_high = j.Add("m", Priority::kNormal, 5);
  CHECK(j.queue.Best("m", -1) == normal_high);
  j.queue.Remove(normal_high);
  CHECK(j.queue.Best("m", -1) == normal_soon);
  CHECK(j.queue.Oldest("m", -1) == batch);
  CHECK(j.queue.EarliestDeadline() == normal_soon);
  CHECK(j.queue.Count("m") == 3);
  j.queue.Remove(normal_soon);
  j.queue.Remove(normal_late);
  CHECK(j.queue.Best("m", -1) == batch);
  j.queue.Remove(batch);
  CHECK(j.queue.empty());
  CHECK(j.queue.Best("m", -1) == nullptr);
  int models = 0;
  j.queue.ForEachModel([&](const std::string&) { ++models; });
  CHECK(models == 0);
}

TEST_CASE("JobQueue gives a worker its pinned jobs and unpinned ones, never another's") {
  Jobs j;
  QueuedJob* for_one = j.Add("m", Priority::kHigh, 0, absl::InfiniteFuture(), /*pin=*/1);
  QueuedJob* for_two = j.Add("m", Priority::kCritical, 0, absl::InfiniteFuture(), /*pin=*/2);
  QueuedJob* anyone = j.Add("m", Priority::kNormal);
  CHECK(j.queue.Best("m", 1) == for_one);
  CHECK(j.queue.Best("m", 2) == for_two);
  CHECK(j.queue.Best("m", 3) == anyone);
  CHECK(j.queue.Oldest("m", 2) == for_two);
  CHECK(j.queue.CountPinned(2) == 1);
  j.queue.Unpin("m", 2);
  CHECK(for_two->pin == -1);
  CHECK(j.queue.Best("m", 3) == for_two);
  CHECK(j.queue.CountPinned(2) == 0);
}

TEST_CASE("JobQueue counts tokens per model and finds the first job after a seq") {
  Jobs j;
  QueuedJob* a = j.Add("a", Priority::kNormal, 0, absl::InfiniteFuture(), -1, 100);
  QueuedJob* b = j.Add("b", Priority::kNormal, 0, absl::InfiniteFuture(), -1, 7);
  j.Add("a", Priority::kNormal, 0, absl::InfiniteFuture(), -1, 20);
  CHECK(j.queue.Tokens("a") == 120);
  CHECK(j.queue.Tokens("b") == 7);
  CHECK(j.queue.FirstAfter(0) == a);
  CHECK(j.queue.FirstAfter(a->seq) == b);
  CHECK(j.queue.size() == 3);
  CHECK(j.queue.All().front() == a);
}

}  // namespace
}  // namespace modelpool::workers_internal
