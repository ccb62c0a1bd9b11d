#ifndef PTD_SERVICES_TRADING_GROUP_BUYING_H_
#define PTD_SERVICES_TRADING_GROUP_BUYING_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/pg/pool.h"

namespace ptd::trading {

// Closes a group offer (locked by the caller in `tx`): with the tier its members' total reached, one order per
// member at that tier's price and GroupOfferClosed; below the first tier, GroupOfferCancelled.
absl::Status CloseGroup(pqxx::work& tx, const std::string& group_id);

// Closes group offers whose deadline passed, every `interval`. Several trading processes may run one each:
// due groups are taken with SKIP LOCKED, and joins lock the same row, so a join either lands before the
// close or is refused after it.
class GroupDeadlineSweeper {
 public:
  GroupDeadlineSweeper(pg::Pool& pool, absl::Duration interval) : pool_(pool), interval_(interval) {}
  ~GroupDeadlineSweeper() { Stop(); }
  void Start();
  void Stop();
  // Closes what is due now; returns how many groups it closed.
  absl::StatusOr<int> SweepOnce();

 private:
  pg::Pool& pool_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_GROUP_BUYING_H_
