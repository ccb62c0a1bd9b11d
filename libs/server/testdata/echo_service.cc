#include "libs/server/testdata/echo_service.h"

#include <chrono>
#include <thread>

#include "libs/core/log.h"
#include "libs/core/status.h"
#include "libs/server/caller.h"

namespace ptd::servertest {

grpc::Status EchoService::Echo(grpc::ServerContext* context, const v1::EchoRequest* request,
                               v1::EchoResponse* response) {
  ++calls_;
  if (request->sleep_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(request->sleep_ms()));
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (request->require_caller() && !caller.ok()) return ToGrpcStatus(caller.status());
  if (caller.ok()) {
    response->set_tenant_id(caller->tenant_id);
    response->set_subject(caller->subject);
    for (const std::string& role : caller->roles) response->add_roles(role);
    response->set_request_id(caller->request_id);
  }
  response->set_text(request->text());
  response->set_log_request_id(log::CurrentRequestId());
  response->set_saw_internal_token(context->client_metadata().count(kInternalTokenKey) > 0);
  if (request->fail_code() != 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(request->fail_code()), "failed as asked");
  }
  return grpc::Status::OK;
}

grpc::Status EchoService::Count(grpc::ServerContext* /*context*/, const v1::CountRequest* request,
                                grpc::ServerWriter<v1::CountResponse>* writer) {
  ++calls_;
  for (int i = 1; i <= request->count(); ++i) {
    v1::CountResponse response;
    response.set_n(i);
    writer->Write(response);
  }
  return grpc::Status::OK;
}

}  // namespace ptd::servertest
