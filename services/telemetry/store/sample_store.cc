#include "services/telemetry/store/sample_store.h"

#include <algorithm>
#include <charconv>
#include <pqxx/stream_to>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "services/telemetry/domain/block_codec.h"
#include "services/telemetry/store/registry_store.h"

namespace ptd::telemetry {
namespace {

using pg::NumberArray;

std::string DateOfDay(int64_t day) {
  absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

// Day numbers of the partitions: "sample_block_YYYYMMDD".
constexpr char kPartitionPrefix[] = "sample_block_";
constexpr int64_t kPartitionLockKey = 0x7074645f74656c65;  // "ptd_tele"

}  // namespace

std::string SampleStore::PartitionName(int64_t day) {
  absl::CivilDay d = absl::CivilDay(1970, 1, 1) + day;
  return absl::StrFormat("%s%04d%02d%02d", kPartitionPrefix, d.year(), d.month(), d.day());
}

void SampleStore::EnsurePartitions(pqxx::work& tx, int64_t first_day, int64_t last_day) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPartitionLockKey);
  static constexpr char kExisting[] =
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
      "WHERE p.relname = 'sample_block' AND n.nspname = current_schema()";
  absl::flat_hash_set<std::string> existing;
  for (const auto& row : tx.exec(kExisting)) existing.insert(row[0].as<std::string>());
  for (int64_t day = first_day; day <= last_day; ++day) {
    std::string name = PartitionName(day);
    if (existing.contains(name)) continue;
    // Identifiers cannot be bound; the name and the dates are made here from a number, never from input.
    tx.exec(absl::StrCat("CREATE TABLE IF NOT EXISTS ", name, " PARTITION OF sample_block FOR VALUES FROM ('",
                         DateOfDay(day), "') TO ('", DateOfDay(day + 1), "')"));
  }
}

int SampleStore::DropPartitionsBefore(pqxx::work& tx, int64_t day) {
  tx.exec_params("SELECT pg_advisory_xact_lock($1)", kPartitionLockKey);
  static constexpr char kExisting[] =
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
      "WHERE p.relname = 'sample_block' AND n.nspname = current_schema()";
  std::string limit = PartitionName(day);
  int dropped = 0;
  for (const auto& row : tx.exec(kExisting)) {
    std::string name = row[0].as<std::string>();
    // Same-length names compare as their dates.
    if (name.size() == limit.size() && name < limit) {
      tx.exec(absl::StrCat("DROP TABLE ", tx.quote_name(name)));
      ++dropped;
    }
  }
  return dropped;
}

int64_t SampleStore::DeleteRollupsBefore(pqxx::work& tx, const std::string& table, int64_t before_us) {
  // `table` is one of three names fixed in the code.
  pqxx::result r =
      tx.exec_params(absl::StrCat("DELETE FROM ", tx.quote_name(table), " WHERE bucket_us < $1"), before_us);
  return r.affected_rows();
}

std::vector<PointState> SampleStore::LockStates(pqxx::work& tx, const std::string& tenant,
                                                const std::vector<std::string>& point_ids) {
  // One statement makes the missing rows and locks them all (ON CONFLICT DO UPDATE locks the existing row);
  // rows are taken in point order, so two batches never wait on each other in a circle.
  static constexpr char kSql[] =
      "INSERT INTO point_state AS s (point_id, tenant_id, last_ts_us, last_value, last_quality, samples) "
      "SELECT p, $2, 0, 0, 1, 0 FROM unnest($1::uuid[]) AS p ORDER BY p "
      "ON CONFLICT (point_id) DO UPDATE SET samples = s.samples "
      "RETURNING point_id, last_ts_us, last_value, last_quality, samples";
  std::vector<PointState> out;
  for (const auto& row : tx.exec_params(kSql, TextArray(point_ids), tenant)) {
    out.push_back({.point_id = row[0].as<std::string>(),
                   .last_ts_us = row[1].as<int64_t>(),
                   .last_value = row[2].as<double>(),
                   .last_quality = static_cast<int16_t>(row[3].as<int>()),
                   .samples = row[4].as<int64_t>()});
  }
  return out;
}

absl::StatusOr<absl::flat_hash_set<std::pair<std::string, int64_t>>> SampleStore::FindStored(
    pqxx::work& tx, const std::vector<std::string>& point_ids, const std::vector<int64_t>& ts_us) {
  absl::flat_hash_set<std::pair<std::string, int64_t>> asked, out;
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> span;  // per point: earliest, latest time asked
  for (size_t i = 0; i < point_ids.size(); ++i) {
    asked.insert({point_ids[i], ts_us[i]});
    auto [it, fresh] = span.try_emplace(point_ids[i], ts_us[i], ts_us[i]);
    it->second.first = std::min(it->second.first, ts_us[i]);
    it->second.second = std::max(it->second.second, ts_us[i]);
  }
  if (asked.empty()) return out;
  std::vector<std::string> points;
  std::vector<int64_t> lows, highs;
  for (const auto& [point, range] : span) {
    points.push_back(point);
    lows.push_back(range.first);
    highs.push_back(range.second);
  }
  // Only the blocks of the right days whose time span meets the times asked are opened.
  static constexpr char kSql[] =
      "SELECT b.point_id, b.ts FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS q (p, lo, hi) "
      "JOIN sample_block b ON b.point_id = q.p AND b.t_max_us >= q.lo AND b.t_min_us <= q.hi "
      "AND b.day BETWEEN DATE '1970-01-01' + (q.lo / 86400000000)::int AND DATE '1970-01-01' + (q.hi / "
      "86400000000)::int";
  for (const auto& row : tx.exec_params(kSql, TextArray(points), NumberArray(lows), NumberArray(highs))) {
    std::string point = row[0].as<std::string>();
    pqxx::binarystring ts(row[1]);
    absl::StatusOr<std::vector<int64_t>> times = DecodeTimes(std::string_view(ts.get(), ts.size()));
    if (!times.ok()) return times.status();
    for (int64_t t : *times) {
      if (asked.contains(std::make_pair(point, t))) out.insert({point, t});
    }
  }
  return out;
}

void SampleStore::WriteBlocks(pqxx::work& tx, const std::string& tenant, const std::vector<PointBlocks>& blocks) {
  static const std::vector<std::string> kColumns = {"tenant_id", "point_id", "day",  "t_min_us", "t_max_us",
                                                    "n",         "ts",       "vals", "quality"};
  pqxx::stream_to copy(tx, "sample_block", kColumns);
  for (const PointBlocks& p : blocks) {
    for (const Block& b : p.blocks) {
      std::string quality(b.quality.begin(), b.quality.end());
      copy << std::make_tuple(tenant, p.point_id, DateOfDay(b.day), b.t_min_us(), b.t_max_us(),
                              static_cast<int64_t>(b.ts_us.size()), pg::ByteaText(EncodeTimes(b.ts_us)),
                              pg::ByteaText(EncodeValues(b.values)), pg::ByteaText(quality));
    }
  }
  copy.complete();
}

void SampleStore::MergeRollups(pqxx::work& tx, const std::string& table, const std::string& tenant,
                               const std::vector<std::pair<std::string, std::pair<int64_t, Aggregate>>>& rows) {
  if (rows.empty()) return;
  std::vector<std::string> points;
  std::vector<int64_t> buckets, counts, last_ts;
  std::vector<double> mins, maxs, sums, last_values;
  for (const auto& [point, bucket_agg] : rows) {
    const auto& [bucket, a] = bucket_agg;
    points.push_back(point);
    buckets.push_back(bucket);
    mins.push_back(a.min);
    maxs.push_back(a.max);
    sums.push_back(a.sum);
    counts.push_back(a.count);
    last_ts.push_back(a.last_ts_us);
    last_values.push_back(a.last_value);
  }
  // `table` is one of three names fixed in the code. The merge is Aggregate::Merge in SQL.
  std::string sql = absl::StrCat(
      "INSERT INTO ", tx.quote_name(table),
      " AS r (point_id, bucket_us, tenant_id, min, max, sum, count, last_ts_us, last_value) "
      "SELECT p, b, $3, mn, mx, s, c, lt, lv FROM unnest($1::uuid[], $2::bigint[], $4::float8[], $5::float8[], "
      "$6::float8[], $7::bigint[], $8::bigint[], $9::float8[]) AS u (p, b, mn, mx, s, c, lt, lv) ORDER BY p, b "
      "ON CONFLICT (point_id, bucket_us) DO UPDATE SET min = least(r.min, excluded.min), "
      "max = greatest(r.max, excluded.max), sum = r.sum + excluded.sum, count = r.count + excluded.count, "
      "last_value = CASE WHEN excluded.last_ts_us >= r.last_ts_us THEN excluded.last_value ELSE r.last_value END, "
      "last_ts_us = greatest(r.last_ts_us, excluded.last_ts_us)");
  tx.exec_params(sql, TextArray(points), NumberArray(buckets), tenant, NumberArray(mins), NumberArray(maxs),
                 NumberArray(sums), NumberArray(counts), NumberArray(last_ts), NumberArray(last_values));
}

void SampleStore::UpdateStates(pqxx::work& tx, const std::vector<PointState>& states) {
  if (states.empty()) return;
  std::vector<std::string> points;
  std::vector<int64_t> last_ts, samples;
  std::vector<double> values;
  std::vector<int16_t> qualities;
  for (const PointState& s : states) {
    points.push_back(s.point_id);
    last_ts.push_back(s.last_ts_us);
    values.push_back(s.last_value);
    qualities.push_back(s.last_quality);
    samples.push_back(s.samples);
  }
  static constexpr char kSql[] =
      "UPDATE point_state s SET last_ts_us = u.t, last_value = u.v, last_quality = u.q, samples = u.n "
      "FROM unnest($1::uuid[], $2::bigint[], $3::float8[], $4::smallint[], $5::bigint[]) AS u (p, t, v, q, n) "
      "WHERE s.point_id = u.p";
  tx.exec_params(kSql, TextArray(points), NumberArray(last_ts), NumberArray(values), NumberArray(qualities),
                 NumberArray(samples));
}

absl::StatusOr<std::vector<SampleStore::RawRow>> SampleStore::ReadRaw(pqxx::work& tx, const std::string& point_id,
                                                                      int64_t start_us, int64_t end_us, int64_t limit) {
  static constexpr char kSql[] =
      "SELECT ts, vals, quality FROM sample_block WHERE point_id = $1 "
      "AND day BETWEEN DATE '1970-01-01' + ($2 / 86400000000)::int AND DATE '1970-01-01' + ($3 / 86400000000)::int "
      "AND t_max_us >= $2 AND t_min_us < $3 ORDER BY t_min_us";
  std::vector<RawRow> out;
  bool sorted = true;  // blocks of one point overlap in time only where late samples came
  for (const auto& row : tx.exec_params(kSql, point_id, start_us, end_us)) {
    pqxx::binarystring ts(row[0]), vals(row[1]), quality(row[2]);
    absl::StatusOr<std::vector<int64_t>> times = DecodeTimes(std::string_view(ts.get(), ts.size()));
    absl::StatusOr<std::vector<double>> values = DecodeValues(std::string_view(vals.get(), vals.size()));
    if (!times.ok()) return times.status();
    if (!values.ok()) return values.status();
    if (times->size() != values->size() || (quality.size() != 0 && quality.size() != times->size())) {
      return absl::DataLossError("sample block: times, values and qualities differ in length");
    }
    for (size_t i = 0; i < times->size(); ++i) {
      int64_t t = (*times)[i];
      if (t < start_us || t >= end_us) continue;
      if (!out.empty() && t < out.back().ts_us) sorted = false;
      out.push_back({t, (*values)[i], static_cast<int16_t>(quality.size() == 0 ? 1 : quality[i])});
    }
  }
  if (!sorted) std::sort(out.begin(), out.end(), [](const RawRow& a, const RawRow& b) { return a.ts_us < b.ts_us; });
  if (static_cast<int64_t>(out.size()) > limit) out.resize(limit);
  return out;
}

std::vector<SampleStore::BucketRow> SampleStore::ReadRollup(pqxx::work& tx, const std::string& table,
                                                            const std::string& point_id, int64_t start_us,
                                                            int64_t end_us) {
  std::string sql =
      absl::StrCat("SELECT bucket_us, min, max, sum, count, last_ts_us, last_value FROM ", tx.quote_name(table),
                   " WHERE point_id = $1 AND bucket_us >= $2 AND bucket_us < $3 ORDER BY bucket_us");
  std::vector<BucketRow> out;
  for (const auto& row : tx.exec_params(sql, point_id, start_us, end_us)) {
    out.push_back({row[0].as<int64_t>(), Aggregate{.min = row[1].as<double>(),
                                                   .max = row[2].as<double>(),
                                                   .sum = row[3].as<double>(),
                                                   .count = row[4].as<int64_t>(),
                                                   .last_ts_us = row[5].as<int64_t>(),
                                                   .last_value = row[6].as<double>()}});
  }
  return out;
}

std::vector<PointState> SampleStore::ReadStates(pqxx::work& tx, const std::vector<std::string>& point_ids) {
  static constexpr char kSql[] =
      "SELECT point_id, last_ts_us, last_value, last_quality, samples FROM point_state "
      "WHERE point_id = ANY($1::uuid[]) AND samples > 0";
  std::vector<PointState> out;
  for (const auto& row : tx.exec_params(kSql, TextArray(point_ids))) {
    out.push_back({.point_id = row[0].as<std::string>(),
                   .last_ts_us = row[1].as<int64_t>(),
                   .last_value = row[2].as<double>(),
                   .last_quality = static_cast<int16_t>(row[3].as<int>()),
                   .samples = row[4].as<int64_t>()});
  }
  return out;
}

}  // namespace ptd::telemetry
