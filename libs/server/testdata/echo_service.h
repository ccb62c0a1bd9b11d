#ifndef PTD_LIBS_SERVER_TESTDATA_ECHO_SERVICE_H_
#define PTD_LIBS_SERVER_TESTDATA_ECHO_SERVICE_H_

#include <atomic>

#include "libs/server/testdata/echo.grpc.pb.h"

namespace ptd::servertest {

// Reports what a handler sees (caller, request ids, metadata); see echo.proto.
class EchoService final : public v1::EchoService::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* context, const v1::EchoRequest* request, v1::EchoResponse* response) override;
  grpc::Status Count(grpc::ServerContext* context, const v1::CountRequest* request,
                     grpc::ServerWriter<v1::CountResponse>* writer) override;

  // How many times a handler ran.
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

}  // namespace ptd::servertest

#endif  // PTD_LIBS_SERVER_TESTDATA_ECHO_SERVICE_H_
