#include "services/trading/store/outbox_rows.h"

#include "absl/strings/str_cat.h"
#include "libs/core/ids.h"
#include "libs/pg/array.h"

namespace ptd::trading {

std::vector<std::string> OutboxRowsParams(const std::vector<outbox::Event>& events) {
  std::vector<std::string> ids, streams, types, aggregates, tenants, payloads, request_ids;
  for (const outbox::Event& e : events) {
    ids.push_back(e.id.empty() ? NewId() : e.id);
    streams.push_back(e.stream);
    types.push_back(e.type);
    aggregates.push_back(e.aggregate_id);
    tenants.push_back(e.tenant_id);
    payloads.push_back(pg::ByteaText(e.payload));
    request_ids.push_back(e.request_id);
  }
  return {pg::TextArray(ids),     pg::TextArray(streams),  pg::TextArray(types),      pg::TextArray(aggregates),
          pg::TextArray(tenants), pg::TextArray(payloads), pg::TextArray(request_ids)};
}

std::string OutboxRowsCtes(int first, const std::string& gate, bool notify) {
  auto arg = [&](int i) { return absl::StrCat("$", first + i); };
  return absl::StrCat(
      "events AS ("
      "  INSERT INTO outbox (id, stream, type, aggregate_id, tenant_id, payload, request_id) "
      "  SELECT * FROM unnest(",
      arg(0), "::text[], ", arg(1), "::text[], ", arg(2), "::text[], ", arg(3), "::text[], ", arg(4), "::text[], ",
      arg(5), "::bytea[], ", arg(6), "::text[])", gate.empty() ? "" : absl::StrCat(" WHERE ", gate), "  RETURNING 1), ",
      notify ? "notified AS (SELECT pg_notify('ptd_outbox.' || current_schema(), '') FROM events LIMIT 1)"
             : "notified AS (SELECT 1 WHERE false)");
}

}  // namespace ptd::trading
