// End to end: server-streaming RPCs over HTTP through the real ptd-gateway — trading's public trade tape, and
// a test backend's stream for what trading's cannot show (an error mid-stream, a slow reader, a stop) — read
// as an app would: a chunked body of newline-delimited JSON, one {"result": ...} a message.
#include <signal.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/gateway/gateway_fixture.h"
#include "tests/gateway/http_client.h"
#include "tests/testing/testing.h"

namespace {

using nlohmann::json;
using ptd::testing::HttpClient;
using ptd::testing::HttpResult;
using namespace ptd::testing::gateway;

constexpr char kStreamTrades[] = "grpc_method=\"StreamTrades\"";
constexpr char kCount[] = "grpc_method=\"Count\"";

// Places a limit order through the gateway; returns the response.
json PlaceLimit(HttpClient& http, const Session& s, const std::string& side, int64_t price_minor,
                int64_t quantity_milli) {
  HttpResult r = http.Post("/v1/spot/orders",
                           {{"idempotencyKey", ptd::testing::UniqueName("o")},
                            {"commodityId", kPvc},
                            {"side", side},
                            {"type", "SPOT_ORDER_TYPE_LIMIT"},
                            {"limitPrice", {{"currency", "CNY"}, {"amountMinor", std::to_string(price_minor)}}},
                            {"quantity", {{"milli", std::to_string(quantity_milli)}, {"unit", "t"}}}},
                           s.auth());
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json();
}

// The next line of the stream, parsed; fails the test when none comes.
json NextLine(HttpClient& http, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  std::optional<std::string> line = http.ReadLine(timeout);
  INFO("timed out: " << http.timed_out());
  REQUIRE(line);
  json parsed = json::parse(*line, nullptr, false);
  INFO(*line);
  REQUIRE(parsed.is_object());
  return parsed;
}

// The body ended: no more lines, and not for want of waiting.
bool Ended(HttpClient& http) { return !http.ReadLine(std::chrono::seconds(20)) && !http.timed_out(); }

double GatewayGauge(Platform& platform, const std::string& route) {
  return MetricSum(platform.GatewayMetrics(), "gateway_streams_in_flight", "route=\"" + route + "\"");
}

std::string CountTarget(const std::string& query) { return "/v1/test/count?" + query; }

}  // namespace

TEST_CASE("streams: the trade tape arrives over HTTP as NDJSON lines, live, as orders cross") {
  Platform platform;
  HttpClient http(platform.port());
  Session seller = RegisterAndLogin(http, "Seller", {"ENTERPRISE_ROLE_SELLER"});
  Session buyer = RegisterAndLogin(http, "Buyer", {"ENTERPRISE_ROLE_BUYER"});
  HttpResult book = http.Get(std::string("/v1/spot/books/") + kPvc, buyer.auth());
  REQUIRE(book.status == 200);
  const int64_t start = std::stoll(book.json().value("lastTradeSequence", "0"));

  // A trade before the stream opens: replayed from after_sequence.
  PlaceLimit(http, seller, "SPOT_SIDE_SELL", 580000, 10000);
  json first_fill = PlaceLimit(http, buyer, "SPOT_SIDE_BUY", 580000, 4000);
  REQUIRE(first_fill["trades"].size() == 1);

  HttpClient tape(platform.port());
  HttpResult opened = tape.OpenStream(absl::StrCat("/v1/spot/books/", kPvc, "/trades:stream?afterSequence=", start),
                                      {{"Authorization", "Bearer " + buyer.access_token}, {"X-Request-Id", "tape-1"}});
  INFO(opened.body);
  REQUIRE(opened.status == 200);
  CHECK(opened.header("content-type") == "application/x-ndjson");
  CHECK(opened.header("transfer-encoding") == "chunked");
  CHECK(opened.header("x-request-id") == "tape-1");
  CHECK(opened.header("cache-control") == "no-store");
  json replayed = NextLine(tape);
  REQUIRE(replayed.contains("result"));
  CHECK(replayed["result"]["commodityId"] == kPvc);
  CHECK(replayed["result"]["sequence"] == std::to_string(start + 1));
  CHECK(replayed["result"]["price"]["amountMinor"] == "580000");
  CHECK(replayed["result"]["quantity"]["milli"] == "4000");
  CHECK(replayed["result"]["aggressorSide"] == "SPOT_SIDE_BUY");
  CHECK(!replayed["result"].contains("tenantId"));  // the tape shows no owners

  // Trades made while the stream is open arrive as they happen, in tape order.
  for (int i = 0; i < 3; ++i) {
    json fill = PlaceLimit(http, buyer, "SPOT_SIDE_BUY", 590000, 1000);
    REQUIRE(fill["trades"].size() == 1);
    json live = NextLine(tape);
    CHECK(live["result"]["sequence"] == std::to_string(start + 2 + i));
    CHECK(live["result"]["price"]["amountMinor"] == "580000");  // the resting order's price
    CHECK(live["result"]["quantity"]["milli"] == "1000");
  }
  CHECK(!tape.ReadLine(std::chrono::milliseconds(300)));  // nothing else traded
  CHECK(tape.timed_out());
  CHECK(MetricSum(platform.GatewayMetrics(), "gateway_stream_messages_total",
                  "route=\"/v1/spot/books/{commodity_id}/trades:stream\"") == 4);
  CHECK(GatewayGauge(platform, "/v1/spot/books/{commodity_id}/trades:stream") == 1);

  // Hanging up cancels the backend call: trading's handler returns, the gateway holds nothing.
  REQUIRE(platform.TradingMetric("grpc_server_started_total", kStreamTrades) == 1);
  tape.Disconnect();
  CHECK(ptd::testing::WaitFor([&] { return platform.TradingMetric("grpc_server_handled_total", kStreamTrades) == 1; },
                              std::chrono::seconds(5)));
  CHECK(
      ptd::testing::WaitFor([&] { return GatewayGauge(platform, "/v1/spot/books/{commodity_id}/trades:stream") == 0; },
                            std::chrono::seconds(5)));
  // One log line for the stream, when it ended, with its messages.
  CHECK(ptd::testing::WaitFor([&] {
    std::string log = platform.gateway().ReadLog();
    return log.find(R"("grpc_code":"CANCELLED","messages":4)") != std::string::npos &&
           log.find(R"("request_id":"tape-1")") != std::string::npos;
  }));
}

TEST_CASE("streams: refused before they start, as unary calls are") {
  static Platform platform;
  HttpClient http(platform.port());
  static Session s = RegisterAndLogin(http);
  const std::string tape = absl::StrCat("/v1/spot/books/", kPvc, "/trades:stream");

  SECTION("no credentials: 401") {
    HttpResult r = http.OpenStream(tape);
    CHECK(r.status == 401);
    CHECK(r.json()["status"] == "UNAUTHENTICATED");
    CHECK(r.header("www-authenticate") == "Bearer");
    CHECK(r.header("content-type") == "application/json");
  }
  SECTION("a commodity id that is no id: 400 naming the field, from trading") {
    HttpResult r = http.OpenStream("/v1/spot/books/not-an-id/trades:stream", s.auth());
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.json()["status"] == "INVALID_ARGUMENT");
    CHECK(ViolatedFields(r.json()) == std::vector<std::string>{"commodity_id"});
  }
  SECTION("a negative after_sequence: 400 naming it") {
    HttpResult r = http.OpenStream(tape + "?afterSequence=-1", s.auth());
    CHECK(r.status == 400);
    CHECK(ViolatedFields(r.json()) == std::vector<std::string>{"after_sequence"});
  }
  SECTION("a commodity without a spot book: 404") {
    HttpResult r = http.OpenStream("/v1/spot/books/01900000-0000-7000-8000-000000000004/trades:stream", s.auth());
    CHECK(r.status == 404);
  }
  SECTION("an unknown query parameter: 400 from the gateway") {
    HttpResult r = http.OpenStream(tape + "?colour=red", s.auth());
    CHECK(r.status == 400);
  }
  SECTION("client-streaming and bidirectional methods have no route") {
    CHECK(http.Post("/v1/test/upload", json::object(), s.auth()).status == 404);
    CHECK(http.Post("/v1/test/chat", json::object(), s.auth()).status == 404);
  }
  // Every refusal left the connection usable.
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
}

TEST_CASE("streams: every message a line, the end finishes the body, and the connection takes the next request") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  const int connections = http.connections();

  HttpResult opened = http.OpenStream(CountTarget("count=5&intervalMs=10"), s.auth());
  REQUIRE(opened.status == 200);
  CHECK(opened.header("content-type") == "application/x-ndjson");
  CHECK(opened.header("x-request-id").size() == 36);
  for (int i = 0; i < 5; ++i) {
    json line = NextLine(http);
    REQUIRE(line.contains("result"));
    CHECK(line.size() == 1);
    CHECK(line["result"]["index"] == i);
    CHECK(line["result"]["tenant"] == s.tenant);
    CHECK(line["result"]["requestId"] == opened.header("x-request-id"));
    // A stream is not held to --backend-timeout (10 s): --max-stream-duration (1 h) bounds it.
    CHECK(std::stoll(line["result"]["deadlineMs"].get<std::string>()) > 3500 * 1000);
  }
  CHECK(Ended(http));
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
  CHECK(http.connections() == connections);

  // A stream without messages: 200 and an empty body.
  HttpResult empty = http.OpenStream(CountTarget("count=0"), s.auth());
  CHECK(empty.status == 200);
  CHECK(Ended(http));

  // Several streams one after another on one connection.
  for (int round = 0; round < 3; ++round) {
    REQUIRE(http.OpenStream(CountTarget("count=2"), s.auth()).status == 200);
    CHECK(NextLine(http)["result"]["index"] == 0);
    CHECK(NextLine(http)["result"]["index"] == 1);
    CHECK(Ended(http));
  }
  CHECK(http.connections() == connections);
  std::string metrics = platform.GatewayMetrics();
  CHECK(MetricSum(metrics, "gateway_stream_messages_total", "route=\"/v1/test/count\"") == 11);
  CHECK(MetricSum(metrics, "http_requests_total", "route=\"/v1/test/count\"") == 5);
  CHECK(MetricSum(metrics, "gateway_streams_in_flight", "route=\"/v1/test/count\"") == 0);

  // The OpenAPI document says what the route answers.
  json doc = http.Get("/openapi.json").json();
  json line = doc["paths"]["/v1/test/count"]["get"]["responses"]["200"]["content"]["application/x-ndjson"];
  CHECK(line["schema"]["properties"]["result"]["$ref"] == "#/components/schemas/ptd.gwtest.v1.CountMessage");
}

TEST_CASE("streams: an error after the first message is a last {\"error\"} line, before it an error response") {
  static Platform platform;
  HttpClient http(platform.port());
  static Session s = RegisterAndLogin(http);

  SECTION("after two messages") {
    REQUIRE(http.OpenStream(CountTarget("count=2&code=9&message=told%20to%20fail"), s.auth()).status == 200);
    CHECK(NextLine(http)["result"]["index"] == 0);
    CHECK(NextLine(http)["result"]["index"] == 1);
    json last = NextLine(http);
    CHECK(last == json({{"error",
                         {{"code", 9},
                          {"status", "FAILED_PRECONDITION"},
                          {"message", "told to fail"},
                          {"details", json::array()}}}}));
    CHECK(Ended(http));
  }
  SECTION("with details, after a message") {
    REQUIRE(http.OpenStream(CountTarget("count=1&code=3&message=must%20be%20positive&field=a.b"), s.auth()).status ==
            200);
    NextLine(http);
    json last = NextLine(http);
    CHECK(last["error"]["code"] == 3);
    CHECK(ViolatedFields(last["error"]) == std::vector<std::string>{"a.b"});
    CHECK(Ended(http));
  }
  SECTION("before the first message: the status mapped as for unary calls, the same body") {
    auto [code, http_status] = GENERATE(table<int, int>({{5, 404}, {7, 403}, {14, 503}, {13, 500}}));
    HttpResult r = http.OpenStream(CountTarget(absl::StrCat("count=0&code=", code, "&message=no")), s.auth());
    CHECK(r.status == http_status);
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.json()["code"] == code);
    CHECK(r.json()["message"] == "no");
  }
  SECTION("the client's Grpc-Timeout ends a stream: DEADLINE_EXCEEDED, as a line or as 504") {
    std::map<std::string, std::string> headers = s.auth();
    headers["Grpc-Timeout"] = "700m";
    REQUIRE(http.OpenStream(CountTarget("count=-1&intervalMs=100"), headers).status == 200);
    json line = NextLine(http);
    CHECK(std::stoll(line["result"]["deadlineMs"].get<std::string>()) <= 700);
    while (line.contains("result")) line = NextLine(http);
    CHECK(line["error"]["code"] == 4);
    CHECK(line["error"]["status"] == "DEADLINE_EXCEEDED");
    CHECK(Ended(http));
    headers["Grpc-Timeout"] = "200m";
    CHECK(http.OpenStream(CountTarget("count=1&intervalMs=5000"), headers).status == 504);
  }
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
}

TEST_CASE("streams: --max-stream-duration bounds a stream's deadline") {
  Platform platform({"--max-stream-duration=30s"});
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  REQUIRE(http.OpenStream(CountTarget("count=1"), s.auth()).status == 200);
  int64_t deadline_ms = std::stoll(NextLine(http)["result"]["deadlineMs"].get<std::string>());
  CHECK(deadline_ms > 20000);
  CHECK(deadline_ms <= 30500);  // gRPC rounds a timeout up when it sends it
}

TEST_CASE("streams: hanging up cancels the backend call at once, also while it waits for its first message") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);

  // Hung up mid-stream.
  HttpClient reader(platform.port());
  REQUIRE(reader.OpenStream(CountTarget("count=-1&intervalMs=20"), s.auth()).status == 200);
  for (int i = 0; i < 3; ++i) NextLine(reader);
  CHECK(GatewayGauge(platform, "/v1/test/count") == 1);
  reader.Disconnect();
  CHECK(ptd::testing::WaitFor([&] { return platform.TestBackendMetric("grpc_server_handled_total", kCount) == 1; },
                              std::chrono::seconds(3)));
  CHECK(ptd::testing::WaitFor([&] { return GatewayGauge(platform, "/v1/test/count") == 0; }, std::chrono::seconds(3)));

  // Hung up before the first message, while nothing is being written that could notice it.
  HttpClient early(platform.port());
  REQUIRE(early.Send(CountTarget("count=1&intervalMs=600000"), s.auth()));
  CHECK(ptd::testing::WaitFor([&] { return GatewayGauge(platform, "/v1/test/count") == 1; }));
  CHECK(ptd::testing::WaitFor([&] { return platform.TestBackendMetric("grpc_server_started_total", kCount) == 2; }));
  early.Disconnect();
  CHECK(ptd::testing::WaitFor([&] { return platform.TestBackendMetric("grpc_server_handled_total", kCount) == 2; },
                              std::chrono::seconds(3)));
  CHECK(ptd::testing::WaitFor([&] { return GatewayGauge(platform, "/v1/test/count") == 0; }, std::chrono::seconds(3)));
  // Logged as 499 (the client closed the request) with the code of the cancelled call.
  CHECK(ptd::testing::WaitFor([&] {
    return platform.gateway().ReadLog().find(
               R"("grpc_code":"CANCELLED","messages":0,"method":"GET","path":"/v1/test/count")") != std::string::npos;
  }));
  CHECK(platform.gateway().ReadLog().find(R"("status":499)") != std::string::npos);
  // The gateway goes on.
  CHECK(http.Get("/v1/verticals", s.auth()).status == 200);
}

TEST_CASE("streams: a client that reads slowly holds the backend back, and nothing piles up in the gateway") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  auto resident_bytes = [&] {
    std::string metrics = platform.GatewayMetrics();
    size_t at = metrics.find("\nprocess_resident_memory_bytes ");
    REQUIRE(at != std::string::npos);
    return std::stod(metrics.substr(metrics.find(' ', at) + 1));
  };
  const double resident_before = resident_bytes();
  // 300 messages of 256 KiB: 75 MiB the backend would send at once if nothing held it back.
  constexpr int kMessages = 300;
  REQUIRE(http.OpenStream(CountTarget(absl::StrCat("count=", kMessages, "&payloadBytes=262144")), s.auth()).status ==
          200);
  CHECK(NextLine(http)["result"]["index"] == 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // reads nothing

  const double written = MetricSum(platform.GatewayMetrics(), "gateway_stream_messages_total", "/v1/test/count");
  const double grown_mib = (resident_bytes() - resident_before) / (1 << 20);
  INFO("messages written while the client did not read: " << written << ", gateway memory grown by " << grown_mib
                                                          << " MiB");
  CHECK(written < kMessages / 2);  // what the sockets hold, no more
  CHECK(grown_mib < 32);
  // Everything arrives, in order, once the client reads.
  for (int i = 1; i < kMessages; ++i) {
    json line = NextLine(http);
    REQUIRE(line["result"]["index"] == i);
    REQUIRE(line["result"]["payload"].get<std::string>().size() == 262144);
  }
  CHECK(Ended(http));
}

TEST_CASE("streams: SIGTERM ends open streams with a last UNAVAILABLE line, and the gateway exits") {
  Platform platform;
  HttpClient http(platform.port());
  Session s = RegisterAndLogin(http);
  REQUIRE(http.OpenStream(CountTarget("count=-1&intervalMs=50"), s.auth()).status == 200);
  NextLine(http);
  platform.gateway().Signal(SIGTERM);
  json line = NextLine(http);
  while (line.contains("result")) line = NextLine(http);
  CHECK(line["error"]["code"] == 14);
  CHECK(line["error"]["status"] == "UNAVAILABLE");
  CHECK(Ended(http));
  int status = platform.gateway().Wait(std::chrono::seconds(20));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("streams: over HTTPS too") {
  std::string dir = ptd::testing::BuildPath("tests/gateway/tls-" + ptd::testing::UniqueName("s"));
  std::string command = "mkdir -p " + dir +
                        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                        "-subj /CN=localhost -days 1 -keyout " +
                        dir + "/key.pem -out " + dir + "/cert.pem 2>/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  Platform platform;
  int port = 0;
  auto tls = platform.StartGateway({"--tls-cert=" + dir + "/cert.pem", "--tls-key=" + dir + "/key.pem"}, &port, true);
  HttpClient https(port, /*tls=*/true);
  Session s = RegisterAndLogin(https);
  for (int round = 0; round < 2; ++round) {
    REQUIRE(https.OpenStream(CountTarget("count=3&intervalMs=20&code=9&message=done"), s.auth()).status == 200);
    for (int i = 0; i < 3; ++i) CHECK(NextLine(https)["result"]["index"] == i);
    CHECK(NextLine(https)["error"]["code"] == 9);
    CHECK(Ended(https));
  }
  CHECK(https.Get("/v1/verticals", s.auth()).status == 200);
  CHECK(https.connections() == 1);
  // Hanging up cancels the call over TLS as well.
  REQUIRE(https.OpenStream(CountTarget("count=-1&intervalMs=20"), s.auth()).status == 200);
  NextLine(https);
  https.Disconnect();
  CHECK(ptd::testing::WaitFor([&] {
    return MetricSum(HttpClient(port, true).Get("/metrics").body, "gateway_streams_in_flight", "/v1/test/count") == 0;
  }));
}
