#ifndef PTD_SERVICES_TRADING_STORE_OUTBOX_ROWS_H_
#define PTD_SERVICES_TRADING_STORE_OUTBOX_ROWS_H_

#include <string>
#include <vector>

#include "libs/outbox/outbox.h"

// Many outbox events written by one statement (what outbox::Write does for one event, for many in one round
// trip), for the statements of trading's group commits.
namespace ptd::trading {

// The events' columns as array parameters, in the order OutboxRowsCtes takes them.
std::vector<std::string> OutboxRowsParams(const std::vector<outbox::Event>& events);
constexpr int kOutboxRowsParams = 7;

// The CTEs `events` (inserts the events, parameters from $`first`, in order: their ids, UUIDv7, are the
// publishing order; only where `gate` holds, when it is not empty) and `notified` (when `notify`, wakes the
// relays of other processes when the statement's transaction commits; a statement must read it, e.g.
// "(SELECT count(*) FROM notified)", or PostgreSQL skips it). Without `notify` it is empty, and the caller
// wakes the relay of this process after the commit (outbox::WakeLocalRelays, outbox::WakeLocalRelaysAfterCommit):
// a NOTIFY would make the commits of all writers wait for each other (libs/outbox/outbox.h).
std::string OutboxRowsCtes(int first, const std::string& gate, bool notify);

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_STORE_OUTBOX_ROWS_H_
