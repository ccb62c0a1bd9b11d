#include "libs/outbox/outbox.h"

#include "libs/core/ids.h"
#include "libs/pg/pool.h"

namespace ptd::outbox {
namespace {

// When a relay of this process is woken after the commit (WakeLocalRelaysAfterCommit): no notification.
constexpr char kInsertSql[] = R"sql(
INSERT INTO outbox (id, stream, type, aggregate_id, tenant_id, payload, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7))sql";

// When no relay runs in this process: one round trip for the insert and a notification that PostgreSQL delivers
// only if the transaction commits (and only once per transaction, however many events it writes).
constexpr char kInsertAndNotifySql[] = R"sql(
WITH inserted AS (
  INSERT INTO outbox (id, stream, type, aggregate_id, tenant_id, payload, request_id)
  VALUES ($1, $2, $3, $4, $5, $6, $7)
  RETURNING 1
)
SELECT pg_notify('ptd_outbox.' || current_schema(), '') FROM inserted)sql";

}  // namespace

absl::Status Write(pqxx::work& tx, const Event& event) {
  if (event.stream.empty()) return absl::InvalidArgumentError("event stream must not be empty");
  if (event.type.empty()) return absl::InvalidArgumentError("event type must not be empty");
  try {
    const char* sql = WakeLocalRelaysAfterCommit(tx) ? kInsertSql : kInsertAndNotifySql;
    tx.exec_params(sql, event.id.empty() ? NewId() : event.id, event.stream, event.type, event.aggregate_id,
                   event.tenant_id, pqxx::binarystring(event.payload), event.request_id);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return pg::ToStatus(e);
  }
}

absl::Status EnsureTables(pqxx::work& tx) {
  try {
    tx.exec(std::string(TablesSql()));
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return pg::ToStatus(e);
  }
}

std::string NotifyChannel(std::string_view schema) { return "ptd_outbox." + std::string(schema); }

}  // namespace ptd::outbox
