#ifndef PTD_SERVICES_TELEMETRY_STORE_REGISTRY_STORE_H_
#define PTD_SERVICES_TELEMETRY_STORE_REGISTRY_STORE_H_

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "libs/pg/array.h"
#include "ptd/telemetry/v1/telemetry.pb.h"

// SQL of the device registry. Every read filters on the tenant: another tenant's object is not found.
namespace ptd::telemetry {

// What ingest and the readers need of a data point.
struct PointRow {
  std::string point_id;
  std::string device_id;
  std::string code;
  std::string tenant_id;
  v1::DataPoint proto;
};

class RegistryStore {
 public:
  // Idempotent creates: the object made earlier with the same key, or nullopt (then `hash` goes with the new one).
  struct Earlier {
    std::string object_id;
    std::string request_sha256;
  };
  static std::optional<Earlier> FindCreate(pqxx::work& tx, const std::string& tenant, const std::string& method,
                                           const std::string& key);
  static void RecordCreate(pqxx::work& tx, const std::string& tenant, const std::string& method, const std::string& key,
                           const std::string& hash, const std::string& object_id);

  static void InsertPlant(pqxx::work& tx, const std::string& tenant, const v1::Plant& plant);
  static std::optional<v1::Plant> GetPlant(pqxx::work& tx, const std::string& tenant, const std::string& plant_id);
  static std::vector<v1::Plant> ListPlants(pqxx::work& tx, const std::string& tenant, const std::string& after,
                                           int limit);

  static void InsertLine(pqxx::work& tx, const std::string& tenant, const v1::Line& line);
  static std::optional<v1::Line> GetLine(pqxx::work& tx, const std::string& tenant, const std::string& line_id);
  static std::vector<v1::Line> ListLines(pqxx::work& tx, const std::string& tenant, const std::string& plant_id,
                                         const std::string& after, int limit);

  static void InsertDevice(pqxx::work& tx, const std::string& tenant, const v1::Device& device);
  static std::optional<v1::Device> GetDevice(pqxx::work& tx, const std::string& tenant, const std::string& device_id);
  static std::vector<v1::Device> ListDevices(pqxx::work& tx, const std::string& tenant, const std::string& line_id,
                                             const std::string& after, int limit);

  static void InsertPoint(pqxx::work& tx, const std::string& tenant, const v1::DataPoint& point);
  static std::optional<PointRow> GetPoint(pqxx::work& tx, const std::string& tenant, const std::string& point_id);
  // Every point of these devices of the tenant (devices of other tenants contribute nothing).
  static std::vector<PointRow> PointsOfDevices(pqxx::work& tx, const std::string& tenant,
                                               const std::vector<std::string>& device_ids);
  static std::vector<PointRow> PointsByIds(pqxx::work& tx, const std::string& tenant,
                                           const std::vector<std::string>& point_ids);
  // Meters (kind METER) of a line or a plant.
  static std::vector<PointRow> MetersOf(pqxx::work& tx, const std::string& tenant, const std::string& line_id,
                                        const std::string& plant_id);

  static void InsertEdgeGateway(pqxx::work& tx, const std::string& tenant, const v1::EdgeGateway& gateway);
  static void SetEdgeGatewayDevices(pqxx::work& tx, const std::string& edge_gateway_id,
                                    const std::vector<std::string>& device_ids);
  static std::optional<v1::EdgeGateway> GetEdgeGateway(pqxx::work& tx, const std::string& tenant,
                                                       const std::string& edge_gateway_id);
  static std::optional<v1::EdgeGateway> EdgeGatewayOfApiKey(pqxx::work& tx, const std::string& tenant,
                                                            const std::string& api_key_id);
  // Those of `device_ids` that are the tenant's devices.
  static absl::flat_hash_set<std::string> ExistingDevices(pqxx::work& tx, const std::string& tenant,
                                                          const std::vector<std::string>& device_ids);
  // How many of `device_ids` are the tenant's devices.
  static int64_t CountDevices(pqxx::work& tx, const std::string& tenant, const std::vector<std::string>& device_ids);
};

// Array parameters (libs/pg/array.h).
using pg::TextArray;
// The shortest text that reads back as exactly `value` (std::to_chars).
std::string DoubleText(double value);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_STORE_REGISTRY_STORE_H_
