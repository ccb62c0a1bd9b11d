// HTTP/JSON -> Protobuf for every route the gateway serves: the first byte picks the route; the rest is
// "PATH VALUES (one per variable, '/'-separated)\nQUERY\nBODY". A request that transcodes must serialize, and its
// JSON rendering must parse back into the same message (compared by deterministic serialization, so that map
// order does not matter and NaN equals itself).
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/strings/str_split.h"
#include "services/gateway/domain/transcoder.h"
#include "tests/fuzz/routes.h"

namespace {

std::string Wire(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  if (!message.SerializeToCodedStream(&coded)) __builtin_trap();
  coded.Trim();
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& routes = ptd::fuzz::Routes().routes();
  if (size == 0 || routes.empty()) return 0;
  const ptd::gateway::Route& route = *routes[data[0] % routes.size()];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(rest.data(), rest.size()), absl::MaxSplits('\n', 2));
  parts.resize(3);
  ptd::gateway::RouteTable::Match match{.route = &route};
  std::vector<std::string> values = absl::StrSplit(absl::string_view(parts[0].data(), parts[0].size()), '/');
  values.resize(route.path.variables().size());
  match.values = values;

  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(route.method->input_type())->New());
  if (!ptd::gateway::BuildRequest(match, parts[1], parts[2], {}, request.get()).ok()) return 0;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(*request, &json).ok()) return 0;  // e.g. a timestamp out of range
  std::unique_ptr<google::protobuf::Message> again(request->New());
  if (!google::protobuf::util::JsonStringToMessage(json, again.get()).ok()) __builtin_trap();
  if (Wire(*request) != Wire(*again)) __builtin_trap();
  return 0;
}
