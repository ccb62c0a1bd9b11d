#include "libs/core/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

namespace {

// Sends this process's stdout to a file for its lifetime (after writing what the log has buffered so far).
class CapturedStdout {
 public:
  CapturedStdout() : path_(std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/ptd-log-test-" +
                           std::to_string(::getpid())) {
    ptd::log::Flush();
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDOUT_FILENO);
    ::close(fd);
  }
  ~CapturedStdout() {
    ptd::log::Flush();
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
    std::remove(path_.c_str());
  }
  std::string Text() const {
    std::ifstream in(path_);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  std::string path_;
  int saved_ = -1;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("log: lines of many threads are written whole, each thread's in order") {
  std::string text;
  {
    CapturedStdout captured;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < 2000; ++i) ptd::log::Info("line", {{"thread", t}, {"i", i}, {"pad", std::string(i % 300, 'x')}});
      });
    }
    for (auto& t : threads) t.join();
    ptd::log::Flush();
    text = captured.Text();
  }
  std::map<int, int> next;  // thread -> the i it writes next
  int lines = 0;
  for (const std::string& line : Lines(text)) {
    auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE(json.is_object());
    if (json["msg"] != "line") continue;
    const int t = json["thread"].get<int>();
    CHECK(json["i"].get<int>() == next[t]);
    next[t] = json["i"].get<int>() + 1;
    ++lines;
  }
  CHECK(lines == 8 * 2000);
}

TEST_CASE("log: an info line is written soon without a flush, and a warn line at once, after the lines before it") {
  CapturedStdout captured;
  ptd::log::Info("first");
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    seen = captured.Text().find("\"msg\":\"first\"") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(seen);
  for (int i = 0; i < 100; ++i) ptd::log::Info("before", {{"i", i}});
  ptd::log::Warn("urgent");
  // No wait: the warn line and every line before it are already out.
  const std::vector<std::string> lines = Lines(captured.Text());
  REQUIRE(lines.size() == 102);
  CHECK(nlohmann::json::parse(lines[100])["i"] == 99);
  CHECK(nlohmann::json::parse(lines[101])["msg"] == "urgent");
}

TEST_CASE("log: lines formatted by the caller go out in the same batches, in order, a warn one at once") {
  CapturedStdout captured;
  ptd::log::SetMinLevel(ptd::log::Level::kWarn);  // not filtered: the caller decides
  ptd::log::WriteFormatted(ptd::log::Level::kInfo, R"({"level":"info","msg":"formatted","i":0})");
  ptd::log::SetMinLevel(ptd::log::Level::kInfo);
  ptd::log::Info("written", {{"i", 1}});
  ptd::log::WriteFormatted(ptd::log::Level::kInfo, R"({"level":"info","msg":"formatted","i":2})");
  ptd::log::WriteFormatted(ptd::log::Level::kWarn, R"({"level":"warn","msg":"formatted","i":3})");
  // No wait: the warn line and every line before it are already out.
  const std::vector<std::string> lines = Lines(captured.Text());
  REQUIRE(lines.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(nlohmann::json::parse(lines[i])["i"] == i);
}
