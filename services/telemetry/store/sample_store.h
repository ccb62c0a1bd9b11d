#ifndef PTD_SERVICES_TELEMETRY_STORE_SAMPLE_STORE_H_
#define PTD_SERVICES_TELEMETRY_STORE_SAMPLE_STORE_H_

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "services/telemetry/domain/ingest.h"

// SQL of the time-series storage (migrations/0002_samples.sql): sample blocks in daily partitions, the state
// row of each point, and the rollups.
namespace ptd::telemetry {

struct PointState {
  std::string point_id;
  int64_t last_ts_us = 0;
  double last_value = 0;
  int16_t last_quality = 1;
  int64_t samples = 0;  // 0: nothing stored yet (last_* meaningless)
};

// One point's new blocks, for WriteBlocks.
struct PointBlocks {
  std::string point_id;
  std::vector<Block> blocks;
};

class SampleStore {
 public:
  // "sample_block_20261202" for day 20424.
  static std::string PartitionName(int64_t day);
  // Creates the daily partitions of [first_day, last_day] that do not exist yet. Safe to run from several
  // processes at once (a transaction-level advisory lock serialises them).
  static void EnsurePartitions(pqxx::work& tx, int64_t first_day, int64_t last_day);
  // Drops whole daily partitions before `day`; returns how many.
  static int DropPartitionsBefore(pqxx::work& tx, int64_t day);
  // Deletes rollup rows with bucket before `before_us` from `table` (rollup_1m, rollup_1h, rollup_1d).
  static int64_t DeleteRollupsBefore(pqxx::work& tx, const std::string& table, int64_t before_us);

  // Locks the state rows of `point_ids` (sorted, distinct) for this transaction, making the missing ones.
  static std::vector<PointState> LockStates(pqxx::work& tx, const std::string& tenant,
                                            const std::vector<std::string>& point_ids);
  // Of the (point, time) pairs asked, those already stored.
  static absl::StatusOr<absl::flat_hash_set<std::pair<std::string, int64_t>>> FindStored(
      pqxx::work& tx, const std::vector<std::string>& point_ids, const std::vector<int64_t>& ts_us);
  // COPYs the blocks into sample_block.
  static void WriteBlocks(pqxx::work& tx, const std::string& tenant, const std::vector<PointBlocks>& blocks);
  // Folds new aggregates into a rollup table: key (point_id, bucket_us).
  static void MergeRollups(pqxx::work& tx, const std::string& table, const std::string& tenant,
                           const std::vector<std::pair<std::string, std::pair<int64_t, Aggregate>>>& rows);
  static void UpdateStates(pqxx::work& tx, const std::vector<PointState>& states);

  // Reading.
  struct RawRow {
    int64_t ts_us;
    double value;
    int16_t quality;
  };
  // The point's samples in [start_us, end_us) in time order, at most `limit` (the first ones).
  static absl::StatusOr<std::vector<RawRow>> ReadRaw(pqxx::work& tx, const std::string& point_id, int64_t start_us,
                                                     int64_t end_us, int64_t limit);
  struct BucketRow {
    int64_t bucket_us;
    Aggregate aggregate;
  };
  static std::vector<BucketRow> ReadRollup(pqxx::work& tx, const std::string& table, const std::string& point_id,
                                           int64_t start_us, int64_t end_us);
  static std::vector<PointState> ReadStates(pqxx::work& tx, const std::vector<std::string>& point_ids);
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_STORE_SAMPLE_STORE_H_
