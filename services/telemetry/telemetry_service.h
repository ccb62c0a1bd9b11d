#ifndef PTD_SERVICES_TELEMETRY_TELEMETRY_SERVICE_H_
#define PTD_SERVICES_TELEMETRY_TELEMETRY_SERVICE_H_

#include "libs/pg/pool.h"
#include "ptd/telemetry/v1/telemetry.grpc.pb.h"

namespace ptd::telemetry {

class AlarmEngine;
class Ingestor;
class LiveFeed;

// The gRPC handlers of ptd.telemetry.v1.TelemetryService: validate, call the domain and the stores, map the
// result. Registry and alarm-rule changes need the role `admin`; reading needs any member of the enterprise.
// One proto service, so one class; its handlers are defined by part: registry_service.cc, ingest_service.cc,
// reading_service.cc (series, latest values, the live feed), report_service.cc (energy, OEE), alarm_service.cc.
class TelemetryService final : public v1::TelemetryService::Service {
 public:
  TelemetryService(pg::Pool& pool, Ingestor& ingestor, AlarmEngine& alarms, LiveFeed& live)
      : pool_(pool), ingestor_(ingestor), alarms_(alarms), live_(live) {}

  grpc::Status CreatePlant(grpc::ServerContext*, const v1::CreatePlantRequest*, v1::Plant*) override;
  grpc::Status GetPlant(grpc::ServerContext*, const v1::GetPlantRequest*, v1::Plant*) override;
  grpc::Status ListPlants(grpc::ServerContext*, const v1::ListPlantsRequest*, v1::ListPlantsResponse*) override;
  grpc::Status CreateLine(grpc::ServerContext*, const v1::CreateLineRequest*, v1::Line*) override;
  grpc::Status ListLines(grpc::ServerContext*, const v1::ListLinesRequest*, v1::ListLinesResponse*) override;
  grpc::Status CreateDevice(grpc::ServerContext*, const v1::CreateDeviceRequest*, v1::Device*) override;
  grpc::Status GetDevice(grpc::ServerContext*, const v1::GetDeviceRequest*, v1::Device*) override;
  grpc::Status ListDevices(grpc::ServerContext*, const v1::ListDevicesRequest*, v1::ListDevicesResponse*) override;
  grpc::Status CreateDataPoint(grpc::ServerContext*, const v1::CreateDataPointRequest*, v1::DataPoint*) override;
  grpc::Status ListDataPoints(grpc::ServerContext*, const v1::ListDataPointsRequest*,
                              v1::ListDataPointsResponse*) override;
  grpc::Status CreateEdgeGateway(grpc::ServerContext*, const v1::CreateEdgeGatewayRequest*, v1::EdgeGateway*) override;
  grpc::Status GetEdgeGateway(grpc::ServerContext*, const v1::GetEdgeGatewayRequest*, v1::EdgeGateway*) override;
  grpc::Status SetEdgeGatewayDevices(grpc::ServerContext*, const v1::SetEdgeGatewayDevicesRequest*,
                                     v1::EdgeGateway*) override;

  grpc::Status Ingest(grpc::ServerContext*, const v1::IngestRequest*, v1::IngestResponse*) override;
  grpc::Status StreamIngest(grpc::ServerContext*,
                            grpc::ServerReaderWriter<v1::IngestResponse, v1::IngestRequest>*) override;

  grpc::Status QuerySeries(grpc::ServerContext*, const v1::QuerySeriesRequest*, v1::QuerySeriesResponse*) override;
  grpc::Status GetLatest(grpc::ServerContext*, const v1::GetLatestRequest*, v1::GetLatestResponse*) override;
  grpc::Status GetEnergy(grpc::ServerContext*, const v1::GetEnergyRequest*, v1::GetEnergyResponse*) override;
  grpc::Status GetOee(grpc::ServerContext*, const v1::GetOeeRequest*, v1::GetOeeResponse*) override;

  grpc::Status CreateAlarmRule(grpc::ServerContext*, const v1::CreateAlarmRuleRequest*, v1::AlarmRule*) override;
  grpc::Status ListAlarmRules(grpc::ServerContext*, const v1::ListAlarmRulesRequest*,
                              v1::ListAlarmRulesResponse*) override;
  grpc::Status ListAlarms(grpc::ServerContext*, const v1::ListAlarmsRequest*, v1::ListAlarmsResponse*) override;
  grpc::Status AcknowledgeAlarm(grpc::ServerContext*, const v1::AcknowledgeAlarmRequest*, v1::Alarm*) override;
  grpc::Status WatchLive(grpc::ServerContext*, const v1::WatchLiveRequest*,
                         grpc::ServerWriter<v1::LiveUpdate>*) override;

 private:
  pg::Pool& pool_;
  Ingestor& ingestor_;
  AlarmEngine& alarms_;
  LiveFeed& live_;
};

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_TELEMETRY_SERVICE_H_
