// ptd-demo: loads demo data into a running platform through the services' public gRPC APIs, as three
// enterprises would. Every create carries an idempotency key, so running it again changes nothing.
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <iostream>
#include <tuple>

#include "libs/core/config.h"
#include "ptd/telemetry/v1/telemetry.grpc.pb.h"
#include "ptd/trading/v1/trading.grpc.pb.h"

namespace {

using ptd::trading::v1::TradingService;

struct Offer {
  const char* commodity_id;
  const char* zh;
  const char* en;
  int64_t price_minor;  // CNY fen per unit
  int64_t available_milli;
  const char* unit;
};

struct Tenant {
  const char* tenant_id;
  const char* subject;
  std::vector<Offer> offers;
};

const std::vector<Tenant>& Tenants() {
  static const std::vector<Tenant> tenants = {
      {"demo-huayu-chemical",
       "alice@huayu",
       {{"01900000-0000-7000-8000-000000000001", "华宇 PVC SG-5 现货", "Huayu PVC SG-5 spot", 578000, 500000, "t"},
        {"01900000-0000-7000-8000-000000000002", "华宇 乙醇 95% 港口库提", "Huayu ethanol 95% ex-port tank", 612000,
         1200000, "t"},
        {"01900000-0000-7000-8000-000000000005", "环氧树脂 E-44 桶装", "Epoxy resin E-44 in drums", 1850, 20000000,
         "kg"}}},
      {"demo-jinshan-titanium",
       "bo@jinshan",
       {{"01900000-0000-7000-8000-000000000003", "金山 钛精矿 46%", "Jinshan titanium concentrate 46%", 235000, 3000000,
         "t"},
        {"01900000-0000-7000-8000-000000000004", "金山 钛白粉 R-996", "Jinshan TiO2 R-996", 1560000, 80000, "t"}}},
      {"demo-lvye-agri",
       "chen@lvye",
       {{"01900000-0000-7000-8000-00000000000d", "绿野 尿素 46% 袋装", "Lvye urea 46% bagged", 221000, 900000, "t"},
        {"01900000-0000-7000-8000-00000000000f", "绿野 一级豆油", "Lvye soybean oil grade 1", 798000, 150000, "t"},
        {"01900000-0000-7000-8000-000000000010", "绿野 二等玉米", "Lvye corn grade 2", 236000, 5000000, "t"}}},
  };
  return tenants;
}

// A call as `tenant`'s admin.
void Prepare(grpc::ClientContext& context, const std::string& token, const char* tenant, const char* subject) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("x-ptd-internal-token", token);
  context.AddMetadata("x-ptd-tenant", tenant);
  context.AddMetadata("x-ptd-subject", subject);
  context.AddMetadata("x-ptd-roles", "admin");
}

// Jinshan's TiO2 works: a calcining kiln with its temperature and kWh meter, and the last 6 hours of readings
// (every 10 s), so that dashboards, energy and alarms have something to show.
int LoadTelemetry(const std::string& address, const std::string& token) {
  using namespace ptd::telemetry::v1;
  auto telemetry = TelemetryService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const char* tenant = "demo-jinshan-titanium";
  const char* subject = "bo@jinshan";
  auto fail = [](const char* what, const grpc::Status& s) {
    std::cerr << "demo: telemetry " << what << ": " << s.error_message() << "\n";
    return 1;
  };
  Plant plant;
  {
    grpc::ClientContext c;
    Prepare(c, token, tenant, subject);
    CreatePlantRequest r;
    r.set_idempotency_key("demo-plant");
    r.mutable_plant()->set_code("JS-TIO2");
    r.mutable_plant()->set_name("金山钛白粉厂 Jinshan TiO2 works");
    r.mutable_plant()->set_utc_offset_minutes(480);
    Tariff* t = r.mutable_plant()->mutable_tariff();
    t->set_currency("CNY");
    for (auto [from, to, period] : {std::tuple{0, 480, TOU_PERIOD_VALLEY},
                                    {480, 660, TOU_PERIOD_FLAT},
                                    {660, 1020, TOU_PERIOD_PEAK},
                                    {1020, 1380, TOU_PERIOD_FLAT},
                                    {1380, 1440, TOU_PERIOD_VALLEY}}) {
      TariffWindow* w = t->add_windows();
      w->set_start_minute(from);
      w->set_end_minute(to);
      w->set_period(period);
    }
    t->set_valley_price_minor_per_mwh(31200);
    t->set_flat_price_minor_per_mwh(62400);
    t->set_peak_price_minor_per_mwh(102800);
    if (auto s = telemetry->CreatePlant(&c, r, &plant); !s.ok()) return fail("plant", s);
  }
  Line line;
  {
    grpc::ClientContext c;
    Prepare(c, token, tenant, subject);
    CreateLineRequest r;
    r.set_idempotency_key("demo-line");
    r.set_plant_id(plant.plant_id());
    r.mutable_line()->set_code("CALC-1");
    r.mutable_line()->set_name("煅烧一线 Calcination line 1");
    if (auto s = telemetry->CreateLine(&c, r, &line); !s.ok()) return fail("line", s);
  }
  Device kiln;
  {
    grpc::ClientContext c;
    Prepare(c, token, tenant, subject);
    CreateDeviceRequest r;
    r.set_idempotency_key("demo-kiln");
    r.set_line_id(line.line_id());
    r.mutable_device()->set_code("kiln-1");
    r.mutable_device()->set_name("回转窑 Rotary kiln 1");
    if (auto s = telemetry->CreateDevice(&c, r, &kiln); !s.ok()) return fail("device", s);
  }
  for (auto [code, kind, unit] :
       {std::tuple{"temperature", POINT_KIND_SENSOR, "°C"}, {"kwh", POINT_KIND_METER, "kWh"}}) {
    grpc::ClientContext c;
    Prepare(c, token, tenant, subject);
    CreateDataPointRequest r;
    r.set_idempotency_key(std::string("demo-point-") + code);
    r.set_device_id(kiln.device_id());
    r.mutable_point()->set_code(code);
    r.mutable_point()->set_kind(kind);
    r.mutable_point()->set_unit(unit);
    r.mutable_point()->set_expected_interval_ms(10000);
    DataPoint point;
    if (auto s = telemetry->CreateDataPoint(&c, r, &point); !s.ok()) return fail("data point", s);
  }
  // Readings on a fixed 10-second grid: running the demo again sends the same samples, which are duplicates.
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  IngestRequest batch;
  SeriesSamples* temperature = batch.add_series();
  temperature->set_device_id(kiln.device_id());
  temperature->set_point("temperature");
  SeriesSamples* kwh = batch.add_series();
  kwh->set_device_id(kiln.device_id());
  kwh->set_point("kwh");
  for (int64_t t = (now_s - 6 * 3600) / 10 * 10; t <= now_s; t += 10) {
    temperature->add_time_unix_us(t * 1'000'000);
    temperature->add_values(950 + 15 * std::sin(static_cast<double>(t) / 600.0));
    kwh->add_time_unix_us(t * 1'000'000);
    kwh->add_values(static_cast<double>(t % 10'000'000) * 0.35);  // about 1.26 MW
  }
  grpc::ClientContext c;
  Prepare(c, token, tenant, subject);
  IngestResponse out;
  if (auto s = telemetry->Ingest(&c, batch, &out); !s.ok()) return fail("ingest", s);
  std::cout << "demo: telemetry plant " << plant.code() << " with " << out.accepted() << " new samples\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("ptd-demo", "Loads demo enterprises' listings into a running PTDCloud.",
                     {{"trading-address", "127.0.0.1:50051", "trading's gRPC address"},
                      {"telemetry-address", "", "telemetry's gRPC address; empty: no telemetry demo data"},
                      {"internal-token", "", "the platform's internal credential"}});
  config.ParseOrExit(argc, argv);
  auto channel = grpc::CreateChannel(config.Get("trading-address"), grpc::InsecureChannelCredentials());
  auto trading = TradingService::NewStub(channel);
  int created = 0;
  for (const Tenant& tenant : Tenants()) {
    for (const Offer& offer : tenant.offers) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      context.AddMetadata("x-ptd-internal-token", config.Get("internal-token"));
      context.AddMetadata("x-ptd-tenant", tenant.tenant_id);
      context.AddMetadata("x-ptd-subject", tenant.subject);
      context.AddMetadata("x-ptd-roles", "admin");
      ptd::trading::v1::CreateListingRequest request;
      request.set_idempotency_key(std::string("demo-") + offer.commodity_id);
      request.set_commodity_id(offer.commodity_id);
      auto* zh = request.add_title();
      zh->set_lang("zh");
      zh->set_text(offer.zh);
      auto* en = request.add_title();
      en->set_lang("en");
      en->set_text(offer.en);
      request.mutable_unit_price()->set_currency("CNY");
      request.mutable_unit_price()->set_amount_minor(offer.price_minor);
      request.mutable_available()->set_milli(offer.available_milli);
      request.mutable_available()->set_unit(offer.unit);
      ptd::trading::v1::Listing listing;
      grpc::Status status = trading->CreateListing(&context, request, &listing);
      if (!status.ok()) {
        std::cerr << "demo: " << tenant.tenant_id << " " << offer.en << ": " << status.error_message() << "\n";
        return 1;
      }
      ++created;
    }
  }
  std::cout << "demo: " << created << " listings of " << Tenants().size() << " enterprises in place\n";
  if (!config.Get("telemetry-address").empty())
    return LoadTelemetry(config.Get("telemetry-address"), config.Get("internal-token"));
  return 0;
}
