// The backend of ptd.gwtest.v1.MappingTestService for the gateway's tests: echoes requests back.
#include <algorithm>
#include <chrono>
#include <thread>

#include "google/rpc/error_details.pb.h"
#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/core/status.h"
#include "libs/server/server.h"
#include "mapping_test.grpc.pb.h"

namespace {

using namespace ptd::gwtest::v1;

std::string FirstValue(const grpc::ServerContext& context, const char* key) {
  auto it = context.client_metadata().find(key);
  return it == context.client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
}

class EchoingService final : public ptd::gwtest::v1::MappingTestService::Service {
 public:
  grpc::Status GetFile(grpc::ServerContext*, const GetFileRequest* request, GetFileRequest* response) override {
    *response = *request;
    return grpc::Status::OK;
  }
  grpc::Status ListBooks(grpc::ServerContext*, const ListBooksRequest* request, ListBooksRequest* response) override {
    *response = *request;
    return grpc::Status::OK;
  }
  grpc::Status PutPayload(grpc::ServerContext*, const PutPayloadRequest* request,
                          PutPayloadRequest* response) override {
    *response = *request;
    return grpc::Status::OK;
  }
  grpc::Status WhoCalls(grpc::ServerContext* context, const WhoCallsRequest* request,
                        WhoCallsResponse* response) override {
    response->set_tenant(FirstValue(*context, "x-ptd-tenant"));
    response->set_subject(FirstValue(*context, "x-ptd-subject"));
    response->set_roles(FirstValue(*context, "x-ptd-roles"));
    response->set_request_id(FirstValue(*context, "x-request-id"));
    response->set_deadline_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(context->deadline() - std::chrono::system_clock::now())
            .count());
    if (request->sleep_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(request->sleep_ms()));
    return grpc::Status::OK;
  }
  grpc::Status Fail(grpc::ServerContext*, const FailRequest* request, FailRequest*) override {
    absl::Status status(static_cast<absl::StatusCode>(request->code()), request->message());
    if (!request->field().empty()) status = ptd::InvalidField(request->field(), request->message());
    return ptd::ToGrpcStatus(status);
  }
  grpc::Status Count(grpc::ServerContext* context, const CountRequest* request,
                     grpc::ServerWriter<CountMessage>* writer) override {
    CountMessage message;
    message.set_tenant(FirstValue(*context, "x-ptd-tenant"));
    message.set_request_id(FirstValue(*context, "x-request-id"));
    message.set_deadline_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(context->deadline() - std::chrono::system_clock::now())
            .count());
    message.set_payload(std::string(std::max(0, request->payload_bytes()), 'x'));
    for (int i = 0; request->count() < 0 || i < request->count(); ++i) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(request->interval_ms());
      while (std::chrono::steady_clock::now() < until && !context->IsCancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
      message.set_index(i);
      if (!writer->Write(message)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    absl::Status status(static_cast<absl::StatusCode>(request->code()), request->message());
    if (!request->field().empty()) status = ptd::InvalidField(request->field(), request->message());
    return ptd::ToGrpcStatus(status);
  }
};

}  // namespace

int main(int argc, char** argv) {
  ptd::Config config("mapping_test_server", "Test backend for the gateway.",
                     {{"grpc-address", "127.0.0.1:0", ""}, {"metrics-address", "", ""}, {"internal-token", "", ""}});
  config.ParseOrExit(argc, argv);
  EchoingService service;
  return ptd::RunServer({.service_name = "gwtest",
                         .grpc_address = config.Get("grpc-address"),
                         .metrics_address = config.Get("metrics-address"),
                         .internal_token = config.Get("internal-token")},
                        {&service});
}
