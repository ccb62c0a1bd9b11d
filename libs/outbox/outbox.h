#ifndef PTD_LIBS_OUTBOX_OUTBOX_H_
#define PTD_LIBS_OUTBOX_OUTBOX_H_

#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "libs/pg/pool.h"

// The transactional outbox (DESIGN.md "Cross-service facts travel as domain events"):
//
//   writer:   pool.InTransaction([&](pqxx::work& tx) {
//               ... change the service's own tables ...
//               return outbox::Write(tx, {.stream = "ptd.trading.events", .type = "ptd.trading.v1.ListingCreated",
//                                         .aggregate_id = id, .tenant_id = tenant, .payload =
//                                         event.SerializeAsString()});
//             });
//   relay:    outbox::Relay (relay.h) publishes committed events to their Redis Streams, in id order.
//   consumer: outbox::Consumer (consumer.h) applies each event once per consumer group (inbox) and then
//             acknowledges it.
//
// Delivery is at least once; the inbox makes the effect exactly once.
//
// The tables: a service copies libs/outbox/outbox.sql (the same text as TablesSql()) into one of its
// numbered migrations, e.g. the end of 0001_init.sql. Copied, not included: an applied migration must never
// change, while this file may grow; a change to it is announced so that services add it as a new migration.
namespace ptd::outbox {

struct Event {
  std::string id{};            // empty: a new ptd::NewId() (UUIDv7, so ids sort in creation order)
  std::string stream{};        // Redis stream key, "ptd.<service>.events"; required
  std::string type{};          // full protobuf name of the payload, "ptd.trading.v1.ListingCreated"; required
  std::string aggregate_id{};  // the object the event is about
  std::string tenant_id{};
  std::string payload{};  // serialized protobuf (any bytes)
  std::string request_id{};
};

// Inserts `event` into the outbox table (found through the search_path) inside the caller's transaction,
// so it is published if and only if that transaction commits, and wakes the outbox's relay on commit:
//  - when a Relay of this outbox runs in this process (see WakeLocalRelaysAfterCommit) and `tx` is run by
//    pg::Pool::InTransaction, that relay is woken directly, right after the commit;
//  - otherwise with a NOTIFY on NotifyChannel(schema), which relays (of any process) LISTEN to.
// Why not always NOTIFY: a transaction that has notified holds a database-wide lock from just before its commit
// until the commit's end, WAL flush included, so that writers that notify commit one at a time (no group
// commit); docs/benchmarks.md "Outbox relay".
// INVALID_ARGUMENT for a missing stream or type, ALREADY_EXISTS for a repeated id, else the database error
// (pg::ToStatus). Never throws; after an error the transaction is unusable and must be rolled back.
absl::Status Write(pqxx::work& tx, const Event& event);

// Waking the relay without NOTIFY, for writers that insert outbox rows with SQL of their own. A relay is
// "local" to an outbox when it runs in this process (between Relay::Start and Relay::Stop) on a pool with the
// same URL and schema (PoolOptions) as the writer's.

// When `tx` is run by pg::Pool::InTransaction and a local relay of that pool's outbox runs, arranges (once per
// transaction) for it to be woken right after `tx` commits and returns true: the caller's SQL then needs no
// pg_notify. Else false: the caller must notify (pg_notify(NotifyChannel(schema), '') in `tx`), as before.
bool WakeLocalRelaysAfterCommit(const pqxx::transaction_base& tx);

// For writers that commit outside Pool::InTransaction (a connection of their own, from pool.OpenConnection()):
// whether a local relay of `pool`'s outbox runs. Ask before writing: when true, leave pg_notify out of the
// statement and call WakeLocalRelays after the commit; when false, notify as before.
bool LocalRelayRunning(const pg::Pool& pool);

// Wakes the local relays of `pool`'s outbox, for rows committed just before; returns whether there was one.
// (False after LocalRelayRunning said true only when the relay has stopped since; the next relay to start
// publishes what is pending at once.)
bool WakeLocalRelays(const pg::Pool& pool);

// The SQL of libs/outbox/outbox.sql: idempotent CREATE ... IF NOT EXISTS statements.
std::string_view TablesSql();

// Runs TablesSql() in `tx` (tests and tools; services use a migration).
absl::Status EnsureTables(pqxx::work& tx);

// The NOTIFY channel on which Write wakes the relays of the outbox in `schema` (those of other processes).
std::string NotifyChannel(std::string_view schema);

}  // namespace ptd::outbox

#endif  // PTD_LIBS_OUTBOX_OUTBOX_H_
