#ifndef PTD_SERVICES_TRADING_GROUP_COMMIT_H_
#define PTD_SERVICES_TRADING_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"

// What trading's two group commits (spot orders, services/trading/spot_service.h; buy-now orders,
// services/trading/buy_now.h) share: the queue their callers wait in, drained by one committer thread, and the
// idempotency keys that thread wrote last.
namespace ptd::trading {

// Callers queue requests and wait; one committer thread takes everything queued (at most `max_batch`), hands
// it to `commit`, answers the whole batch, then takes what queued meanwhile. While one batch commits, the next
// one queues: under load each commit carries many requests, and no caller waits for a timer.
template <typename Request>
class GroupCommitQueue {
 public:
  using Commit = std::function<void(const std::vector<Request*>&)>;

  // Starts the committer thread: construct it after everything `commit` uses.
  GroupCommitQueue(size_t max_batch, Commit commit) : max_batch_(max_batch), commit_(std::move(commit)) {
    committer_ = std::thread([this] { Run(); });
  }
  ~GroupCommitQueue() { Stop(); }
  GroupCommitQueue(const GroupCommitQueue&) = delete;
  GroupCommitQueue& operator=(const GroupCommitQueue&) = delete;

  // Queues `request` and returns once the batch it went in was committed (`commit` returned): true. False,
  // without queueing it, once Stop() was called.
  bool Submit(Request& request) {
    Waiter waiter{.request = &request};
    std::unique_lock lock(mu_);
    if (stopping_) return false;
    queue_.push_back(&waiter);
    queued_.notify_one();
    // `done` is set under mu_, so the caller returns, and destroys the waiter, only after the committer
    // is done with it.
    waiter.answered.wait(lock, [&] { return waiter.done; });
    return true;
  }

  // Commits what is queued, then ends the committer thread; later Submits return false.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    queued_.notify_one();
    if (committer_.joinable()) committer_.join();
  }

 private:
  struct Waiter {
    Request* request;
    bool done = false;
    std::condition_variable answered;
  };

  void Run() {
    std::unique_lock lock(mu_);
    while (true) {
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing is left to answer
      std::vector<Waiter*> waiters;
      std::vector<Request*> batch;
      while (!queue_.empty() && batch.size() < max_batch_) {
        waiters.push_back(queue_.front());
        batch.push_back(queue_.front()->request);
        queue_.pop_front();
      }
      lock.unlock();
      commit_(batch);
      lock.lock();
      for (Waiter* w : waiters) {
        w->done = true;
        w->answered.notify_one();
      }
    }
  }

  const size_t max_batch_;
  const Commit commit_;
  std::mutex mu_;
  std::condition_variable queued_;
  std::deque<Waiter*> queue_;
  bool stopping_ = false;
  std::thread committer_;
};

// The (tenant, idempotency key) of the latest `capacity` requests a committer wrote: a request that repeats
// one is most likely a retry, which the committer sends to the transaction whose key look-up answers it
// (instead of failing a whole batch's statement on the unique key). Not thread-safe: the committer's own.
class RecentKeys {
 public:
  explicit RecentKeys(size_t capacity) : capacity_(capacity) {}

  bool Contains(const std::string& tenant, const std::string& key) const {
    return keys_.contains(std::make_pair(tenant, key));
  }
  // Remembers the pair (once), forgetting the oldest beyond `capacity`.
  void Add(const std::string& tenant, const std::string& key) {
    if (!keys_.insert(std::make_pair(tenant, key)).second) return;
    order_.emplace_back(tenant, key);
    if (order_.size() > capacity_) {
      keys_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  const size_t capacity_;
  absl::flat_hash_set<std::pair<std::string, std::string>> keys_;
  std::deque<std::pair<std::string, std::string>> order_;  // oldest first
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_GROUP_COMMIT_H_
