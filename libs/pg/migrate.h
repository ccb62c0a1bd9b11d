#ifndef PTD_LIBS_PG_MIGRATE_H_
#define PTD_LIBS_PG_MIGRATE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/pg/pool.h"

// Schema migrations: numbered SQL files applied once each, in order, at service start-up.
//
// A migrations folder holds files named `NNNN_name.sql` (`0001_init.sql`, `0002_add_index.sql`); the number
// orders them, other files are ignored. A service ships the folder next to its binary (see the CMake
// function `ptd_pg_migrations` in libs/pg/CMakeLists.txt) and passes its path, e.g. from a
// `--migrations` flag that defaults to MigrationsNextToBinary().
namespace ptd {
class Config;
}

namespace ptd::pg {

// Creates the pool's schema if missing and applies, in number order, every file not yet recorded in
// `<schema>.schema_migrations(version, name, checksum, applied_at)`: each file in its own transaction
// together with its record, with search_path set to the schema. The whole run holds a session advisory lock
// keyed by the schema, so processes starting together apply each file exactly once.
//
// Errors: NOT_FOUND when `dir` is missing; INVALID_ARGUMENT for two files with one number or an empty
// schema; FAILED_PRECONDITION when an applied file's content changed (its SHA-256 differs from the recorded
// one); a failing file's SQL error (naming the file), with the files before it kept; UNAVAILABLE when
// the database cannot be reached.
absl::Status Migrate(Pool& pool, const std::filesystem::path& dir);

// `<folder of the running executable>/<name>`, where services install their migrations.
std::filesystem::path MigrationsNextToBinary(std::string_view name = "migrations");

// For a service's main(): the pool from the flags --pg-url, --pg-schema and --pg-pool-size (metrics labelled
// `name`), with the migrations of --migrations-dir (empty: next to the binary) applied. Logs and exits 1 when
// either fails; after applying them exits 0 when --migrate-only is true (a deploy's migration job).
std::unique_ptr<Pool> OpenMigratedPoolOrExit(const Config& config, std::string name, prometheus::Registry* registry);

}  // namespace ptd::pg

#endif  // PTD_LIBS_PG_MIGRATE_H_
