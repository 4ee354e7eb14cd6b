#include "lib/models/kernels/per_device_answer.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace modelpool::kernels {
namespace {

std::atomic<int> asked{0};

// Even devices can, odd ones cannot; counts the questions.
std::optional<bool> EvenCan(int device) {
  asked.fetch_add(1);
  return device % 2 == 0;
}

// Cannot tell for device 3; counts the questions.
std::optional<bool> NotDevice3(int device) {
  asked.fetch_add(1);
  if (device == 3) return std::nullopt;
  return true;
}

TEST_CASE("PerDeviceAnswer asks once a device and remembers each device's answer") {
  asked = 0;
  PerDeviceAnswer answer(EvenCan);
  for (int round = 0; round < 3; ++round) {
    CHECK(answer.For(0));
    CHECK_FALSE(answer.For(1));
    CHECK(answer.For(2));
    CHECK_FALSE(answer.For(63));
  }
  CHECK(asked.load() == 4);
}

TEST_CASE("PerDeviceAnswer says no where it could not tell, and asks again next time") {
  asked = 0;
  PerDeviceAnswer answer(NotDevice3);
  CHECK_FALSE(answer.For(3));
  CHECK_FALSE(answer.For(3));
  CHECK(asked.load() == 2);
  CHECK(answer.For(2));
  CHECK(answer.For(2));
  CHECK(asked.load() == 3);
}

TEST_CASE("PerDeviceAnswer says no, without asking, for a device it has no slot for") {
  asked = 0;
  PerDeviceAnswer answer(EvenCan);
  CHECK_FALSE(answer.For(-1));
  CHECK_FALSE(answer.For(64));
  CHECK_FALSE(answer.For(1 << 30));
  CHECK(asked.load() == 0);
}

TEST_CASE("PerDeviceAnswer gives every thread the same answers while they ask at once") {
  asked = 0;
  PerDeviceAnswer answer(EvenCan);
  constexpr int kThreads = 8, kDevices = 16;
  std::vector<std::vector<int>> seen(kThreads, std::vector<int>(kDevices, -1));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&answer, &seen, t] {
      for (int round = 0; round < 100; ++round) {
        for (int d = 0; d < kDevices; ++d) seen[t][d] = answer.For(d) ? 1 : 0;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // Checked here, on the main thread: Catch2's assertions are not thread-safe.
  for (int t = 0; t < kThreads; ++t) {
    for (int d = 0; d < kDevices; ++d) CHECK(seen[t][d] == (d % 2 == 0 ? 1 : 0));
  }
  // Threads that ask at the same moment may both ask; never more than once each.
  CHECK(asked.load() >= kDevices);
  CHECK(asked.load() <= kDevices * kThreads);
}

}  // namespace
}  // namespace modelpool::kernels
