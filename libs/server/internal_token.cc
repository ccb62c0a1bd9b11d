#include "libs/server/internal_token.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <vector>

#include "libs/server/caller.h"
#include "libs/server/rpc_observer.h"

// Why an auth metadata processor: a gRPC 1.51 server interceptor cannot fail a call before its handler runs, and a
// check at the top of each handler is easy to forget. The processor runs in gRPC core, on every call, before the
// call is matched to a handler. grpc::InsecureServerCredentials() refuses processors (it asserts), but core's own
// insecure credentials accept one, so these credentials add the port through the C API.
namespace ptd::server_internal {
namespace {

std::string_view View(const grpc_slice& slice) {
  return {reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)), GRPC_SLICE_LENGTH(slice)};
}

struct Processor {
  std::string token;
  RefusedCallback on_refused;
};

// Runs on a gRPC core thread; must not block. Calls `done` before returning.
void Process(void* state, grpc_auth_context* /*context*/, const grpc_metadata* md, size_t num_md,
             grpc_process_auth_metadata_done_cb done, void* user_data) {
  const auto* processor = static_cast<const Processor*>(state);
  std::string_view path, tenant, request_id;
  bool token_ok = false;
  std::vector<grpc_metadata> tokens;  // consumed: handlers never see the credential
  for (size_t i = 0; i < num_md; ++i) {
    std::string_view key = View(md[i].key);
    if (key == ":path") {
      path = View(md[i].value);
    } else if (key == kTenantKey) {
      tenant = View(md[i].value);
    } else if (key == kRequestIdKey) {
      request_id = View(md[i].value);
    } else if (key == kInternalTokenKey) {
      tokens.push_back(md[i]);
      if (ConstantTimeEquals(View(md[i].value), processor->token)) token_ok = true;
    }
  }
  if (token_ok || IsOpenMethod(path)) {
    done(user_data, tokens.data(), tokens.size(), nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  if (processor->on_refused) processor->on_refused(path, tenant, request_id);
  done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_UNAUTHENTICATED,
       tokens.empty() ? "x-ptd-internal-token is missing: services accept calls only from the gateway and each other"
                      : "x-ptd-internal-token is wrong: services accept calls only from the gateway and each other");
}

void Destroy(void* state) { delete static_cast<Processor*>(state); }

class InternalTokenCredentials final : public grpc::ServerCredentials {
 public:
  InternalTokenCredentials(std::string token, RefusedCallback on_refused)
      : token_(std::move(token)), on_refused_(std::move(on_refused)) {}

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/) override {
    // The processor is ours; nothing else may replace it.
  }

 private:
  int AddPortToServer(const std::string& address, grpc_server* server) override {
    grpc_server_credentials* credentials = grpc_insecure_server_credentials_create();
    grpc_auth_metadata_processor processor{};
    processor.process = &Process;
    processor.destroy = &Destroy;
    processor.state = new Processor{token_, on_refused_};
    grpc_server_credentials_set_auth_metadata_processor(credentials, processor);
    int port = grpc_server_add_http2_port(server, address.c_str(), credentials);
    grpc_server_credentials_release(credentials);
    return port;
  }

  std::string token_;
  RefusedCallback on_refused_;
};

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer length so the time depends on the lengths only, never on where the first difference is.
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

std::shared_ptr<grpc::ServerCredentials> InternalTokenServerCredentials(std::string token, RefusedCallback on_refused) {
  return std::make_shared<InternalTokenCredentials>(std::move(token), std::move(on_refused));
}

}  // namespace ptd::server_internal
