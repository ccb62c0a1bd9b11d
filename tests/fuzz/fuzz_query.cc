// The query string of a request: name=value pairs with '+' and %XX escapes.
#include <cstdint>
#include <string_view>

#include "services/gateway/domain/path_template.h"
#include "services/gateway/domain/transcoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  (void)ptd::gateway::ParseQuery(query);
  (void)ptd::gateway::PercentDecode(query, /*keep_slash=*/false, /*plus_is_space=*/true);
  return 0;
}
