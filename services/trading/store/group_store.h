#ifndef PTD_SERVICES_TRADING_STORE_GROUP_STORE_H_
#define PTD_SERVICES_TRADING_STORE_GROUP_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "ptd/trading/v1/orders.pb.h"

// SQL for group offers and their members. A group offer is public while open (buyers find and join it);
// a member sees its own membership, the seller all of them.
namespace ptd::trading {

class GroupStore {
 public:
  static absl::StatusOr<v1::GroupOffer> Get(pqxx::work& tx, const std::string& group_id, bool for_update = false);
  static std::optional<std::pair<std::string, std::string>> FindByIdempotencyKey(pqxx::work& tx,
                                                                                 const std::string& seller_tenant_id,
                                                                                 const std::string& key);
  static void Insert(pqxx::work& tx, const v1::GroupOffer& group, const std::string& idempotency_key,
                     const std::string& request_hash);
  static std::optional<v1::GroupMembership> GetMember(pqxx::work& tx, const std::string& group_id,
                                                      const std::string& buyer_tenant_id);
  // The idempotency key the member joined with.
  static std::string MemberKey(pqxx::work& tx, const std::string& group_id, const std::string& buyer_tenant_id);
  // Adds a member and its quantity to the group's total.
  static void AddMember(pqxx::work& tx, const v1::GroupMembership& member, const std::string& idempotency_key);
  static std::vector<v1::GroupMembership> Members(pqxx::work& tx, const std::string& group_id);
  static void SetMemberOrder(pqxx::work& tx, const std::string& group_id, const std::string& buyer_tenant_id,
                             const std::string& order_id);
  static void Finish(pqxx::work& tx, const std::string& group_id, v1::GroupOfferState state,
                     std::optional<int64_t> reached_price_minor);
  // Open groups past their deadline, locked for this transaction; skips those another process holds.
  static std::vector<std::string> LockDue(pqxx::work& tx, int limit);
};

}  // namespace ptd::trading

#endif  // PTD_SERVICES_TRADING_STORE_GROUP_STORE_H_
