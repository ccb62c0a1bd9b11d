#ifndef PTD_BENCH_CLOSED_LOOP_H_
#define PTD_BENCH_CLOSED_LOOP_H_

// What the gRPC load generators under bench/ share: their flags, the closed loop that drives their clients
// (each keeps one call in flight, as a pgbench client does), the run's clock, and latency percentiles.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ptd::bench {

using Clock = std::chrono::steady_clock;

// --name=value from argv, else `fallback`.
inline std::string Flag(int argc, char** argv, const char* name, const char* fallback) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) return argv[i] + prefix.size();
  }
  return fallback;
}

// A run: measured from `measure_from` (after the warm-up) until `stop`.
struct RunClock {
  Clock::time_point measure_from;
  Clock::time_point stop;

  static RunClock Starting(double warmup_seconds, double seconds) {
    const Clock::time_point start = Clock::now();
    auto after = [](Clock::time_point t, double s) {
      return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    const Clock::time_point measure_from = after(start, warmup_seconds);
    return {measure_from, after(measure_from, seconds)};
  }
};

// Drives `clients` from `threads` threads, like pgbench -j: thread t drives clients t, t + threads, ...; each
// client keeps one call in flight until the run stops. A client is any type with
//   void Send(grpc::CompletionQueue* cq);   // starts its next call; its completion's tag is the client
//   void Record(Clock::time_point measure_from);  // takes the finished call's outcome into its results
template <typename C>
void DriveClosedLoop(std::vector<std::unique_ptr<C>>& clients, int threads, const RunClock& run) {
  const int n = static_cast<int>(clients.size());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      grpc::CompletionQueue cq;
      int in_flight = 0;
      for (int c = t; c < n; c += threads) {
        clients[c]->Send(&cq);
        ++in_flight;
      }
      void* tag;
      bool ok;
      while (in_flight > 0 && cq.Next(&tag, &ok)) {
        auto* client = static_cast<C*>(tag);
        client->Record(run.measure_from);
        if (Clock::now() < run.stop) {
          client->Send(&cq);
        } else {
          --in_flight;
        }
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  for (std::thread& w : workers) w.join();
}

// The `p` quantile (0..1) of sorted latencies in microseconds, in milliseconds; 0 when there are none.
inline double PercentileMs(const std::vector<int64_t>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  const size_t i = std::min(sorted_us.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted_us.size())));
  return static_cast<double>(sorted_us[i]) / 1000.0;
}

}  // namespace ptd::bench

#endif  // PTD_BENCH_CLOSED_LOOP_H_
