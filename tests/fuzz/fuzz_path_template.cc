// google.api.http path templates: parsing any text, and matching any request path against the parsed template
// and against the gateway's real route table. Input: "TEMPLATE\nPATH".
#include <cstdint>
#include <string_view>

#include "services/gateway/domain/path_template.h"
#include "tests/fuzz/routes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view text = input.substr(0, newline);
  const std::string_view path = newline == std::string_view::npos ? input : input.substr(newline + 1);
  absl::StatusOr<ptd::gateway::PathTemplate> parsed = ptd::gateway::PathTemplate::Parse(text);
  if (parsed.ok()) {
    (void)parsed->Match(path);
    (void)parsed->OpenApiPath();
    (void)parsed->CompareSpecificity(*parsed);
  }
  for (const char* method : {"GET", "POST", "PATCH", "DELETE"}) (void)ptd::fuzz::Routes().Find(method, path);
  (void)ptd::gateway::PercentDecode(path, /*keep_slash=*/true);
  return 0;
}
