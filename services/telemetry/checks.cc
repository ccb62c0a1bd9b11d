#include "services/telemetry/checks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kAdminRole[] = "admin";

bool IsCode(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.'; });
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= TimeUtil::kTimestampMinSeconds && t.seconds() <= TimeUtil::kTimestampMaxSeconds &&
         t.nanos() >= 0 && t.nanos() <= 999'999'999;
}

}  // namespace

void CheckCode(const std::string& field, const std::string& value, FieldViolations& v) {
  if (!IsCode(value)) v.Add(field, "must be 1 to 64 letters, digits, '_', '-' or '.'");
}

void CheckName(const std::string& field, const std::string& value, FieldViolations& v) {
  if (value.empty() || value.size() > 200) v.Add(field, "must be 1 to 200 bytes");
}

bool CheckFinite(const std::string& field, double value, FieldViolations& v) {
  if (std::isfinite(value)) return true;
  v.Add(field, "must be a finite number");
  return false;
}

bool CheckRange(const google::protobuf::Timestamp& start, bool has_start, const char* start_field,
                const google::protobuf::Timestamp& end, bool has_end, const char* end_field, FieldViolations& v) {
  if (!has_start) v.Add(start_field, "is required");
  if (!has_end) v.Add(end_field, "is required");
  if (!has_start || !has_end) return false;
  if (!ValidTimestamp(start)) v.Add(start_field, "is not a valid timestamp (years 0001 to 9999)");
  if (!ValidTimestamp(end)) v.Add(end_field, "is not a valid timestamp (years 0001 to 9999)");
  if (!v.empty()) return false;
  if (end <= start) {
    v.Add(end_field, "must be after the start");
    return false;
  }
  return true;
}

int64_t Micros(const google::protobuf::Timestamp& t) { return TimeUtil::TimestampToMicroseconds(t); }

void CheckDeviceIds(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field,
                    FieldViolations& v) {
  if (ids.size() > 10'000) v.Add(field, "at most 10000 devices");
  for (int i = 0; i < ids.size() && i < 10'000; ++i) CheckId(absl::StrCat(field, "[", i, "]"), ids[i], v);
}

absl::Status CheckDevicesExist(pqxx::work& tx, const std::string& tenant,
                               const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field) {
  std::vector<std::string> list(ids.begin(), ids.end());
  absl::flat_hash_set<std::string> existing = RegistryStore::ExistingDevices(tx, tenant, list);
  FieldViolations v;
  for (int i = 0; i < ids.size(); ++i) {
    if (!existing.contains(ids[i])) v.Add(absl::StrCat(field, "[", i, "]"), "no such device in this enterprise");
  }
  return v.ToStatus();
}

absl::Status NeedsAdmin(const Caller& caller) {
  if (caller.HasRole(kAdminRole)) return absl::OkStatus();
  return absl::PermissionDeniedError("changing the registry and alarm rules needs the role admin");
}

}  // namespace ptd::telemetry
