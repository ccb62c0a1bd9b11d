// pg_migrate_test_helper URL SCHEMA DIR: applies DIR's migrations to SCHEMA; exit 0 on success.
// Started several times at once by migrate_test.cc to show that concurrent processes apply each file once.
#include <iostream>

#include "libs/pg/migrate.h"
#include "libs/pg/pool.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: pg_migrate_test_helper URL SCHEMA DIR\n";
    return 2;
  }
  auto pool = ptd::pg::Pool::Create({.url = argv[1], .schema = argv[2], .size = 1}, nullptr);
  if (!pool.ok()) {
    std::cerr << pool.status() << "\n";
    return 1;
  }
  absl::Status status = ptd::pg::Migrate(**pool, argv[3]);
  std::cerr << "migrate: " << status << "\n";
  return status.ok() ? 0 : 1;
}
