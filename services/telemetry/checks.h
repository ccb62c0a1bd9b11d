#ifndef PTD_SERVICES_TELEMETRY_CHECKS_H_
#define PTD_SERVICES_TELEMETRY_CHECKS_H_

#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/core/request.h"
#include "libs/core/status.h"
#include "libs/pg/pool.h"
#include "libs/server/caller.h"
#include "services/telemetry/store/registry_store.h"

// The checks telemetry's handlers share beyond libs/core/request.h: codes, names, numbers, time ranges, who may
// change the registry, and creates that happen once per idempotency key.
namespace ptd::telemetry {

// A registry code: 1 to 64 letters, digits, '_', '-' or '.'.
void CheckCode(const std::string& field, const std::string& value, FieldViolations& v);
// A display name: 1 to 200 bytes.
void CheckName(const std::string& field, const std::string& value, FieldViolations& v);
// True when `value` is finite; otherwise a violation on `field`.
bool CheckFinite(const std::string& field, double value, FieldViolations& v);

// A [start, end) range of timestamps, both required and valid, end after start. True when it is one.
bool CheckRange(const google::protobuf::Timestamp& start, bool has_start, const char* start_field,
                const google::protobuf::Timestamp& end, bool has_end, const char* end_field, FieldViolations& v);
int64_t Micros(const google::protobuf::Timestamp& t);

// Device ids of a request (at most 10000), each checked as an id, violations named `field[i]`.
void CheckDeviceIds(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field,
                    FieldViolations& v);
// INVALID_ARGUMENT naming `field[i]` for each of `ids` that is not one of the tenant's devices.
absl::Status CheckDevicesExist(pqxx::work& tx, const std::string& tenant,
                               const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field);

// Changing the registry and the alarm rules needs the role admin.
absl::Status NeedsAdmin(const Caller& caller);

// Creates an object once per idempotency key: `make` inserts it (inside the transaction) and returns its id,
// `load` reads it back; a retry with the same key and request returns the first object.
template <typename Obj, typename Make, typename Load>
absl::StatusOr<Obj> CreateOnce(pg::Pool& pool, const Caller& caller, const char* method, const std::string& key,
                               const google::protobuf::Message& request, Make make, Load load) {
  const std::string hash = RequestHash(request);
  return pool.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Obj> {
    if (auto earlier = RegistryStore::FindCreate(tx, caller.tenant_id, method, key)) {
      if (earlier->request_sha256 != hash) return ReusedKeyError();
      std::optional<Obj> obj = load(tx, earlier->object_id);
      if (!obj) return absl::InternalError("the object of an earlier create is gone");
      return *obj;
    }
    absl::StatusOr<std::string> id = make(tx);
    if (!id.ok()) return id.status();
    RegistryStore::RecordCreate(tx, caller.tenant_id, method, key, hash, *id);
    std::optional<Obj> obj = load(tx, *id);
    if (!obj) return absl::InternalError("the object just made is gone");
    return *obj;
  });
}

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_CHECKS_H_
