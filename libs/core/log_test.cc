#include "libs/core/log.h"

#include <catch2/catch.hpp>

TEST_CASE("log: a line is one JSON object with level, message, service, request id and fields") {
  ptd::log::SetService("trading");
  std::string line;
  {
    ptd::log::ScopedRequestId rid("req-1");
    line = ptd::log::Format(ptd::log::Level::kWarn, "listing created", {{"listing_id", "L1"}, {"n", 3}});
  }
  CHECK(line.find('\n') == std::string::npos);
  auto json = nlohmann::json::parse(line);
  CHECK(json["level"] == "warn");
  CHECK(json["msg"] == "listing created");
  CHECK(json["service"] == "trading");
  CHECK(json["request_id"] == "req-1");
  CHECK(json["listing_id"] == "L1");
  CHECK(json["n"] == 3);
  CHECK(json["ts"].get<std::string>().size() == 24);
  CHECK(ptd::log::CurrentRequestId().empty());
}

TEST_CASE("log: request ids nest and restore") {
  ptd::log::ScopedRequestId outer("a");
  {
    ptd::log::ScopedRequestId inner("b");
    CHECK(ptd::log::CurrentRequestId() == "b");
  }
  CHECK(ptd::log::CurrentRequestId() == "a");
}

TEST_CASE("log: invalid UTF-8 and newlines in a field do not break the line") {
  std::string line = ptd::log::Format(ptd::log::Level::kInfo, "m\nx", {{"bad", std::string("\xff\xfe")}});
  CHECK(line.find('\n') == std::string::npos);
  CHECK_NOTHROW(nlohmann::json::parse(line));
}

TEST_CASE("log: levels parse by name") {
  ptd::log::Level level;
  CHECK(ptd::log::ParseLevel("debug", &level));
  CHECK(level == ptd::log::Level::kDebug);
  CHECK_FALSE(ptd::log::ParseLevel("loud", &level));
}
