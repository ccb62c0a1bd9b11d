#include "services/trading/group_commit.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using ptd::trading::GroupCommitQueue;
using ptd::trading::RecentKeys;

struct Request {
  int id = 0;
  int batch = -1;  // set by the commit
};

TEST_CASE("group commit: every request is committed once, answered after its batch, batches of at most max_batch") {
  std::mutex mu;
  std::vector<size_t> sizes;
  std::atomic<int> batches{0};
  GroupCommitQueue<Request> queue(8, [&](const std::vector<Request*>& batch) {
    const int n = batches++;
    for (Request* r : batch) r->batch = n;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a commit's wait: the next batch queues
    std::lock_guard lock(mu);
    sizes.push_back(batch.size());
  });
  std::vector<std::thread> callers;
  std::vector<int> answered(32 * 20, -1);
  for (int t = 0; t < 32; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        Request r{.id = t * 20 + i};
        REQUIRE(queue.Submit(r));
        answered[r.id] = r.batch;  // the commit's answer is there when Submit returns
      }
    });
  }
  for (auto& c : callers) c.join();
  queue.Stop();

  size_t total = 0, largest = 0;
  for (size_t n : sizes) {
    total += n;
    largest = std::max(largest, n);
  }
  CHECK(total == 32 * 20);
  CHECK(largest <= 8);
  CHECK(largest > 1);  // 32 callers and 2 ms commits: requests did queue together
  for (int b : answered) CHECK(b >= 0);
}

TEST_CASE("group commit: after Stop a request is refused, not queued") {
  int committed = 0;
  GroupCommitQueue<Request> queue(4, [&](const std::vector<Request*>& batch) { committed += batch.size(); });
  Request before;
  REQUIRE(queue.Submit(before));
  queue.Stop();
  Request after;
  CHECK_FALSE(queue.Submit(after));
  CHECK(committed == 1);
}

TEST_CASE("recent keys: remembers the latest pairs, forgets the oldest beyond its capacity") {
  RecentKeys keys(3);
  keys.Add("t1", "a");
  keys.Add("t1", "b");
  keys.Add("t1", "a");  // already there: does not count twice
  keys.Add("t2", "a");
  CHECK(keys.Contains("t1", "a"));
  CHECK(keys.Contains("t2", "a"));
  CHECK_FALSE(keys.Contains("t3", "a"));
  keys.Add("t1", "c");  // the fourth pair: the oldest, (t1, a), goes
  CHECK_FALSE(keys.Contains("t1", "a"));
  CHECK(keys.Contains("t1", "b"));
  CHECK(keys.Contains("t1", "c"));
}

}  // namespace
