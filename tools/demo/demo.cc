// ptd-demo: loads demo data into a running platform through the services' public gRPC APIs, as three
// enterprises would. Every create carries an idempotency key, so running it again changes nothing.
#include <grpcpp/grpcpp.h>

#include <iostream>

#include "libs/core/config.h"
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
       {{"01900000-0000-7000-8000-000000000003", "金山 钛精矿 46%", "Jinshan titanium concentrate 46%", 235000,
         3000000, "t"},
        {"01900000-0000-7000-8000-000000000004", "金山 钛白粉 R-996", "Jinshan TiO2 R-996", 1560000, 80000, "t"}}},
      {"demo-lvye-agri",
       "chen@lvye",
       {{"01900000-0000-7000-8000-00000000000d", "绿野 尿素 46% 袋装", "Lvye urea 46% bagged", 221000, 900000, "t"},
        {"01900000-0000-7000-8000-00000000000f", "绿野 一级豆油", "Lvye soybean oil grade 1", 798000, 150000, "t"},
        {"01900000-0000-7000-8000-000000000010", "绿野 二等玉米", "Lvye corn grade 2", 236000, 5000000, "t"}}},
  };
  return tenants;
}

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("ptd-demo", "Loads demo enterprises' listings into a running PTDCloud.",
                     {{"trading-address", "127.0.0.1:50051", "trading's gRPC address"},
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
  return 0;
}
