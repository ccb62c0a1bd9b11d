#include "services/telemetry/store/registry_store.h"

#include <charconv>

#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace ptd::telemetry {
namespace {

using google::protobuf::util::TimeUtil;

void SetTime(const pqxx::field& micros, google::protobuf::Timestamp* out) {
  *out = TimeUtil::MicrosecondsToTimestamp(micros.as<int64_t>());
}

constexpr char kMicros[] = "(extract(epoch from create_time) * 1000000)::bigint";

std::string TariffJson(const v1::Plant& plant) {
  if (!plant.has_tariff()) return "";
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(plant.tariff(), &out, options);
  return out;
}

const std::string kPlantColumns = std::string("plant_id, code, name, utc_offset_minutes, tariff::text, ") + kMicros;
v1::Plant PlantFromRow(const pqxx::row& r) {
  v1::Plant p;
  p.set_plant_id(r[0].as<std::string>());
  p.set_code(r[1].as<std::string>());
  p.set_name(r[2].as<std::string>());
  p.set_utc_offset_minutes(r[3].as<int>());
  if (!r[4].is_null()) (void)google::protobuf::util::JsonStringToMessage(r[4].as<std::string>(), p.mutable_tariff());
  SetTime(r[5], p.mutable_create_time());
  return p;
}

const std::string kLineColumns = std::string("line_id, plant_id, code, name, ") + kMicros;
v1::Line LineFromRow(const pqxx::row& r) {
  v1::Line l;
  l.set_line_id(r[0].as<std::string>());
  l.set_plant_id(r[1].as<std::string>());
  l.set_code(r[2].as<std::string>());
  l.set_name(r[3].as<std::string>());
  SetTime(r[4], l.mutable_create_time());
  return l;
}

const std::string kDeviceColumns =
    std::string(
        "device_id, line_id, plant_id, code, name, state_point, total_count_point, good_count_point, "
        "running_state, ideal_rate_per_hour, ") +
    kMicros;
v1::Device DeviceFromRow(const pqxx::row& r) {
  v1::Device d;
  d.set_device_id(r[0].as<std::string>());
  d.set_line_id(r[1].as<std::string>());
  d.set_plant_id(r[2].as<std::string>());
  d.set_code(r[3].as<std::string>());
  d.set_name(r[4].as<std::string>());
  d.set_state_point(r[5].as<std::string>());
  d.set_total_count_point(r[6].as<std::string>());
  d.set_good_count_point(r[7].as<std::string>());
  d.set_running_state(r[8].as<double>());
  d.set_ideal_rate_per_hour(r[9].as<double>());
  SetTime(r[10], d.mutable_create_time());
  return d;
}

const std::string kPointColumns = std::string(
    "p.point_id, p.device_id, p.code, p.kind, p.unit, p.expected_interval_ms, p.min_value, p.max_value, "
    "p.counter_wrap_at, p.tenant_id, (extract(epoch from p.create_time) * 1000000)::bigint");
PointRow PointFromRow(const pqxx::row& r) {
  PointRow out;
  v1::DataPoint& p = out.proto;
  p.set_point_id(r[0].as<std::string>());
  p.set_device_id(r[1].as<std::string>());
  p.set_code(r[2].as<std::string>());
  p.set_kind(static_cast<v1::PointKind>(r[3].as<int>()));
  p.set_unit(r[4].as<std::string>());
  p.set_expected_interval_ms(r[5].as<int64_t>());
  if (!r[6].is_null()) p.set_min_value(r[6].as<double>());
  if (!r[7].is_null()) p.set_max_value(r[7].as<double>());
  p.set_counter_wrap_at(r[8].as<double>());
  out.tenant_id = r[9].as<std::string>();
  SetTime(r[10], p.mutable_create_time());
  out.point_id = p.point_id();
  out.device_id = p.device_id();
  out.code = p.code();
  return out;
}

// A nullable number as a text parameter: "" stands for NULL (the SQL says NULLIF($n, '')::float8).
std::string Optional(bool has, double value) { return has ? DoubleText(value) : ""; }

}  // namespace

std::string DoubleText(double value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

std::optional<RegistryStore::Earlier> RegistryStore::FindCreate(pqxx::work& tx, const std::string& tenant,
                                                                const std::string& method, const std::string& key) {
  static constexpr char kSql[] =
      "SELECT object_id, request_sha256 FROM idempotency WHERE tenant_id = $1 AND method = $2 AND key = $3";
  pqxx::result r = tx.exec_params(kSql, tenant, method, key);
  if (r.empty()) return std::nullopt;
  return Earlier{r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

void RegistryStore::RecordCreate(pqxx::work& tx, const std::string& tenant, const std::string& method,
                                 const std::string& key, const std::string& hash, const std::string& object_id) {
  static constexpr char kSql[] =
      "INSERT INTO idempotency (tenant_id, method, key, request_sha256, object_id) VALUES ($1, $2, $3, $4, $5)";
  tx.exec_params(kSql, tenant, method, key, hash, object_id);
}

void RegistryStore::InsertPlant(pqxx::work& tx, const std::string& tenant, const v1::Plant& plant) {
  static constexpr char kSql[] =
      "INSERT INTO plant (plant_id, tenant_id, code, name, utc_offset_minutes, tariff) "
      "VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::jsonb)";
  tx.exec_params(kSql, plant.plant_id(), tenant, plant.code(), plant.name(), plant.utc_offset_minutes(),
                 TariffJson(plant));
}

std::optional<v1::Plant> RegistryStore::GetPlant(pqxx::work& tx, const std::string& tenant,
                                                 const std::string& plant_id) {
  static const std::string kSql = "SELECT " + kPlantColumns + " FROM plant WHERE tenant_id = $1 AND plant_id = $2";
  pqxx::result r = tx.exec_params(kSql, tenant, plant_id);
  if (r.empty()) return std::nullopt;
  return PlantFromRow(r[0]);
}

std::vector<v1::Plant> RegistryStore::ListPlants(pqxx::work& tx, const std::string& tenant, const std::string& after,
                                                 int limit) {
  static const std::string kSql = "SELECT " + kPlantColumns +
                                  " FROM plant WHERE tenant_id = $1 AND ($2 = '' OR plant_id > $2::uuid) "
                                  "ORDER BY plant_id LIMIT $3";
  std::vector<v1::Plant> out;
  for (const auto& row : tx.exec_params(kSql, tenant, after, limit)) out.push_back(PlantFromRow(row));
  return out;
}

void RegistryStore::InsertLine(pqxx::work& tx, const std::string& tenant, const v1::Line& line) {
  static constexpr char kSql[] =
      "INSERT INTO line (line_id, tenant_id, plant_id, code, name) VALUES ($1, $2, $3, $4, $5)";
  tx.exec_params(kSql, line.line_id(), tenant, line.plant_id(), line.code(), line.name());
}

std::optional<v1::Line> RegistryStore::GetLine(pqxx::work& tx, const std::string& tenant, const std::string& line_id) {
  static const std::string kSql = "SELECT " + kLineColumns + " FROM line WHERE tenant_id = $1 AND line_id = $2";
  pqxx::result r = tx.exec_params(kSql, tenant, line_id);
  if (r.empty()) return std::nullopt;
  return LineFromRow(r[0]);
}

std::vector<v1::Line> RegistryStore::ListLines(pqxx::work& tx, const std::string& tenant, const std::string& plant_id,
                                               const std::string& after, int limit) {
  static const std::string kSql = "SELECT " + kLineColumns +
                                  " FROM line WHERE tenant_id = $1 AND plant_id = $2 AND ($3 = '' OR line_id > "
                                  "$3::uuid) ORDER BY line_id LIMIT $4";
  std::vector<v1::Line> out;
  for (const auto& row : tx.exec_params(kSql, tenant, plant_id, after, limit)) out.push_back(LineFromRow(row));
  return out;
}

void RegistryStore::InsertDevice(pqxx::work& tx, const std::string& tenant, const v1::Device& d) {
  static constexpr char kSql[] =
      "INSERT INTO device (device_id, tenant_id, line_id, plant_id, code, name, state_point, total_count_point, "
      "good_count_point, running_state, ideal_rate_per_hour) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
  tx.exec_params(kSql, d.device_id(), tenant, d.line_id(), d.plant_id(), d.code(), d.name(), d.state_point(),
                 d.total_count_point(), d.good_count_point(), d.running_state(), d.ideal_rate_per_hour());
}

std::optional<v1::Device> RegistryStore::GetDevice(pqxx::work& tx, const std::string& tenant,
                                                   const std::string& device_id) {
  static const std::string kSql = "SELECT " + kDeviceColumns + " FROM device WHERE tenant_id = $1 AND device_id = $2";
  pqxx::result r = tx.exec_params(kSql, tenant, device_id);
  if (r.empty()) return std::nullopt;
  return DeviceFromRow(r[0]);
}

std::vector<v1::Device> RegistryStore::ListDevices(pqxx::work& tx, const std::string& tenant,
                                                   const std::string& line_id, const std::string& after, int limit) {
  static const std::string kSql = "SELECT " + kDeviceColumns +
                                  " FROM device WHERE tenant_id = $1 AND ($2 = '' OR line_id = $2::uuid) AND ($3 = '' "
                                  "OR device_id > $3::uuid) ORDER BY device_id LIMIT $4";
  std::vector<v1::Device> out;
  for (const auto& row : tx.exec_params(kSql, tenant, line_id, after, limit)) out.push_back(DeviceFromRow(row));
  return out;
}

void RegistryStore::InsertPoint(pqxx::work& tx, const std::string& tenant, const v1::DataPoint& p) {
  static constexpr char kSql[] =
      "INSERT INTO data_point (point_id, tenant_id, device_id, code, kind, unit, expected_interval_ms, min_value, "
      "max_value, counter_wrap_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, '')::float8, NULLIF($9, '')::float8, "
      "$10)";
  tx.exec_params(kSql, p.point_id(), tenant, p.device_id(), p.code(), static_cast<int>(p.kind()), p.unit(),
                 p.expected_interval_ms(), Optional(p.has_min_value(), p.min_value()),
                 Optional(p.has_max_value(), p.max_value()), p.counter_wrap_at());
}

std::optional<PointRow> RegistryStore::GetPoint(pqxx::work& tx, const std::string& tenant,
                                                const std::string& point_id) {
  static const std::string kSql =
      "SELECT " + kPointColumns + " FROM data_point p WHERE p.tenant_id = $1 AND p.point_id = $2";
  pqxx::result r = tx.exec_params(kSql, tenant, point_id);
  if (r.empty()) return std::nullopt;
  return PointFromRow(r[0]);
}

std::vector<PointRow> RegistryStore::PointsOfDevices(pqxx::work& tx, const std::string& tenant,
                                                     const std::vector<std::string>& device_ids) {
  static const std::string kSql = "SELECT " + kPointColumns +
                                  " FROM data_point p WHERE p.tenant_id = $1 AND p.device_id = ANY($2::uuid[]) "
                                  "ORDER BY p.device_id, p.code";
  std::vector<PointRow> out;
  for (const auto& row : tx.exec_params(kSql, tenant, TextArray(device_ids))) out.push_back(PointFromRow(row));
  return out;
}

std::vector<PointRow> RegistryStore::PointsByIds(pqxx::work& tx, const std::string& tenant,
                                                 const std::vector<std::string>& point_ids) {
  static const std::string kSql = "SELECT " + kPointColumns +
                                  " FROM data_point p WHERE p.tenant_id = $1 AND p.point_id = ANY($2::uuid[]) "
                                  "ORDER BY p.point_id";
  std::vector<PointRow> out;
  for (const auto& row : tx.exec_params(kSql, tenant, TextArray(point_ids))) out.push_back(PointFromRow(row));
  return out;
}

std::vector<PointRow> RegistryStore::MetersOf(pqxx::work& tx, const std::string& tenant, const std::string& line_id,
                                              const std::string& plant_id) {
  static const std::string kSql = "SELECT " + kPointColumns +
                                  " FROM data_point p JOIN device d ON d.device_id = p.device_id "
                                  "WHERE p.tenant_id = $1 AND p.kind = 2 AND ($2 = '' OR d.line_id = $2::uuid) "
                                  "AND ($3 = '' OR d.plant_id = $3::uuid) ORDER BY p.point_id";
  std::vector<PointRow> out;
  for (const auto& row : tx.exec_params(kSql, tenant, line_id, plant_id)) out.push_back(PointFromRow(row));
  return out;
}

void RegistryStore::InsertEdgeGateway(pqxx::work& tx, const std::string& tenant, const v1::EdgeGateway& g) {
  static constexpr char kSql[] =
      "INSERT INTO edge_gateway (edge_gateway_id, tenant_id, name, api_key_id) VALUES ($1, $2, $3, $4)";
  tx.exec_params(kSql, g.edge_gateway_id(), tenant, g.name(), g.api_key_id());
  SetEdgeGatewayDevices(tx, g.edge_gateway_id(), {g.device_ids().begin(), g.device_ids().end()});
}

void RegistryStore::SetEdgeGatewayDevices(pqxx::work& tx, const std::string& edge_gateway_id,
                                          const std::vector<std::string>& device_ids) {
  static constexpr char kDelete[] = "DELETE FROM edge_gateway_device WHERE edge_gateway_id = $1";
  static constexpr char kInsert[] =
      "INSERT INTO edge_gateway_device (edge_gateway_id, device_id) "
      "SELECT $1, d FROM unnest($2::uuid[]) AS d ON CONFLICT DO NOTHING";
  tx.exec_params(kDelete, edge_gateway_id);
  tx.exec_params(kInsert, edge_gateway_id, TextArray(device_ids));
}

namespace {
std::optional<v1::EdgeGateway> EdgeGatewayWhere(pqxx::work& tx, const char* sql, const std::string& tenant,
                                                const std::string& key) {
  pqxx::result r = tx.exec_params(sql, tenant, key);
  if (r.empty()) return std::nullopt;
  v1::EdgeGateway g;
  g.set_edge_gateway_id(r[0][0].as<std::string>());
  g.set_name(r[0][1].as<std::string>());
  g.set_api_key_id(r[0][2].as<std::string>());
  SetTime(r[0][3], g.mutable_create_time());
  static constexpr char kDevices[] =
      "SELECT device_id FROM edge_gateway_device WHERE edge_gateway_id = $1 ORDER BY device_id";
  for (const auto& row : tx.exec_params(kDevices, g.edge_gateway_id())) g.add_device_ids(row[0].as<std::string>());
  return g;
}
}  // namespace

std::optional<v1::EdgeGateway> RegistryStore::GetEdgeGateway(pqxx::work& tx, const std::string& tenant,
                                                             const std::string& edge_gateway_id) {
  static constexpr char kSql[] =
      "SELECT edge_gateway_id, name, api_key_id, (extract(epoch from create_time) * 1000000)::bigint "
      "FROM edge_gateway WHERE tenant_id = $1 AND edge_gateway_id = $2";
  return EdgeGatewayWhere(tx, kSql, tenant, edge_gateway_id);
}

std::optional<v1::EdgeGateway> RegistryStore::EdgeGatewayOfApiKey(pqxx::work& tx, const std::string& tenant,
                                                                  const std::string& api_key_id) {
  static constexpr char kSql[] =
      "SELECT edge_gateway_id, name, api_key_id, (extract(epoch from create_time) * 1000000)::bigint "
      "FROM edge_gateway WHERE tenant_id = $1 AND api_key_id = $2";
  return EdgeGatewayWhere(tx, kSql, tenant, api_key_id);
}

absl::flat_hash_set<std::string> RegistryStore::ExistingDevices(pqxx::work& tx, const std::string& tenant,
                                                                const std::vector<std::string>& device_ids) {
  static constexpr char kSql[] = "SELECT device_id FROM device WHERE tenant_id = $1 AND device_id = ANY($2::uuid[])";
  absl::flat_hash_set<std::string> out;
  for (const auto& row : tx.exec_params(kSql, tenant, TextArray(device_ids))) out.insert(row[0].as<std::string>());
  return out;
}

int64_t RegistryStore::CountDevices(pqxx::work& tx, const std::string& tenant,
                                    const std::vector<std::string>& device_ids) {
  static constexpr char kSql[] = "SELECT count(*) FROM device WHERE tenant_id = $1 AND device_id = ANY($2::uuid[])";
  return tx.exec_params1(kSql, tenant, TextArray(device_ids))[0].as<int64_t>();
}

}  // namespace ptd::telemetry
