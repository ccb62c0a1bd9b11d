// gateway_bench: the same RPC (trading's GetListing) driven (a) directly over gRPC and (b) over HTTP/JSON
// through ptd-gateway, at the same concurrency, in one run. Prints throughput and latency percentiles of each,
// then runs both again at half of the gateway's peak rate to measure the p99 the gateway adds.
//
// It needs a running gateway and trading (tools/bench/gateway_bench.sh starts everything); it registers a
// tenant through the gateway, logs in and creates the listing it then reads.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
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

struct Result {
  std::string name;
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
  start = Clock::now();
  end = start + duration;
  go.store(true);
  for (auto& t : threads) t.join();
  Result r;
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
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("gateway_bench", "Direct gRPC vs HTTP/JSON through ptd-gateway, same RPC, same concurrency.",
                     {{"gateway", "127.0.0.1:8080", "the gateway's HTTP host:port"},
                      {"trading", "127.0.0.1:50051", "trading's gRPC host:port"},
                      {"internal-token", "", "the internal token, for the direct calls"},
                      {"concurrency", "16", "workers (each with its own HTTP connection; gRPC shares one channel)"},
                      {"duration", "10s", "length of each measured run"},
                      {"warmup", "2s", "unmeasured run before the first measurement"}});
  config.ParseOrExit(argc, argv);
  const std::string gateway = config.Get("gateway");
  const std::string gw_host = gateway.substr(0, gateway.rfind(':'));
  const int gw_port = std::stoi(gateway.substr(gateway.rfind(':') + 1));
  const int workers = static_cast<int>(config.IntOrExit("concurrency"));
  const auto duration = std::chrono::milliseconds(absl::ToInt64Milliseconds(config.DurationOrExit("duration")));
  const auto warmup = std::chrono::milliseconds(absl::ToInt64Milliseconds(config.DurationOrExit("warmup")));

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

  std::printf("GetListing, %d concurrent callers, %lld ms per run\n", workers,
              static_cast<long long>(duration.count()));
  Drive("warm-up (gateway)", workers, warmup, 0, gateway_worker);
  Drive("warm-up (direct)", workers, warmup, 0, direct_worker);
  Result direct = Drive("direct gRPC, peak", workers, duration, 0, direct_worker);
  Result via = Drive("HTTP/JSON via gateway, peak", workers, duration, 0, gateway_worker);
  Print(direct);
  Print(via);
  std::printf("gateway / direct throughput: %.2f\n", via.Rate() / direct.Rate());

  const double half = via.Rate() / 2;
  Result direct_half = Drive("direct gRPC, half load", workers, duration, half, direct_worker);
  Result via_half = Drive("HTTP/JSON via gateway, half load", workers, duration, half, gateway_worker);
  std::printf("at %.0f req/s (half of the gateway's peak):\n", half);
  Print(direct_half);
  Print(via_half);
  std::printf("p50 added by the gateway: %.0f us; p99 added: %.0f us\n",
              via_half.Percentile(0.50) - direct_half.Percentile(0.50),
              via_half.Percentile(0.99) - direct_half.Percentile(0.99));
  return 0;
}
