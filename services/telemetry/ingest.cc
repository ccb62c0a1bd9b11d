#include "services/telemetry/ingest.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/core/ids.h"
#include "libs/core/log.h"
#include "libs/core/status.h"
#include "services/telemetry/alarm_engine.h"
#include "services/telemetry/live_feed.h"
#include "services/telemetry/store/registry_store.h"
#include "services/telemetry/store/sample_store.h"

namespace ptd::telemetry {

struct Ingestor::Metrics {
  prometheus::Counter* accepted = nullptr;
  prometheus::Counter* duplicates = nullptr;
  prometheus::Counter* rejected = nullptr;
  prometheus::Histogram* batch_seconds = nullptr;
  prometheus::Histogram* batch_samples = nullptr;
};

namespace {

constexpr char kApiKeyPrefix[] = "apikey:";

struct Candidate {
  std::string device_id;
  std::vector<TimedSample> samples;
};

// What one attempt of the write transaction produced (a retried attempt starts again from the request).
struct Outcome {
  std::vector<v1::IngestResponse> responses;  // one per batch
  std::vector<v1::LatestValue> latest;
  std::vector<v1::Alarm> alarms;
};

void Reject(v1::IngestResponse& response, int series, int sample, std::string reason) {
  v1::RejectedSample* r = response.add_rejected();
  r->set_series_index(series);
  r->set_sample_index(sample);
  r->set_reason(std::move(reason));
}

// The samples' devices (valid ids, sorted, unique) and the days on which the samples inside the window land.
struct BatchPlan {
  int64_t total = 0;  // samples in all batches
  std::vector<std::string> device_ids;
  int64_t min_day = INT64_MAX;
  int64_t max_day = INT64_MIN;
};

BatchPlan PlanBatches(const std::vector<const v1::IngestRequest*>& requests, const IngestWindow& window) {
  BatchPlan plan;
  for (const v1::IngestRequest* request : requests) {
    for (const auto& s : request->series()) plan.total += s.time_unix_us_size();
  }
  for (const v1::IngestRequest* request : requests) {
    for (const auto& s : request->series()) {
      if (IsValidId(s.device_id())) plan.device_ids.push_back(s.device_id());
      for (int64_t t : s.time_unix_us()) {
        if (t < window.now_us - window.late_us || t > window.now_us + window.future_us) continue;
        plan.min_day = std::min(plan.min_day, DayOf(t));
        plan.max_day = std::max(plan.max_day, DayOf(t));
      }
    }
  }
  std::sort(plan.device_ids.begin(), plan.device_ids.end());
  plan.device_ids.erase(std::unique(plan.device_ids.begin(), plan.device_ids.end()), plan.device_ids.end());
  return plan;
}

// Who writes: an edge gateway writes for its assigned devices only; a user for every device of the enterprise.
struct Writer {
  bool as_edge_gateway = false;
  absl::flat_hash_set<std::string> allowed;
  std::string gateway_name;
};

absl::Status LoadWriter(pqxx::work& tx, const Caller& caller, Writer& writer) {
  if (!writer.as_edge_gateway) return absl::OkStatus();
  std::optional<v1::EdgeGateway> gateway =
      RegistryStore::EdgeGatewayOfApiKey(tx, caller.tenant_id, caller.subject.substr(sizeof(kApiKeyPrefix) - 1));
  if (!gateway) {
    return absl::PermissionDeniedError(
        "this API key is not an edge gateway of the enterprise: register it with CreateEdgeGateway");
  }
  writer.allowed.insert(gateway->device_ids().begin(), gateway->device_ids().end());
  writer.gateway_name = gateway->name();
  return absl::OkStatus();
}

// The batches' devices and their data points as registered.
struct KnownPoints {
  std::vector<PointRow> points;
  absl::flat_hash_map<std::pair<std::string, std::string>, const PointRow*> by_code;  // (device_id, code)
  absl::flat_hash_set<std::string> devices;
};

void LoadPoints(pqxx::work& tx, const std::string& tenant, const std::vector<std::string>& device_ids,
                KnownPoints& known) {
  known.points = RegistryStore::PointsOfDevices(tx, tenant, device_ids);
  known.devices = RegistryStore::ExistingDevices(tx, tenant, device_ids);
  for (const PointRow& p : known.points) known.by_code[{p.device_id, p.code}] = &p;
}

// Checks, sample by sample; the acceptable ones gathered per point, the others rejected in their batch's answer.
void GatherCandidates(const std::vector<const v1::IngestRequest*>& requests, const Writer& writer,
                      const KnownPoints& known, const IngestWindow& window, std::vector<v1::IngestResponse>& responses,
                      absl::flat_hash_map<std::string, Candidate>& candidates) {
  for (size_t k = 0; k < requests.size(); ++k) {
    const v1::IngestRequest& request = *requests[k];
    v1::IngestResponse& response = responses[k];
    for (int i = 0; i < request.series_size(); ++i) {
      const v1::SeriesSamples& s = request.series(i);
      auto reject_series = [&](std::string reason) { Reject(response, i, -1, std::move(reason)); };
      if (!known.devices.contains(s.device_id())) {
        reject_series(absl::StrCat("unknown device '", s.device_id(), "'"));
        continue;
      }
      if (writer.as_edge_gateway && !writer.allowed.contains(s.device_id())) {
        reject_series(
            absl::StrCat("device ", s.device_id(), " is not assigned to edge gateway '", writer.gateway_name, "'"));
        continue;
      }
      auto point = known.by_code.find(std::make_pair(s.device_id(), s.point()));
      if (point == known.by_code.end()) {
        reject_series(absl::StrCat("device ", s.device_id(), " has no data point '", s.point(), "'"));
        continue;
      }
      if (s.values_size() != s.time_unix_us_size()) {
        reject_series(absl::StrCat("values has ", s.values_size(), " entries and time_unix_us ", s.time_unix_us_size(),
                                   ": they must be parallel"));
        continue;
      }
      if (s.quality_size() != 0 && s.quality_size() != s.time_unix_us_size()) {
        reject_series(absl::StrCat("quality has ", s.quality_size(), " entries: none, or one per sample"));
        continue;
      }
      const v1::DataPoint& spec = point->second->proto;
      PointLimits limits{.min_value = spec.has_min_value() ? std::optional<double>(spec.min_value()) : std::nullopt,
                         .max_value = spec.has_max_value() ? std::optional<double>(spec.max_value()) : std::nullopt};
      Candidate& c = candidates[point->second->point_id];
      c.device_id = s.device_id();
      for (int j = 0; j < s.time_unix_us_size(); ++j) {
        Sample sample{s.time_unix_us(j), s.values(j)};
        int quality = s.quality_size() == 0 ? 1 : static_cast<int>(s.quality(j));
        if (quality < 0 || quality > 3) {
          Reject(response, i, j, absl::StrCat("quality ", quality, " is not a Quality"));
        } else if (std::optional<std::string> why = CheckSample(sample, limits, window)) {
          Reject(response, i, j, *std::move(why));
        } else {
          c.samples.push_back(
              {sample.ts_us, sample.value, static_cast<int16_t>(NormalizeQuality(quality)), static_cast<int32_t>(k)});
        }
      }
    }
  }
}

// Each point's candidates in time order without repeats (counted as duplicates of their batch); the points left
// with samples, sorted (the order their states are locked in).
std::vector<std::string> DropRepeats(absl::flat_hash_map<std::string, Candidate>& candidates,
                                     std::vector<int64_t>& duplicates) {
  std::vector<std::string> point_ids;
  for (auto& [point_id, c] : candidates) {
    SortAndDropRepeats(c.samples, &duplicates);
    if (!c.samples.empty()) point_ids.push_back(point_id);
  }
  std::sort(point_ids.begin(), point_ids.end());
  return point_ids;
}

// Samples at or before a point's newest stored one may be stored already: ask for exactly those.
absl::StatusOr<absl::flat_hash_set<std::pair<std::string, int64_t>>> StoredAlready(
    pqxx::work& tx, const std::vector<PointState>& states, absl::flat_hash_map<std::string, Candidate>& candidates) {
  std::vector<std::string> late_points;
  std::vector<int64_t> late_times;
  for (const PointState& st : states) {
    if (st.samples == 0) continue;
    for (const TimedSample& s : candidates[st.point_id].samples) {
      if (s.ts_us > st.last_ts_us) break;
      late_points.push_back(st.point_id);
      late_times.push_back(s.ts_us);
    }
  }
  return SampleStore::FindStored(tx, late_points, late_times);
}

// What the new samples write: blocks, rollups, and the samples that feed the alarm rules.
struct Writes {
  std::vector<PointBlocks> blocks;
  std::vector<std::pair<std::string, std::pair<int64_t, Aggregate>>> minutes, hours, days;
  absl::flat_hash_map<std::string, AlarmEngine::NewSamples> in_order;
};

// Drops the samples stored already (duplicates of their batch), counts the rest as accepted, and folds them into
// the writes, the points' states and the latest values.
void FoldNewSamples(const absl::flat_hash_set<std::pair<std::string, int64_t>>& stored,
                    absl::flat_hash_map<std::string, Candidate>& candidates, std::vector<PointState>& states,
                    std::vector<int64_t>& duplicates, std::vector<int64_t>& accepted, Writes& w,
                    std::vector<v1::LatestValue>& latest) {
  for (PointState& st : states) {
    Candidate& c = candidates[st.point_id];
    if (!stored.empty()) {
      auto end = std::remove_if(c.samples.begin(), c.samples.end(), [&](const TimedSample& s) {
        if (!stored.contains(std::make_pair(st.point_id, s.ts_us))) return false;
        ++duplicates[s.origin];
        return true;
      });
      c.samples.erase(end, c.samples.end());
    }
    if (c.samples.empty()) continue;
    for (const TimedSample& s : c.samples) ++accepted[s.origin];
    w.blocks.push_back({st.point_id, SplitByDay(c.samples)});
    for (const auto& [bucket, a] : Rollup(c.samples, kMicrosPerMinute)) w.minutes.push_back({st.point_id, {bucket, a}});
    for (const auto& [bucket, a] : Rollup(c.samples, kMicrosPerHour)) w.hours.push_back({st.point_id, {bucket, a}});
    for (const auto& [bucket, a] : Rollup(c.samples, kMicrosPerDay)) w.days.push_back({st.point_id, {bucket, a}});
    // Samples newer than the point's newest so far move its latest value and feed its alarm rules, in order;
    // late samples fill in history only.
    AlarmEngine::NewSamples& fresh = w.in_order[st.point_id];
    fresh.device_id = c.device_id;
    for (const TimedSample& s : c.samples) {
      if (st.samples == 0 || s.ts_us > st.last_ts_us) fresh.samples.push_back({s.ts_us, s.value});
    }
    const TimedSample& newest = c.samples.back();
    if (st.samples == 0 || newest.ts_us > st.last_ts_us) {
      st.last_ts_us = newest.ts_us;
      st.last_value = newest.value;
      st.last_quality = newest.quality;
      v1::LatestValue* v = &latest.emplace_back();
      v->set_point_id(st.point_id);
      v->set_device_id(c.device_id);
      v->set_time_unix_us(newest.ts_us);
      v->set_value(newest.value);
      v->set_quality(static_cast<v1::Quality>(newest.quality));
    }
    st.samples += static_cast<int64_t>(c.samples.size());
    if (fresh.samples.empty()) w.in_order.erase(st.point_id);
  }
}

// The blocks (COPY), the three rollups and the points' states.
void WriteSamples(pqxx::work& tx, const std::string& tenant, const Writes& w, const std::vector<PointState>& states) {
  if (w.blocks.empty()) return;
  SampleStore::WriteBlocks(tx, tenant, w.blocks);
  SampleStore::MergeRollups(tx, "rollup_1m", tenant, w.minutes);
  SampleStore::MergeRollups(tx, "rollup_1h", tenant, w.hours);
  SampleStore::MergeRollups(tx, "rollup_1d", tenant, w.days);
  SampleStore::UpdateStates(tx, states);
}

// The latest values' point codes and each batch's counts.
void CompleteOutcome(const KnownPoints& known, const std::vector<int64_t>& accepted,
                     const std::vector<int64_t>& duplicates, Outcome& out) {
  absl::flat_hash_map<std::string, const PointRow*> by_id;
  for (const PointRow& p : known.points) by_id[p.point_id] = &p;
  for (v1::LatestValue& v : out.latest) v.set_point(by_id.at(v.point_id())->code);
  for (size_t k = 0; k < out.responses.size(); ++k) {
    out.responses[k].set_accepted(accepted[k]);
    out.responses[k].set_duplicates(duplicates[k]);
  }
}

}  // namespace

Ingestor::Ingestor(pg::Pool& pool, AlarmEngine& alarms, LiveFeed& live, IngestOptions options,
                   prometheus::Registry* registry)
    : pool_(pool), alarms_(alarms), live_(live), options_(options), metrics_(std::make_unique<Metrics>()) {
  if (registry == nullptr) return;
  auto& samples = prometheus::BuildCounter()
                      .Name("ptd_telemetry_samples_total")
                      .Help("Samples received by ingest, by result (accepted, duplicate, rejected)")
                      .Register(*registry);
  metrics_->accepted = &samples.Add({{"result", "accepted"}});
  metrics_->duplicates = &samples.Add({{"result", "duplicate"}});
  metrics_->rejected = &samples.Add({{"result", "rejected"}});
  metrics_->batch_seconds = &prometheus::BuildHistogram()
                                 .Name("ptd_telemetry_ingest_batch_seconds")
                                 .Help("Time to make one ingest batch durable (checks, transaction, commit)")
                                 .Register(*registry)
                                 .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                                  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5});
  metrics_->batch_samples = &prometheus::BuildHistogram()
                                 .Name("ptd_telemetry_ingest_batch_samples")
                                 .Help("Samples per ingest batch")
                                 .Register(*registry)
                                 .Add({}, prometheus::Histogram::BucketBoundaries{1, 10, 100, 1000, 10000, 100000});
}

Ingestor::~Ingestor() = default;

absl::Status Ingestor::EnsurePartitions(int64_t first_day, int64_t last_day) {
  {
    absl::MutexLock lock(&mu_);
    bool all = true;
    for (int64_t d = first_day; d <= last_day && all; ++d) all = partition_days_.contains(d);
    if (all) return absl::OkStatus();
  }
  absl::Status s = pool_.InTransaction([&](pqxx::work& tx) {
    SampleStore::EnsurePartitions(tx, first_day, last_day);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  for (int64_t d = first_day; d <= last_day; ++d) partition_days_.insert(d);
  return absl::OkStatus();
}

absl::Status Ingestor::PreparePartitions() {
  int64_t now = absl::ToUnixMicros(absl::Now());
  return EnsurePartitions(DayOf(now - options_.late_us) - 1, DayOf(now + options_.future_us) + 2);
}

absl::Status Ingestor::Check(const Caller& caller, const v1::IngestRequest& request) const {
  int64_t total = 0;
  for (const auto& s : request.series()) total += s.time_unix_us_size();
  FieldViolations violations;
  if (total > options_.max_samples_per_batch) {
    violations.Add("series", absl::StrCat("at most ", options_.max_samples_per_batch, " samples in one batch, got ",
                                          total, ": send smaller batches"));
  }
  if (request.batch_id().size() > 128) violations.Add("batch_id", "must be at most 128 bytes");
  if (!violations.empty()) return violations.ToStatus();
  if (!absl::StartsWith(caller.subject, kApiKeyPrefix) && !caller.HasRole("admin") && !caller.HasRole("operator")) {
    return absl::PermissionDeniedError(
        "writing samples needs an edge gateway's API key, or a user with the role admin or operator");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::IngestResponse> Ingestor::Ingest(const Caller& caller, const v1::IngestRequest& request) {
  if (absl::Status s = Check(caller, request); !s.ok()) return s;
  absl::StatusOr<std::vector<v1::IngestResponse>> responses = IngestMany(caller, {&request});
  if (!responses.ok()) return responses.status();
  return std::move(responses->front());
}

absl::StatusOr<std::vector<v1::IngestResponse>> Ingestor::IngestMany(
    const Caller& caller, const std::vector<const v1::IngestRequest*>& requests) {
  absl::Time started = absl::Now();
  IngestWindow window{
      .now_us = absl::ToUnixMicros(started), .late_us = options_.late_us, .future_us = options_.future_us};
  // Partitions for every day a sample inside the window may land on.
  const BatchPlan plan = PlanBatches(requests, window);
  if (plan.min_day <= plan.max_day) {
    if (absl::Status s = EnsurePartitions(plan.min_day, plan.max_day); !s.ok()) return s;
  }

  absl::StatusOr<Outcome> outcome = pool_.InTransaction([&](pqxx::work& tx) -> absl::StatusOr<Outcome> {
    Outcome out;
    out.responses.resize(requests.size());
    for (size_t k = 0; k < requests.size(); ++k) out.responses[k].set_batch_id(requests[k]->batch_id());

    Writer writer{.as_edge_gateway = absl::StartsWith(caller.subject, kApiKeyPrefix)};
    if (absl::Status s = LoadWriter(tx, caller, writer); !s.ok()) return s;
    KnownPoints known;
    LoadPoints(tx, caller.tenant_id, plan.device_ids, known);

    absl::flat_hash_map<std::string, Candidate> candidates;
    GatherCandidates(requests, writer, known, window, out.responses, candidates);

    std::vector<int64_t> duplicates(requests.size(), 0), accepted(requests.size(), 0);
    std::vector<std::string> point_ids = DropRepeats(candidates, duplicates);
    std::vector<PointState> states =
        point_ids.empty() ? std::vector<PointState>{} : SampleStore::LockStates(tx, caller.tenant_id, point_ids);

    absl::StatusOr<absl::flat_hash_set<std::pair<std::string, int64_t>>> stored = StoredAlready(tx, states, candidates);
    if (!stored.ok()) return stored.status();

    Writes writes;
    FoldNewSamples(*stored, candidates, states, duplicates, accepted, writes, out.latest);
    WriteSamples(tx, caller.tenant_id, writes, states);
    if (!writes.in_order.empty()) {
      absl::StatusOr<std::vector<v1::Alarm>> changed = alarms_.OnSamples(tx, caller.tenant_id, writes.in_order);
      if (!changed.ok()) return changed.status();
      out.alarms = *std::move(changed);
    }
    CompleteOutcome(known, accepted, duplicates, out);
    return out;
  });
  if (!outcome.ok()) return outcome.status();

  // After the commit: the metrics, the alarms raised, the latest values in Redis and the live feed.
  int64_t accepted = 0, duplicates = 0;
  for (const v1::IngestResponse& r : outcome->responses) {
    accepted += r.accepted();
    duplicates += r.duplicates();
  }
  int64_t rejected = plan.total - accepted - duplicates;
  if (metrics_->accepted != nullptr) {
    metrics_->accepted->Increment(static_cast<double>(accepted));
    metrics_->duplicates->Increment(static_cast<double>(duplicates));
    metrics_->rejected->Increment(static_cast<double>(rejected));
    metrics_->batch_seconds->Observe(absl::ToDoubleSeconds(absl::Now() - started));
    metrics_->batch_samples->Observe(static_cast<double>(plan.total));
  }
  alarms_.CountRaised(caller.tenant_id, outcome->alarms);
  live_.Publish(caller.tenant_id, outcome->latest, outcome->alarms);
  if (rejected > 0) log::Debug("samples rejected", {{"rejected", rejected}, {"batches", requests.size()}});
  return std::move(outcome->responses);
}

}  // namespace ptd::telemetry
