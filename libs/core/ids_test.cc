#include "libs/core/ids.h"

#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/time/clock.h"

TEST_CASE("ids: UUIDv7 text, unique and time-ordered even within a millisecond") {
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back(ptd::NewId());
  std::set<std::string> unique(ids.begin(), ids.end());
  CHECK(unique.size() == ids.size());
  for (size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i - 1] < ids[i]);
  const std::string& id = ids.front();
  CHECK(ptd::IsValidId(id));
  CHECK(id[14] == '7');
  CHECK(std::string("89ab").find(id[19]) != std::string::npos);
}

TEST_CASE("ids: the time of an id is its creation time") {
  absl::Time before = absl::Now();
  std::string id = ptd::NewId();
  absl::Time t = ptd::TimeOfId(id);
  CHECK(t >= absl::FromUnixMillis(absl::ToUnixMillis(before)) - absl::Milliseconds(1));
  CHECK(t <= absl::Now() + absl::Milliseconds(5));
  CHECK(ptd::TimeOfId("not-an-id") == absl::InfinitePast());
}

TEST_CASE("ids: validation") {
  CHECK_FALSE(ptd::IsValidId(""));
  CHECK_FALSE(ptd::IsValidId("0190c6c4-7b1e-7cc0-8f1e-6a5b2c3d4e5"));
  CHECK_FALSE(ptd::IsValidId("0190c6c4-7b1e-7cc0-8f1e-6a5b2c3d4e5g"));
  CHECK(ptd::IsValidId("0190c6c4-7b1e-7cc0-8f1e-6a5b2c3d4e5f"));
}

TEST_CASE("ids: threads never collide") {
  std::vector<std::vector<std::string>> per(4);
  std::vector<std::thread> threads;
  for (auto& v : per) threads.emplace_back([&v] { for (int i = 0; i < 5000; ++i) v.push_back(ptd::NewId()); });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (auto& v : per) all.insert(v.begin(), v.end());
  CHECK(all.size() == 20000);
}
