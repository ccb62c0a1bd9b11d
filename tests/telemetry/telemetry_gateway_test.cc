// End to end through the front door: the real ptd-gateway in front of the real ptd-telemetry, called over
// HTTP/JSON as a plant's admin (password login) and its edge gateway (API key) would.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/gateway/http_client.h"
#include "tests/telemetry/telemetry_fixture.h"

namespace {

using nlohmann::json;
using ptd::testing::HttpClient;
using ptd::testing::HttpResult;
using ptd::testing::Process;
using ptd::testing::telemetry::NowMicros;
using ptd::testing::telemetry::TelemetryServer;

constexpr char kJwtSecret[] = "telemetry-gateway-test-jwt-secret-0123456789";
constexpr char kPassword[] = "correct horse battery staple";

class Front {
 public:
  Front() : telemetry_({}, ptd::testing::FreshDatabase("tgw")) {
    port_ = ptd::testing::FreePort();
    gateway_ = std::make_unique<Process>(
        "ptd-gateway",
        std::vector<std::string>{ptd::testing::BuildPath("services/gateway/ptd-gateway"),
                                 "--http-address=127.0.0.1:" + std::to_string(port_), "--grpc-address=127.0.0.1:0",
                                 "--pg-url=" + telemetry_.db_url(), "--redis-url=" + ptd::testing::GetInfra().redis_url,
                                 "--internal-token=" + std::string(ptd::testing::telemetry::kToken),
                                 "--jwt-secret=" + std::string(kJwtSecret),
                                 "--backends=ptd.telemetry.v1=127.0.0.1:" + std::to_string(telemetry_.grpc_port()),
                                 "--tenant-rate-limit=0", "--api-key-rate-limit=0", "--anonymous-rate-limit=0",
                                 "--readiness-interval=100ms"});
    HttpClient client(port_);
    bool ready = ptd::testing::WaitFor([&] { return client.Get("/readyz").status == 200; });
    INFO(gateway_->ReadLog());
    REQUIRE(ready);
  }
  int port() const { return port_; }

 private:
  TelemetryServer telemetry_;
  int port_ = 0;
  std::unique_ptr<Process> gateway_;
};

struct Admin {
  std::string tenant;
  std::map<std::string, std::string> auth;
};

Admin Register(HttpClient& http, const std::string& name) {
  std::string email = ptd::testing::UniqueName("plant") + "@example.com";
  HttpResult r = http.Post("/v1/auth/register", {{"enterpriseName", name},
                                                 {"enterpriseRoles", {"ENTERPRISE_ROLE_FACTORY"}},
                                                 {"email", email},
                                                 {"password", kPassword},
                                                 {"displayName", "Plant manager"}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  HttpResult login = http.Post("/v1/auth/login", {{"email", email}, {"password", kPassword}});
  REQUIRE(login.status == 200);
  return {r.json()["enterprise"]["enterpriseId"],
          {{"Authorization", "Bearer " + login.json()["accessToken"].get<std::string>()}}};
}

json Created(HttpClient& http, const std::string& path, const json& body, const std::map<std::string, std::string>& h) {
  HttpResult r = http.Post(path, body, h);
  INFO(path << ": " << r.body);
  REQUIRE(r.status == 200);
  return r.json();
}

struct Furnace {
  std::string device_id;
  std::string point_id;
};

// A plant with one line, one device and its crown temperature point.
Furnace MakeFurnace(HttpClient& http, const Admin& admin) {
  json plant = Created(http, "/v1/telemetry/plants",
                       {{"idempotencyKey", "p1"},
                        {"plant", {{"code", "JH-1"}, {"name", "Float glass works"}, {"utcOffsetMinutes", 480}}}},
                       admin.auth);
  json line = Created(http, "/v1/telemetry/plants/" + plant["plantId"].get<std::string>() + "/lines",
                      {{"idempotencyKey", "l1"}, {"line", {{"code", "F1"}, {"name", "Furnace 1"}}}}, admin.auth);
  json device =
      Created(http, "/v1/telemetry/lines/" + line["lineId"].get<std::string>() + "/devices",
              {{"idempotencyKey", "d1"}, {"device", {{"code", "furnace-1"}, {"name", "Furnace"}}}}, admin.auth);
  json point = Created(http, "/v1/telemetry/devices/" + device["deviceId"].get<std::string>() + "/points",
                       {{"idempotencyKey", "t1"},
                        {"point",
                         {{"code", "crown_temp"},
                          {"kind", "POINT_KIND_SENSOR"},
                          {"unit", "°C"},
                          {"expectedIntervalMs", "1000"},
                          {"minValue", 0},
                          {"maxValue", 1700}}}},
                       admin.auth);
  return {device["deviceId"], point["pointId"]};
}

TEST_CASE(
    "through the gateway: an admin registers a plant, its edge gateway writes with an API key, a dashboard reads") {
  Front front;
  HttpClient http(front.port());
  Admin admin = Register(http, "Jinhua Glass");
  json plant = Created(http, "/v1/telemetry/plants",
                       {{"idempotencyKey", "p1"},
                        {"plant", {{"code", "JH-1"}, {"name", "Float glass works"}, {"utcOffsetMinutes", 480}}}},
                       admin.auth);
  std::string plant_id = plant["plantId"];
  json line = Created(http, "/v1/telemetry/plants/" + plant_id + "/lines",
                      {{"idempotencyKey", "l1"}, {"line", {{"code", "F1"}, {"name", "Furnace 1"}}}}, admin.auth);
  json device =
      Created(http, "/v1/telemetry/lines/" + line["lineId"].get<std::string>() + "/devices",
              {{"idempotencyKey", "d1"}, {"device", {{"code", "furnace-1"}, {"name", "Furnace"}}}}, admin.auth);
  std::string device_id = device["deviceId"];
  json point = Created(http, "/v1/telemetry/devices/" + device_id + "/points",
                       {{"idempotencyKey", "t1"},
                        {"point",
                         {{"code", "crown_temp"},
                          {"kind", "POINT_KIND_SENSOR"},
                          {"unit", "°C"},
                          {"expectedIntervalMs", "1000"},
                          {"minValue", 0},
                          {"maxValue", 1700}}}},
                       admin.auth);
  std::string point_id = point["pointId"];

  json key =
      Created(http, "/v1/enterprise/api-keys",
              {{"idempotencyKey", "k1"}, {"name", "edge gateway furnace"}, {"roles", {"USER_ROLE_CLERK"}}}, admin.auth);
  std::map<std::string, std::string> edge = {{"X-API-Key", key["secret"].get<std::string>()}};
  Created(http, "/v1/telemetry/edge-gateways",
          {{"idempotencyKey", "g1"},
           {"edgeGateway",
            {{"name", "furnace edge"}, {"apiKeyId", key["apiKey"]["apiKeyId"]}, {"deviceIds", {device_id}}}}},
          admin.auth);

  const int64_t now = NowMicros();
  json series = {{"deviceId", device_id},
                 {"point", "crown_temp"},
                 {"timeUnixUs", {std::to_string(now - 2'000'000), std::to_string(now - 1'000'000)}},
                 {"values", {1520.5, 1800.0}}};
  HttpResult ingested = http.Post("/v1/telemetry/samples:ingest", {{"batchId", "b1"}, {"series", {series}}}, edge);
  INFO(ingested.body);
  REQUIRE(ingested.status == 200);
  CHECK(ingested.json()["accepted"] == "1");  // int64 as a JSON string
  REQUIRE(ingested.json()["rejected"].size() == 1);
  CHECK(ingested.json()["rejected"][0]["sampleIndex"] == 1);

  // A dashboard (the admin's token) reads the series back.
  auto rfc3339 = [](int64_t us) {
    return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
  };
  HttpResult raw = http.Get("/v1/telemetry/points/" + point_id + "/series?startTime=" + rfc3339(now - 3'600'000'000) +
                                "&endTime=" + rfc3339(now + 60'000'000) + "&resolution=RESOLUTION_RAW",
                            admin.auth);
  INFO(raw.body);
  REQUIRE(raw.status == 200);
  REQUIRE(raw.json()["samples"].size() == 1);
  CHECK(raw.json()["samples"][0]["value"] == 1520.5);
  CHECK(raw.json()["samples"][0]["timeUnixUs"] == std::to_string(now - 2'000'000));
  HttpResult latest = http.Get("/v1/telemetry/latest?deviceId=" + device_id, admin.auth);
  INFO(latest.body);
  REQUIRE(latest.status == 200);
  REQUIRE(latest.json()["values"].size() == 1);
  CHECK(latest.json()["values"][0]["value"] == 1520.5);

  // Bad input: the service's field violation comes back as a 400 naming the field.
  HttpResult bad = http.Get("/v1/telemetry/points/" + point_id + "/series?startTime=2026-01-01T00:00:00Z", admin.auth);
  INFO(bad.body);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("end_time") != std::string::npos);
  // The edge gateway's key may not change the registry (a clerk's key, not an admin's).
  CHECK(http.Post("/v1/telemetry/plants", {{"idempotencyKey", "p2"}, {"plant", {{"code", "X"}, {"name", "X"}}}}, edge)
            .status == 403);

  // Another enterprise sees nothing of it, and its keys write nothing into it.
  Admin other = Register(http, "Other Works");
  CHECK(http.Get("/v1/telemetry/devices/" + device_id, other.auth).status == 404);
  HttpResult cross = http.Post("/v1/telemetry/samples:ingest", {{"series", {series}}}, other.auth);
  REQUIRE(cross.status == 200);
  CHECK(cross.json().value("accepted", "0") == "0");  // zero may be left out, as the JSON mapping allows
  CHECK(cross.json()["rejected"][0]["reason"].get<std::string>().find("unknown device") != std::string::npos);
}

TEST_CASE("through the gateway: a dashboard watches live values as NDJSON lines until the deadline it asked for") {
  Front front;
  HttpClient http(front.port());
  Admin admin = Register(http, "Live Glass");
  Furnace furnace = MakeFurnace(http, admin);
  const std::string watch_target = "/v1/telemetry/live?deviceIds=" + furnace.device_id;

  SECTION("a value ingested while the watch is open arrives as a line") {
    // The response's headers come with its first message, and a watch sees only what is stored after it
    // started: keep storing a sample a moment until the watch delivers one.
    std::atomic<bool> delivered{false};
    std::thread plant([&] {
      HttpClient edge(front.port());
      for (int i = 0; !delivered && i < 200; ++i) {
        json series = {{"deviceId", furnace.device_id},
                       {"point", "crown_temp"},
                       {"timeUnixUs", {std::to_string(NowMicros())}},
                       {"values", {1500.0 + i}}};
        edge.Post("/v1/telemetry/samples:ingest", {{"series", {series}}}, admin.auth);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    HttpClient watch(front.port());
    std::map<std::string, std::string> headers = admin.auth;
    headers["Grpc-Timeout"] = "3S";  // WatchLive ends at the deadline: the watch's length
    HttpResult opened = watch.OpenStream(watch_target, headers);
    std::optional<std::string> first = opened.status == 200 ? watch.ReadLine() : std::nullopt;
    delivered = true;
    plant.join();
    INFO(opened.body);
    REQUIRE(opened.status == 200);
    CHECK(opened.header("content-type") == "application/x-ndjson");
    REQUIRE(first);
    json update = json::parse(*first);
    REQUIRE(update["result"]["values"].size() >= 1);
    json value = update["result"]["values"][0];
    CHECK(value["deviceId"] == furnace.device_id);
    CHECK(value["pointId"] == furnace.point_id);
    CHECK(value["value"].get<double>() >= 1500.0);
    // The watch ends at its deadline: a last line DEADLINE_EXCEEDED (or, if the service noticed first, just
    // the end of the body), and well within a second or two of it.
    const auto ends_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::optional<std::string> line = first;
    while ((line = watch.ReadLine(std::chrono::seconds(6)))) {
      json parsed = json::parse(*line);
      if (parsed.contains("error")) {
        CHECK(parsed["error"]["status"] == "DEADLINE_EXCEEDED");
        CHECK(!watch.ReadLine(std::chrono::seconds(2)));
        break;
      }
    }
    CHECK(!watch.timed_out());
    CHECK(std::chrono::steady_clock::now() < ends_by);
  }
  SECTION("a quiet watch reaching its deadline before any value is a 504") {
    HttpClient watch(front.port());
    std::map<std::string, std::string> headers = admin.auth;
    headers["Grpc-Timeout"] = "1S";
    CHECK(watch.OpenStream(watch_target, headers).status == 504);
  }
  SECTION("without credentials: 401") {
    HttpClient watch(front.port());
    CHECK(watch.OpenStream(watch_target).status == 401);
  }
  SECTION("a device id that is no id: 400 naming it") {
    HttpClient watch(front.port());
    HttpResult r = watch.OpenStream("/v1/telemetry/live?deviceIds=furnace-1", admin.auth);
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("device_ids[0]") != std::string::npos);
  }
  SECTION("another enterprise's device: 400, as if it did not exist") {
    Admin other = Register(http, "Other Glass");
    HttpClient watch(front.port());
    HttpResult r = watch.OpenStream(watch_target, other.auth);
    CHECK(r.status == 400);
    CHECK(r.body.find("no such device") != std::string::npos);
  }
}

}  // namespace
