#include "libs/pg/migrate.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/core/config.h"
#include "libs/core/log.h"

namespace ptd::pg {
namespace {

constexpr char kLockSql[] = "SELECT pg_advisory_lock(hashtextextended($1, 0))";
constexpr char kUnlockSql[] = "SELECT pg_advisory_unlock(hashtextextended($1, 0))";
constexpr char kChecksumSql[] = "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')";
// Schema-qualified at run time: identifiers cannot be bound parameters, so they go through quote_name.
constexpr char kCreateSchemaSql[] = "CREATE SCHEMA IF NOT EXISTS {schema}";
constexpr char kCreateTableSql[] = R"sql(
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql";
constexpr char kSelectAppliedSql[] = "SELECT version, name, checksum FROM {schema}.schema_migrations";
constexpr char kRecordSql[] = "INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";

struct MigrationFile {
  int version;
  std::string name;  // the file name, "0001_init.sql"
  std::filesystem::path path;
};

struct AppliedMigration {
  std::string name;
  std::string checksum;
};

std::string WithSchema(absl::string_view sql, const std::string& quoted_schema) {
  std::string out(sql);
  for (size_t at = out.find("{schema}"); at != std::string::npos; at = out.find("{schema}", at)) {
    out.replace(at, 8, quoted_schema);
    at += quoted_schema.size();
  }
  return out;
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// "0012_add_index.sql" → 12; -1 for names that are not migrations.
int VersionOf(const std::string& file_name) {
  size_t digits = 0;
  while (digits < file_name.size() && std::isdigit(static_cast<unsigned char>(file_name[digits]))) ++digits;
  const bool is_migration = digits > 0 && digits <= 9 && file_name.size() > digits + 1 && file_name[digits] == '_' &&
                            file_name.ends_with(".sql");
  return is_migration ? std::stoi(file_name.substr(0, digits)) : -1;
}

absl::StatusOr<std::vector<MigrationFile>> ListMigrations(const std::filesystem::path& dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    return absl::NotFoundError(absl::StrCat("migrations folder ", dir.string(), " does not exist"));
  }
  std::map<int, MigrationFile> by_version;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    int version = VersionOf(name);
    if (version < 0) continue;
    auto [it, inserted] = by_version.try_emplace(version, MigrationFile{version, name, entry.path()});
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("migrations ", it->second.name, " and ", name, " have the same number ", version));
    }
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir.string(), ": ", error.message()));
  std::vector<MigrationFile> files;
  for (auto& [version, file] : by_version) files.push_back(std::move(file));
  return files;
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
  return text.str();
}

// Applies what is missing; the caller holds the advisory lock on `connection`.
absl::Status ApplyMissing(pqxx::connection& connection, const std::string& schema,
                          const std::vector<MigrationFile>& files) {
  const std::string quoted_schema = connection.quote_name(schema);
  {
    pqxx::work tx(connection);
    tx.exec(WithSchema(kCreateSchemaSql, quoted_schema));
    tx.exec(WithSchema(kCreateTableSql, quoted_schema));
    tx.commit();
  }
  std::map<int, AppliedMigration> applied;
  {
    pqxx::work tx(connection);
    for (const auto& row : tx.exec(WithSchema(kSelectAppliedSql, quoted_schema))) {
      applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
    }
    tx.commit();
  }

  for (const MigrationFile& file : files) {
    absl::StatusOr<std::string> sql = ReadFile(file.path);
    if (!sql.ok()) return sql.status();
    const std::string checksum = pqxx::nontransaction(connection).exec_params1(kChecksumSql, *sql)[0].as<std::string>();
    if (auto it = applied.find(file.version); it != applied.end()) {
      if (it->second.checksum != checksum) {
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", file.name, " changed after it was applied as ", it->second.name, " (checksum ", checksum,
            ", recorded ", it->second.checksum, "); add a new migration instead of editing an applied one"));
      }
      continue;
    }
    try {
      pqxx::work tx(connection);
      tx.exec(*sql);
      tx.exec_params(WithSchema(kRecordSql, quoted_schema), file.version, file.name, checksum);
      tx.commit();
    } catch (const std::exception& e) {
      return Annotate(ToStatus(e), absl::StrCat("migration ", file.name));
    }
    log::Info("migration applied", {{"schema", schema}, {"migration", file.name}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Migrate(Pool& pool, const std::filesystem::path& dir) {
  const std::string& schema = pool.options().schema;
  if (schema.empty()) return absl::InvalidArgumentError("Migrate needs a pool with a schema");
  absl::StatusOr<std::vector<MigrationFile>> files = ListMigrations(dir);
  if (!files.ok()) return files.status();

  // A connection of its own: the session lock must span the migrations' separate transactions.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = pool.OpenConnection();
  if (!connection.ok()) return connection.status();
  const std::string lock_key = "ptd.migrate:" + schema;
  try {
    pqxx::nontransaction(**connection).exec_params(kLockSql, lock_key);
    absl::Status status = ApplyMissing(**connection, schema, *files);
    pqxx::nontransaction(**connection).exec_params(kUnlockSql, lock_key);
    return status;
  } catch (const std::exception& e) {
    return Annotate(ToStatus(e), absl::StrCat("migrating schema ", schema));
  }  // closing the connection releases the lock in any case
}

std::filesystem::path MigrationsNextToBinary(std::string_view name) {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return std::filesystem::path(name);
  return exe.parent_path() / name;
}

std::unique_ptr<Pool> OpenMigratedPoolOrExit(const Config& config, std::string name, prometheus::Registry* registry) {
  absl::StatusOr<std::unique_ptr<Pool>> pool = Pool::Create({.url = config.Get("pg-url"),
                                                             .schema = config.Get("pg-schema"),
                                                             .size = static_cast<int>(config.IntOrExit("pg-pool-size")),
                                                             .name = std::move(name)},
                                                            registry);
  if (!pool.ok()) ExitWithError("cannot open the PostgreSQL pool", pool.status());
  std::filesystem::path migrations = config.Get("migrations-dir").empty()
                                         ? MigrationsNextToBinary()
                                         : std::filesystem::path(config.Get("migrations-dir"));
  if (absl::Status s = Migrate(**pool, migrations); !s.ok()) ExitWithError("migrations failed", s);
  if (config.BoolOrExit("migrate-only")) {
    log::Info("migrations applied", {{"dir", migrations.string()}});
    std::exit(0);
  }
  return *std::move(pool);
}

}  // namespace ptd::pg
