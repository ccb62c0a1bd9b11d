// gateway_bench: the same RPC (trading's GetListing) driven (a) directly over gRPC and (b) over HTTP/JSON
// through ptd-gateway, at the same concurrency, in one run. Prints throughput and latency percentiles of each,
// then runs both again at half of the gateway's peak rate to measure the p99 the gateway adds. Each
// measurement alternates between the two paths in a few rounds, so that both see the same background load.
//
// It needs a running gateway and trading (tools/bench/gateway_bench.sh starts everything); it registers a
// tenant through the gateway, logs in and creates the listing it then reads.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "libs/core/config.h"
#include "ptd/trading/v1/trading.grpc.pb.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// One keep-alive HTTP/1.1 connection.
class HttpConnection {
 public:
  HttpConnection(const std::string& host, int port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(net::ip::make_address(host), static_cast<uint16_t>(port)));
    stream_.socket().set_option(tcp::no_delay(true));
  }
  int Send(http::request<http::string_body>& request, std::string* body = nullptr) {
    http::write(stream_, request);
    http::response<http::string_body> response;
    http::read(stream_, buffer_, response);
    if (body != nullptr) *body = std::move(response.body());
    return response.result_int();
  }

 private:
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

http::request<http::string_body> MakeRequest(http::verb verb, const std::string& target, const std::string& body,
                                             const std::string& token) {
  http::request<http::string_body> r{verb, target, 11};
  r.set(http::field::host, "127.0.0.1");
  if (!token.empty()) r.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) r.set(http::field::content_type, "application/json");
  r.body() = body;
  r.prepare_payload();
  return r;
}

// CPU time and context switches of the processes under test, read from /proc: on a shared machine the
// throughput of each path is set by the CPU every process spends per request, which this shows directly.
// Context switches are those of the threads alive at both ends of a run (a thread that ends takes its
// count along), so they are a lower bound for servers that start and end threads.
struct Usage {
  double cpu_seconds = 0;
  long switches = 0;  // voluntary + involuntary, all threads
};

long ReadSwitches(const std::string& status_path) {
  std::ifstream in(status_path);
  std::string line;
  long total = 0;
  while (std::getline(in, line)) {
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
      total += std::stol(line.substr(line.find(':') + 1));
    }
  }
  return total;
}

// utime + stime of a process (all its threads) and its parent's pid; false when it is gone.
bool ReadStat(const std::string& pid, double* cpu_seconds, std::string* ppid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x && f.size() < 13;) f.push_back(x);
  if (f.size() < 13) return false;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  *ppid = f[1];
  *cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  return true;
}

Usage ReadUsage(const std::string& pid) {
  Usage u;
  std::string ppid;
  if (!ReadStat(pid, &u.cpu_seconds, &ppid)) return u;
  if (DIR* tasks = opendir(("/proc/" + pid + "/task").c_str())) {
    while (dirent* e = readdir(tasks)) {
      if (e->d_name[0] != '.') u.switches += ReadSwitches("/proc/" + pid + "/task/" + e->d_name + "/status");
    }
    closedir(tasks);
  }
  return u;
}

// Named processes to account for ("gateway=123,trading=456,postgres=789+"; a trailing '+' adds the
// process's children, as PostgreSQL's backends).
class Accounting {
 public:
  explicit Accounting(const std::string& spec) {
    std::stringstream in(spec);
    for (std::string item; std::getline(in, item, ',');) {
      size_t eq = item.find('=');
      if (eq == std::string::npos) continue;
      std::string pid = item.substr(eq + 1);
      bool children = !pid.empty() && pid.back() == '+';
      if (children) pid.pop_back();
      processes_.push_back({item.substr(0, eq), pid, children});
    }
    processes_.push_back({"client", "self", false});
  }
  bool empty() const { return processes_.size() == 1; }

  std::map<std::string, Usage> Snapshot() const {
    std::map<std::string, Usage> out;
    std::map<std::string, std::vector<std::string>> children;
    bool any_children = std::any_of(processes_.begin(), processes_.end(), [](auto& p) { return p.children; });
    if (any_children) {
      if (DIR* proc = opendir("/proc")) {
        while (dirent* e = readdir(proc)) {
          if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
          double ignored;
          std::string ppid;
          if (ReadStat(e->d_name, &ignored, &ppid)) children[ppid].push_back(e->d_name);
        }
        closedir(proc);
      }
    }
    for (const auto& p : processes_) {
      if (p.pid == "self") {
        // getrusage counts the threads that have ended too (the workers of each run).
        rusage self;
        getrusage(RUSAGE_SELF, &self);
        out[p.name] = {self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                           1e-6 * static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec),
                       self.ru_nvcsw + self.ru_nivcsw};
        continue;
      }
      Usage total = ReadUsage(p.pid);
      if (p.children) {
        for (const std::string& child : children[p.pid]) {
          Usage u = ReadUsage(child);
          total.cpu_seconds += u.cpu_seconds;
          total.switches += u.switches;
        }
      }
      out[p.name] = total;
    }
    return out;
  }

  // What each process used between two snapshots.
  std::map<std::string, Usage> Delta(const std::map<std::string, Usage>& before,
                                     const std::map<std::string, Usage>& after) const {
    std::map<std::string, Usage> out;
    for (const auto& p : processes_) {
      out[p.name] = {after.at(p.name).cpu_seconds - before.at(p.name).cpu_seconds,
                     after.at(p.name).switches - before.at(p.name).switches};
    }
    return out;
  }

  // "gateway 310 us 8.1 cs, trading ..." per request.
  std::string PerRequest(const std::map<std::string, Usage>& used, size_t requests) const {
    std::string out;
    for (const auto& p : processes_) {
      const Usage& u = used.at(p.name);
      char line[128];
      std::snprintf(line, sizeof(line), "%s%s %.0f us %.1f cs", out.empty() ? "" : ", ", p.name.c_str(),
                    1e6 * u.cpu_seconds / std::max<size_t>(1, requests),
                    static_cast<double>(u.switches) / std::max<size_t>(1, requests));
      out += line;
    }
    return out;
  }

 private:
  struct Process {
    std::string name;
    std::string pid;
    bool children;
  };
  std::vector<Process> processes_;
};

const Accounting* accounting = nullptr;

struct Result {
  std::string name;
  std::map<std::string, Usage> used;  // CPU and context switches, by process
  double seconds = 0;
  size_t ok = 0;
  size_t errors = 0;
  std::vector<double> latencies_us;

  double Rate() const { return ok / seconds; }
  double Percentile(double p) const {
    if (latencies_us.empty()) return 0;
    size_t i = std::min(latencies_us.size() - 1, static_cast<size_t>(p * latencies_us.size()));
    return latencies_us[i];
  }
};

// Runs `call` from `workers` threads for `duration`; at `rate` requests/s in total when rate > 0 (each worker
// paced on its own schedule), else as fast as it can.
template <typename MakeWorker>
Result Drive(const std::string& name, int workers, std::chrono::milliseconds duration, double rate,
             MakeWorker make_worker) {
  std::vector<std::vector<double>> latencies(workers);
  std::atomic<size_t> ok{0}, errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start, end;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      auto call = make_worker();
      while (!go.load()) std::this_thread::yield();
      const double interval_us = rate > 0 ? 1e6 * workers / rate : 0;
      // Spread the workers' schedules over one interval.
      Clock::time_point next = start + std::chrono::microseconds(static_cast<int64_t>(interval_us * w / workers));
      while (true) {
        if (rate > 0) {
          std::this_thread::sleep_until(next);
          next += std::chrono::microseconds(static_cast<int64_t>(interval_us));
        }
        Clock::time_point t0 = Clock::now();
        if (t0 >= end) break;
        bool good = call();
        double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (good) {
          ok.fetch_add(1, std::memory_order_relaxed);
          latencies[w].push_back(us);
        } else {
          errors.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // connections up
  std::map<std::string, Usage> before;
  if (accounting != nullptr) before = accounting->Snapshot();
  start = Clock::now();
  end = start + duration;
  go.store(true);
  for (auto& t : threads) t.join();
  Result r;
  if (accounting != nullptr) r.used = accounting->Delta(before, accounting->Snapshot());
  r.name = name;
  r.seconds = std::chrono::duration<double>(duration).count();
  r.ok = ok.load();
  r.errors = errors.load();
  for (auto& l : latencies) r.latencies_us.insert(r.latencies_us.end(), l.begin(), l.end());
  std::sort(r.latencies_us.begin(), r.latencies_us.end());
  return r;
}

void Print(const Result& r) {
  std::printf("%-34s %10.0f req/s  p50 %8.0f us  p90 %8.0f us  p99 %8.0f us  (%zu ok, %zu errors)\n", r.name.c_str(),
              r.Rate(), r.Percentile(0.50), r.Percentile(0.90), r.Percentile(0.99), r.ok, r.errors);
  if (accounting != nullptr && !r.used.empty()) {
    std::printf("    per request: CPU and context switches: %s\n", accounting->PerRequest(r.used, r.ok).c_str());
  }
}

// One result from several runs.
void Add(Result& total, Result&& part) {
  total.seconds += part.seconds;
  total.ok += part.ok;
  total.errors += part.errors;
  total.latencies_us.insert(total.latencies_us.end(), part.latencies_us.begin(), part.latencies_us.end());
  for (const auto& [name, u] : part.used) {
    total.used[name].cpu_seconds += u.cpu_seconds;
    total.used[name].switches += u.switches;
  }
}

// Measures both paths for `duration` each, alternating between them in `rounds` slices (direct, gateway,
// direct, ...), so that both see the same background load on a shared machine.
template <typename MakeDirect, typename MakeGateway>
std::pair<Result, Result> DriveBoth(const std::string& what, int workers, std::chrono::milliseconds duration,
                                    int rounds, double rate, MakeDirect direct_worker, MakeGateway gateway_worker) {
  Result direct, via;
  direct.name = "direct gRPC, " + what;
  via.name = "HTTP/JSON via gateway, " + what;
  const auto slice = duration / std::max(1, rounds);
  for (int i = 0; i < std::max(1, rounds); ++i) {
    Add(direct, Drive(direct.name, workers, slice, rate, direct_worker));
    Add(via, Drive(via.name, workers, slice, rate, gateway_worker));
  }
  std::sort(direct.latencies_us.begin(), direct.latencies_us.end());
  std::sort(via.latencies_us.begin(), via.latencies_us.end());
  return {std::move(direct), std::move(via)};
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("gateway_bench", "Direct gRPC vs HTTP/JSON through ptd-gateway, same RPC, same concurrency.",
                     {{"gateway", "127.0.0.1:8080", "the gateway's HTTP host:port"},
                      {"trading", "127.0.0.1:50051", "trading's gRPC host:port"},
                      {"internal-token", "", "the internal token, for the direct calls"},
                      {"concurrency", "16", "workers (each with its own HTTP connection; gRPC shares one channel)"},
                      {"duration", "10s", "length of each measured run"},
                      {"warmup", "2s", "unmeasured run before the first measurement"},
                      {"rounds", "5",
                       "slices each measurement is cut into, alternating direct and gateway (same background "
                       "load for both)"},
                      {"processes", "",
                       "name=pid,... of the servers, to report their CPU time and context switches per request "
                       "(pid+ adds the process's children, e.g. PostgreSQL's backends)"}});
  config.ParseOrExit(argc, argv);
  Accounting process_accounting(config.Get("processes"));
  if (!process_accounting.empty()) accounting = &process_accounting;
  const std::string gateway = config.Get("gateway");
  const std::string gw_host = gateway.substr(0, gateway.rfind(':'));
  const int gw_port = std::stoi(gateway.substr(gateway.rfind(':') + 1));
  const int workers = static_cast<int>(config.IntOrExit("concurrency"));
  const auto duration = std::chrono::milliseconds(absl::ToInt64Milliseconds(config.DurationOrExit("duration")));
  const auto warmup = std::chrono::milliseconds(absl::ToInt64Milliseconds(config.DurationOrExit("warmup")));
  const int rounds = static_cast<int>(config.IntOrExit("rounds"));

  // Set up through the gateway: a tenant, its token, a listing.
  HttpConnection setup(gw_host, gw_port);
  std::string email =
      "bench-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "@example.com";
  std::string body;
  nlohmann::json registration = {{"enterpriseName", "Bench"},
                                 {"enterpriseRoles", {"ENTERPRISE_ROLE_SELLER"}},
                                 {"email", email},
                                 {"password", "benchmark password"}};
  auto reg = MakeRequest(http::verb::post, "/v1/auth/register", registration.dump(), "");
  if (setup.Send(reg, &body) != 200) return std::cerr << "register failed: " << body << "\n", 1;
  nlohmann::json registered = nlohmann::json::parse(body);
  const std::string tenant = registered["enterprise"]["enterpriseId"];
  const std::string user = registered["admin"]["userId"];
  auto login = MakeRequest(http::verb::post, "/v1/auth/login",
                           nlohmann::json{{"email", email}, {"password", "benchmark password"}}.dump(), "");
  if (setup.Send(login, &body) != 200) return std::cerr << "login failed: " << body << "\n", 1;
  const std::string token = nlohmann::json::parse(body)["accessToken"];
  nlohmann::json listing = {{"idempotencyKey", "bench"},
                            {"commodityId", "01900000-0000-7000-8000-000000000001"},
                            {"title", {{{"lang", "en"}, {"text", "PVC spot for the benchmark"}}}},
                            {"unitPrice", {{"currency", "CNY"}, {"amountMinor", "580000"}}},
                            {"available", {{"milli", "100000"}, {"unit", "t"}}}};
  auto create = MakeRequest(http::verb::post, "/v1/listings", listing.dump(), token);
  if (setup.Send(create, &body) != 200) return std::cerr << "create listing failed: " << body << "\n", 1;
  const std::string listing_id = nlohmann::json::parse(body)["listingId"];

  auto channel = grpc::CreateChannel(config.Get("trading"), grpc::InsecureChannelCredentials());
  auto stub = ptd::trading::v1::TradingService::NewStub(channel);
  const std::string internal_token = config.Get("internal-token");
  auto direct_worker = [&] {
    return [&] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      context.AddMetadata("x-ptd-internal-token", internal_token);
      context.AddMetadata("x-ptd-tenant", tenant);
      context.AddMetadata("x-ptd-subject", user);
      context.AddMetadata("x-ptd-roles", "admin,seller");
      ptd::trading::v1::GetListingRequest request;
      request.set_listing_id(listing_id);
      ptd::trading::v1::Listing response;
      return stub->GetListing(&context, request, &response).ok();
    };
  };
  auto gateway_worker = [&] {
    auto connection = std::make_shared<HttpConnection>(gw_host, gw_port);
    auto request = std::make_shared<http::request<http::string_body>>(
        MakeRequest(http::verb::get, "/v1/listings/" + listing_id, "", token));
    return [connection, request] { return connection->Send(*request) == 200; };
  };

  std::printf("GetListing, %d concurrent callers, %lld ms per path and load, in %d alternating rounds\n", workers,
              static_cast<long long>(duration.count()), rounds);
  Drive("warm-up (gateway)", workers, warmup, 0, gateway_worker);
  Drive("warm-up (direct)", workers, warmup, 0, direct_worker);
  auto [direct, via] = DriveBoth("peak", workers, duration, rounds, 0, direct_worker, gateway_worker);
  Print(direct);
  Print(via);
  std::printf("gateway / direct throughput: %.2f\n", via.Rate() / direct.Rate());

  const double half = via.Rate() / 2;
  auto [direct_half, via_half] = DriveBoth("half load", workers, duration, rounds, half, direct_worker, gateway_worker);
  std::printf("at %.0f req/s (half of the gateway's peak):\n", half);
  Print(direct_half);
  Print(via_half);
  std::printf("p50 added by the gateway: %.0f us; p99 added: %.0f us\n",
              via_half.Percentile(0.50) - direct_half.Percentile(0.50),
              via_half.Percentile(0.99) - direct_half.Percentile(0.99));
  return 0;
}
