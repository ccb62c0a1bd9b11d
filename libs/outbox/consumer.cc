#include "libs/outbox/consumer.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/core/log.h"

namespace ptd::outbox {
namespace {

constexpr char kInboxInsertSql[] =
    "INSERT INTO inbox (consumer_group, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

constexpr absl::Duration kLagRefreshInterval = absl::Seconds(1);

std::string DefaultConsumerName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "consumer", "-", getpid());
}

int64_t FaultFromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  int64_t n = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &n) || n < 0) return 0;
  return n;
}

// The fields the relay writes into each stream entry.
constexpr std::pair<std::string_view, std::string Delivery::*> kEntryFields[] = {
    {"id", &Delivery::event_id},
    {"type", &Delivery::type},
    {"aggregate_id", &Delivery::aggregate_id},
    {"tenant_id", &Delivery::tenant_id},
    {"request_id", &Delivery::request_id},
    {"payload", &Delivery::payload},
};

// A stream entry, [id, [field, value, ...]], as a Delivery (fields nil when the entry was deleted).
Delivery ToDelivery(const std::string& stream, const redis::Value& entry) {
  Delivery delivery;
  delivery.stream = stream;
  if (entry.elements.size() < 2) return delivery;
  delivery.entry_id = entry.elements[0].str;
  const std::vector<redis::Value>& fields = entry.elements[1].elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    for (const auto& [name, member] : kEntryFields) {
      if (fields[i].str == name) delivery.*member = fields[i + 1].str;
    }
  }
  return delivery;
}

// The value of `key` in a flat [key, value, key, value ...] reply (XINFO); nullptr when absent.
const redis::Value* Field(const redis::Value& map, std::string_view key) {
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].str == key) return &map.elements[i + 1];
  }
  return nullptr;
}

}  // namespace

struct Consumer::Metrics {
  std::shared_ptr<prometheus::Registry> own_registry;  // when the caller gave none
  prometheus::Counter* applied;
  prometheus::Counter* duplicates;
  prometheus::Counter* failures;
  prometheus::Counter* parked;
  prometheus::Gauge* pending;
  prometheus::Gauge* lag;

  Metrics(prometheus::Registry* registry, const prometheus::Labels& labels) {
    if (registry == nullptr) {
      own_registry = std::make_shared<prometheus::Registry>();
      registry = own_registry.get();
    }
    auto counter = [&](const char* name, const char* help) {
      return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry).Add(labels);
    };
    auto gauge = [&](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry).Add(labels);
    };
    applied = counter("ptd_consumer_applied_total", "Events applied by the handler and committed");
    duplicates = counter("ptd_consumer_duplicates_total", "Redelivered events the inbox had already seen");
    failures = counter("ptd_consumer_failures_total", "Handler errors (the event stays pending)");
    parked = counter("ptd_consumer_parked_total", "Events moved to the dead-letter stream");
    pending = gauge("ptd_consumer_pending", "Entries delivered to the group and not yet acknowledged");
    lag = gauge("ptd_consumer_lag", "Entries not yet delivered to the group plus pending ones");
  }
};

Consumer::Consumer(pg::Pool& pool, redis::Client& redis, ConsumerOptions options, Handler handler,
                   prometheus::Registry* registry)
    : pool_(pool), redis_(redis), options_(std::move(options)), handler_(std::move(handler)) {
  if (options_.consumer.empty()) options_.consumer = DefaultConsumerName();
  const prometheus::Labels labels = {{"stream", options_.stream}, {"group", options_.group}};
  try {
    metrics_ = std::make_unique<Metrics>(registry, labels);
  } catch (const std::exception& e) {  // a clashing metric family: keep consuming, say so
    log::Error("consumer metrics not registered", {{"error", e.what()}});
    metrics_ = std::make_unique<Metrics>(nullptr, labels);
  }
  crash_after_applied_ = FaultFromEnvironment("PTD_FAULT_CRASH_AFTER_APPLY");
}

Consumer::~Consumer() { Stop(); }

absl::Status Consumer::EnsureGroup() {
  absl::StatusOr<redis::Value> created =
      redis_.Command({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (created.ok() || absl::IsAlreadyExists(created.status())) return absl::OkStatus();
  return created.status();
}

absl::StatusOr<std::vector<Delivery>> Consumer::Claim() {
  absl::StatusOr<redis::Value> reply = redis_.Command({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
                                                       absl::StrCat(absl::ToInt64Milliseconds(options_.claim_min_idle)),
                                                       claim_cursor_, "COUNT", absl::StrCat(options_.batch_size)});
  if (!reply.ok()) return reply.status();
  std::vector<Delivery> claimed;
  if (reply->elements.size() < 2) return claimed;
  claim_cursor_ = reply->elements[0].str;  // "0-0" once the whole pending list was scanned
  for (const redis::Value& entry : reply->elements[1].elements) {
    Delivery delivery = ToDelivery(options_.stream, entry);
    // The claim counted as a delivery; ask how many there were in all.
    absl::StatusOr<redis::Value> pending =
        redis_.Command({"XPENDING", options_.stream, options_.group, delivery.entry_id, delivery.entry_id, "1"});
    if (pending.ok() && !pending->elements.empty() && pending->elements[0].elements.size() >= 4) {
      delivery.delivery_count = pending->elements[0].elements[3].integer;
    }
    claimed.push_back(std::move(delivery));
  }
  return claimed;
}

absl::StatusOr<std::vector<Delivery>> Consumer::ReadNew() {
  absl::StatusOr<redis::Value> reply = redis_.Command(
      {"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", absl::StrCat(options_.batch_size), "BLOCK",
       absl::StrCat(absl::ToInt64Milliseconds(options_.block)), "STREAMS", options_.stream, ">"},
      {.server_wait = options_.block});
  if (!reply.ok()) return reply.status();
  std::vector<Delivery> deliveries;
  for (const redis::Value& stream : reply->elements) {  // nil when nothing came
    if (stream.elements.size() < 2) continue;
    for (const redis::Value& entry : stream.elements[1].elements) {
      deliveries.push_back(ToDelivery(options_.stream, entry));
    }
  }
  return deliveries;
}

Consumer::Outcome Consumer::Apply(const Delivery& delivery, absl::Status* status) {
  bool duplicate = false;
  bool handler_failed = false;
  *status = pool_.InTransaction([&](pqxx::work& tx) -> absl::Status {
    duplicate = false;
    handler_failed = false;
    if (tx.exec_params(kInboxInsertSql, options_.group, delivery.event_id).affected_rows() == 0) {
      duplicate = true;
      return absl::OkStatus();
    }
    handler_failed = true;  // also when the handler throws
    absl::Status handled = handler_(tx, delivery);
    handler_failed = !handled.ok();
    return handled;
  });
  if (status->ok()) return duplicate ? Outcome::kDuplicate : Outcome::kApplied;
  return handler_failed ? Outcome::kHandlerFailed : Outcome::kFailed;
}

absl::Status Consumer::Park(const Delivery& delivery, const std::string& reason) {
  absl::StatusOr<redis::Value> added = redis_.Command(
      {"XADD", options_.stream + ".dead." + options_.group, "*", "id", delivery.event_id, "type", delivery.type,
       "aggregate_id", delivery.aggregate_id, "tenant_id", delivery.tenant_id, "request_id", delivery.request_id,
       "payload", delivery.payload, "entry_id", delivery.entry_id, "reason", reason});
  if (!added.ok()) return added.status();
  metrics_->parked->Increment();
  log::Error("event parked in the dead-letter stream", {{"stream", options_.stream},
                                                        {"group", options_.group},
                                                        {"entry_id", delivery.entry_id},
                                                        {"event_id", delivery.event_id},
                                                        {"type", delivery.type},
                                                        {"reason", reason}});
  return absl::OkStatus();
}

absl::StatusOr<int> Consumer::PollOnce() {
  std::lock_guard lock(poll_mu_);
  if (options_.stream.empty() || options_.group.empty()) {
    return absl::InvalidArgumentError("consumer needs a stream and a group");
  }
  if (!group_ready_) {
    if (absl::Status status = EnsureGroup(); !status.ok()) return status;
    group_ready_ = true;
  }
  absl::StatusOr<std::vector<Delivery>> deliveries = Claim();
  if (deliveries.ok() && deliveries->empty()) deliveries = ReadNew();
  if (!deliveries.ok()) {
    if (absl::IsNotFound(deliveries.status())) group_ready_ = false;  // NOGROUP: the stream was deleted
    return deliveries.status();
  }

  std::vector<std::string> acks = {"XACK", options_.stream, options_.group};
  absl::Status failure;
  for (const Delivery& delivery : *deliveries) {
    if (delivery.event_id.empty() || delivery.delivery_count > options_.max_deliveries) {
      const std::string reason = delivery.event_id.empty() ? "entry has no id field"
                                                           : absl::StrCat("delivered ", delivery.delivery_count,
                                                                          " times without being applied");
      failure = Park(delivery, reason);
      if (!failure.ok()) break;
      acks.push_back(delivery.entry_id);
      continue;
    }
    absl::Status status;
    const Outcome outcome = Apply(delivery, &status);
    if (outcome == Outcome::kFailed) {
      failure = status;
      break;
    }
    if (outcome == Outcome::kHandlerFailed) {
      metrics_->failures->Increment();
      log::Warn("event handler failed, the event will be retried", {{"stream", options_.stream},
                                                                    {"group", options_.group},
                                                                    {"entry_id", delivery.entry_id},
                                                                    {"event_id", delivery.event_id},
                                                                    {"type", delivery.type},
                                                                    {"delivery_count", delivery.delivery_count},
                                                                    {"error", status.ToString()}});
      continue;
    }
    acks.push_back(delivery.entry_id);
    if (outcome == Outcome::kDuplicate) {
      metrics_->duplicates->Increment();
      continue;
    }
    metrics_->applied->Increment();
    if (++applied_ == crash_after_applied_) raise(SIGKILL);  // fault injection: committed, not acknowledged
  }

  const int acknowledged = static_cast<int>(acks.size()) - 3;
  if (acknowledged > 0) {
    if (absl::StatusOr<redis::Value> acked = redis_.Command(acks); !acked.ok() && failure.ok()) {
      failure = acked.status();
    }
  }
  if (absl::Now() >= next_lag_refresh_) RefreshLagMetrics();
  if (!failure.ok()) return failure;
  return acknowledged;
}

void Consumer::RefreshLagMetrics() {
  next_lag_refresh_ = absl::Now() + kLagRefreshInterval;
  absl::StatusOr<redis::Value> groups = redis_.Command({"XINFO", "GROUPS", options_.stream});
  if (!groups.ok()) return;
  for (const redis::Value& group : groups->elements) {
    const redis::Value* name = Field(group, "name");
    if (name == nullptr || name->str != options_.group) continue;
    const redis::Value* pending = Field(group, "pending");
    const redis::Value* lag = Field(group, "lag");  // nil when Redis cannot tell (entries deleted unread)
    const int64_t pending_count = pending != nullptr ? pending->integer : 0;
    metrics_->pending->Set(static_cast<double>(pending_count));
    metrics_->lag->Set(static_cast<double>(pending_count + (lag != nullptr ? lag->integer : 0)));
  }
}

void Consumer::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Consumer::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void Consumer::Run() {
  log::Info("consumer started",
            {{"stream", options_.stream}, {"group", options_.group}, {"consumer", options_.consumer}});
  absl::Status last_error;
  while (!stopping_) {
    absl::StatusOr<int> handled = PollOnce();
    if (handled.ok()) {
      last_error = absl::OkStatus();
      continue;
    }
    if (handled.status() != last_error) {
      log::Warn("consumer round failed, will retry",
                {{"stream", options_.stream}, {"group", options_.group}, {"error", handled.status().ToString()}});
    }
    last_error = handled.status();
    for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  log::Info("consumer stopped", {{"stream", options_.stream}, {"group", options_.group}});
}

}  // namespace ptd::outbox
