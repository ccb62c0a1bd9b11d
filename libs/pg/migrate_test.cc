#include "libs/pg/migrate.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "tests/testing/testing.h"

namespace ptd::pg {
namespace {

using ptd::testing::FreshDatabase;
using ptd::testing::UniqueName;

// A folder of migration files under the system's temp folder, removed at the end of the test.
class MigrationDir {
 public:
  explicit MigrationDir(const std::map<std::string, std::string>& files)
      : path_(std::filesystem::temp_directory_path() / UniqueName("migrations")) {
    std::filesystem::create_directories(path_);
    for (const auto& [name, sql] : files) Write(name, sql);
  }
  ~MigrationDir() { std::filesystem::remove_all(path_); }

  void Write(const std::string& name, const std::string& sql) { std::ofstream(path_ / name) << sql; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<Pool> MakePool(const std::string& url, const std::string& schema) {
  auto pool = Pool::Create({.url = url, .schema = schema, .size = 2}, nullptr);
  REQUIRE(pool.ok());
  return *std::move(pool);
}

std::vector<std::string> Strings(Pool& pool, const std::string& sql) {
  absl::StatusOr<std::vector<std::string>> values =
      pool.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> out;
        for (const auto& row : tx.exec(sql)) out.push_back(row[0].as<std::string>());
        return out;
      });
  REQUIRE(values.ok());
  return *values;
}

// Migrations whose effects show whether each ran once and in number order (9 before 10).
const std::map<std::string, std::string> kShopMigrations = {
    {"0001_init.sql",
     "CREATE TABLE item (id int PRIMARY KEY, name text);\nCREATE TABLE log (step text);\n"
     "INSERT INTO log VALUES ('1');"},
    {"9_price.sql", "ALTER TABLE item ADD COLUMN price_minor bigint; INSERT INTO log VALUES ('9');"},
    {"0010_default.sql", "ALTER TABLE item ALTER COLUMN price_minor SET DEFAULT 0; INSERT INTO log VALUES ('10');"},
    {"README.md", "not a migration"},
};

TEST_CASE("pg: migrations apply once each, in number order, and a second run changes nothing") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir(kShopMigrations);
  auto pool = MakePool(url, "shop");

  REQUIRE(Migrate(*pool, dir.path()).ok());
  REQUIRE(Migrate(*pool, dir.path()).ok());

  CHECK(Strings(*pool, "SELECT step FROM log") == std::vector<std::string>{"1", "9", "10"});
  CHECK(Strings(*pool, "SELECT name FROM shop.schema_migrations ORDER BY version") ==
        std::vector<std::string>{"0001_init.sql", "9_price.sql", "0010_default.sql"});
  CHECK(Strings(*pool, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'item'") ==
        std::vector<std::string>{"shop"});
}

TEST_CASE("pg: a migration added later is applied alone") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir(kShopMigrations);
  auto pool = MakePool(url, "shop");
  REQUIRE(Migrate(*pool, dir.path()).ok());

  dir.Write("0011_more.sql", "INSERT INTO log VALUES ('11');");
  REQUIRE(Migrate(*pool, dir.path()).ok());

  CHECK(Strings(*pool, "SELECT step FROM log") == std::vector<std::string>{"1", "9", "10", "11"});
}

TEST_CASE("pg: editing an applied migration is FAILED_PRECONDITION") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir(kShopMigrations);
  auto pool = MakePool(url, "shop");
  REQUIRE(Migrate(*pool, dir.path()).ok());

  dir.Write("9_price.sql", "ALTER TABLE item ADD COLUMN price_minor numeric;");
  absl::Status status = Migrate(*pool, dir.path());

  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(status.message(), "9_price.sql"));
}

TEST_CASE("pg: a failing migration is not recorded, the ones before it stay applied") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir({{"0001_init.sql", "CREATE TABLE item (id int);"},
                    {"0002_broken.sql", "CREATE TABLE other (id int); ALTER TABLE nothing_here ADD COLUMN x int;"}});
  auto pool = MakePool(url, "shop");

  absl::Status status = Migrate(*pool, dir.path());
  CHECK(status.code() == absl::StatusCode::kInternal);
  CHECK(absl::StrContains(status.message(), "0002_broken.sql"));
  CHECK(absl::StrContains(status.message(), "nothing_here"));
  CHECK(Strings(*pool, "SELECT name FROM shop.schema_migrations") == std::vector<std::string>{"0001_init.sql"});
  // The failed file's first statement was rolled back with the rest of it.
  CHECK(Strings(*pool, "SELECT coalesce(to_regclass('shop.other')::text, 'none')") == std::vector<std::string>{"none"});

  dir.Write("0002_broken.sql", "CREATE TABLE other (id int);");
  REQUIRE(Migrate(*pool, dir.path()).ok());
  CHECK(Strings(*pool, "SELECT count(*) FROM shop.schema_migrations") == std::vector<std::string>{"2"});
}

TEST_CASE("pg: a bad migrations folder is reported") {
  std::string url = FreshDatabase("mig");
  auto pool = MakePool(url, "shop");
  CHECK(Migrate(*pool, "/nonexistent/migrations").code() == absl::StatusCode::kNotFound);

  MigrationDir dir({{"0001_a.sql", "SELECT 1;"}, {"1_b.sql", "SELECT 1;"}});
  CHECK(Migrate(*pool, dir.path()).code() == absl::StatusCode::kInvalidArgument);

  auto no_schema = Pool::Create({.url = url}, nullptr);
  REQUIRE(no_schema.ok());
  CHECK(Migrate(**no_schema, dir.path()).code() == absl::StatusCode::kInvalidArgument);
}

// Slow migrations widen the window in which concurrent migrators overlap; `applied` counts each run.
const std::map<std::string, std::string> kSlowMigrations = {
    {"0001_init.sql", "CREATE TABLE applied (migration text); SELECT pg_sleep(0.3); INSERT INTO applied VALUES ('1');"},
    {"0002_more.sql", "SELECT pg_sleep(0.2); INSERT INTO applied VALUES ('2');"},
};

TEST_CASE("pg: threads with their own pools migrating at once apply each file once") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir(kSlowMigrations);
  std::vector<absl::Status> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { result = Migrate(*MakePool(url, "race"), dir.path()); });
  }
  for (auto& thread : threads) thread.join();

  for (const auto& result : results) CHECK(result.ok());
  auto pool = MakePool(url, "race");
  CHECK(Strings(*pool, "SELECT migration FROM applied ORDER BY 1") == std::vector<std::string>{"1", "2"});
}

TEST_CASE("pg: processes migrating at once apply each file once") {
  std::string url = FreshDatabase("mig");
  MigrationDir dir(kSlowMigrations);
  // Built next to this test binary (not found through BuildPath: ctest does not pass PTD_BUILD_DIR).
  std::string helper = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "pg_migrate_test_helper");
  std::vector<std::unique_ptr<ptd::testing::Process>> processes;
  for (int i = 0; i < 3; ++i) {
    processes.push_back(
        std::make_unique<ptd::testing::Process>("pg_migrate_test_helper_" + std::to_string(i),
                                                std::vector<std::string>{helper, url, "race", dir.path().string()}));
  }
  for (auto& process : processes) {
    int status = process->Wait();
    INFO(process->ReadLog());
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  auto pool = MakePool(url, "race");
  CHECK(Strings(*pool, "SELECT migration FROM applied ORDER BY 1") == std::vector<std::string>{"1", "2"});
  CHECK(Strings(*pool, "SELECT count(*) FROM race.schema_migrations") == std::vector<std::string>{"2"});
}

}  // namespace
}  // namespace ptd::pg
