#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "libs/core/status.h"
#include "libs/server/caller.h"
#include "services/telemetry/ingest.h"
#include "services/telemetry/telemetry_service.h"

// Ingest: one batch, or a stream of batches stored together.
namespace ptd::telemetry {
namespace {

constexpr int64_t kMaxSamplesPerCommit = 200'000;  // StreamIngest: batches stored together, at most this many samples

}  // namespace

grpc::Status TelemetryService::Ingest(grpc::ServerContext* context, const v1::IngestRequest* request,
                                      v1::IngestResponse* response) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<v1::IngestResponse> result = ingestor_.Ingest(*caller, *request);
  if (!result.ok()) return Answer("Ingest", result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status TelemetryService::StreamIngest(grpc::ServerContext* context,
                                            grpc::ServerReaderWriter<v1::IngestResponse, v1::IngestRequest>* stream) {
  auto caller = CallerOf(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // A reader thread queues the batches as they arrive; this thread stores everything queued so far in one
  // transaction (an edge gateway with several batches in flight shares one commit among them) and then answers
  // each batch, in order. Every answer still follows the commit of its batch.
  std::mutex mu;
  std::condition_variable arrived;
  std::deque<v1::IngestRequest> queue;
  bool reading = true;
  std::thread reader([&] {
    v1::IngestRequest request;
    while (stream->Read(&request)) {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(request));
      arrived.notify_one();
    }
    std::lock_guard<std::mutex> lock(mu);
    reading = false;
    arrived.notify_one();
  });
  auto finish = [&](const grpc::Status& status) {
    if (!status.ok()) context->TryCancel();  // ends the reader's Read
    reader.join();
    return status;
  };
  while (true) {
    std::vector<v1::IngestRequest> taken;
    {
      std::unique_lock<std::mutex> lock(mu);
      arrived.wait(lock, [&] { return !queue.empty() || !reading; });
      if (queue.empty()) break;
      int64_t samples = 0;
      while (!queue.empty()) {
        int64_t next = 0;
        for (const auto& series : queue.front().series()) next += series.time_unix_us_size();
        if (!taken.empty() && samples + next > kMaxSamplesPerCommit) break;
        samples += next;
        taken.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    // A batch wrong as a whole ends the stream with its status, after the good batches before it are stored and
    // answered: everything acknowledged is durable, the rest is to be sent again.
    absl::Status refused;
    std::vector<const v1::IngestRequest*> batch;
    for (const v1::IngestRequest& request : taken) {
      refused = ingestor_.Check(*caller, request);
      if (!refused.ok()) break;
      batch.push_back(&request);
    }
    if (!batch.empty()) {
      absl::StatusOr<std::vector<v1::IngestResponse>> responses = ingestor_.IngestMany(*caller, batch);
      if (!responses.ok()) return finish(Answer("StreamIngest", responses.status()));
      for (const v1::IngestResponse& response : *responses) {
        if (!stream->Write(response)) return finish(grpc::Status::OK);  // the client went away
      }
    }
    if (!refused.ok()) return finish(Answer("StreamIngest", refused));
  }
  return finish(grpc::Status::OK);
}

}  // namespace ptd::telemetry
