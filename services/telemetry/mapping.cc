#include "services/telemetry/mapping.h"

namespace ptd::telemetry {

Tariff TariffOf(const v1::Plant& plant) {
  Tariff t;
  t.utc_offset_minutes = plant.utc_offset_minutes();
  if (!plant.has_tariff()) {
    t.windows = {{0, 24 * 60, TouPeriod::kFlat}};
    return t;
  }
  for (const auto& w : plant.tariff().windows()) {
    TouPeriod p = w.period() == v1::TOU_PERIOD_VALLEY ? TouPeriod::kValley
                  : w.period() == v1::TOU_PERIOD_PEAK ? TouPeriod::kPeak
                                                      : TouPeriod::kFlat;
    t.windows.push_back({w.start_minute(), w.end_minute(), p});
  }
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kValley)] = plant.tariff().valley_price_minor_per_mwh();
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kFlat)] = plant.tariff().flat_price_minor_per_mwh();
  t.price_minor_per_mwh[static_cast<int>(TouPeriod::kPeak)] = plant.tariff().peak_price_minor_per_mwh();
  return t;
}

void ToProto(const Oee& o, const std::string& device_id, v1::Oee* out) {
  out->set_device_id(device_id);
  out->set_run_seconds(o.run_us / kMicrosPerSecond);
  out->set_planned_seconds(o.planned_us / kMicrosPerSecond);
  out->set_total_count(o.total);
  out->set_good_count(o.good);
  out->set_availability(o.availability);
  out->set_performance(o.performance);
  out->set_quality(o.quality);
  out->set_oee(o.oee);
}

std::vector<Sample> ToSamples(const std::vector<SampleStore::RawRow>& rows) {
  std::vector<Sample> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back({r.ts_us, r.value});
  return out;
}

}  // namespace ptd::telemetry
