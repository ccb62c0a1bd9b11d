#ifndef PTD_LIBS_OUTBOX_OUTBOX_H_
#define PTD_LIBS_OUTBOX_OUTBOX_H_

#include <pqxx/pqxx>
#include <string>
#include <string_view>

#include "absl/status/status.h"

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
// so it is published if and only if that transaction commits; wakes a listening Relay on commit.
// INVALID_ARGUMENT for a missing stream or type, ALREADY_EXISTS for a repeated id, else the database error
// (pg::ToStatus). Never throws; after an error the transaction is unusable and must be rolled back.
absl::Status Write(pqxx::work& tx, const Event& event);

// The SQL of libs/outbox/outbox.sql: idempotent CREATE ... IF NOT EXISTS statements.
std::string_view TablesSql();

// Runs TablesSql() in `tx` (tests and tools; services use a migration).
absl::Status EnsureTables(pqxx::work& tx);

// The NOTIFY channel on which Write wakes the relay of the outbox in `schema`.
std::string NotifyChannel(std::string_view schema);

}  // namespace ptd::outbox

#endif  // PTD_LIBS_OUTBOX_OUTBOX_H_
