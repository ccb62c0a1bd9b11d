#ifndef PTD_SERVICES_TELEMETRY_MAPPING_H_
#define PTD_SERVICES_TELEMETRY_MAPPING_H_

#include <string>
#include <vector>

#include "libs/core/status.h"
#include "ptd/telemetry/v1/telemetry.pb.h"
#include "services/telemetry/domain/energy.h"
#include "services/telemetry/domain/oee.h"
#include "services/telemetry/domain/sample.h"
#include "services/telemetry/store/sample_store.h"

// Proto <-> telemetry's own types, for the handlers.
namespace ptd::telemetry {

// A plant's tariff for the energy rules; a plant without one pays one flat price all day.
Tariff TariffOf(const v1::Plant& plant);

void ToProto(const Oee& o, const std::string& device_id, v1::Oee* out);

// Raw rows as the domain's samples (time, value).
std::vector<Sample> ToSamples(const std::vector<SampleStore::RawRow>& rows);

}  // namespace ptd::telemetry

#endif  // PTD_SERVICES_TELEMETRY_MAPPING_H_
