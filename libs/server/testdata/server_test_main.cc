// A service process for the Server's signal test: the echo service behind ptd::RunServer.
#include "libs/core/config.h"
#include "libs/core/log.h"
#include "libs/server/server.h"
#include "libs/server/testdata/echo_service.h"

int main(int argc, char** argv) {
  ptd::Config config("server_test_main", "Echo service for the ptd_server tests.",
                     {{"grpc-address", "127.0.0.1:0", "host:port to serve gRPC on"},
                      {"metrics-address", "", "host:port to serve /metrics on; empty for none"},
                      {"internal-token", "", "shared credential callers must present"},
                      {"shutdown-grace", "0s", "how long health says NOT_SERVING before draining"},
                      {"drain-timeout", "15s", "how long in-flight calls may take to finish"}});
  config.ParseOrExit(argc, argv);
  ptd::log::SetService("server_test_main");
  ptd::servertest::EchoService echo;
  return ptd::RunServer({.service_name = "server_test_main",
                         .grpc_address = config.Get("grpc-address"),
                         .metrics_address = config.Get("metrics-address"),
                         .internal_token = config.Get("internal-token"),
                         .shutdown_grace = config.DurationOrExit("shutdown-grace"),
                         .drain_timeout = config.DurationOrExit("drain-timeout")},
                        {&echo});
}
