#include "tests/fuzz/routes.h"

#include <cstdlib>

namespace ptd::fuzz {

const gateway::RouteTable& Routes() {
  static const gateway::RouteTable* table = [] {
    auto built = gateway::RouteTable::Build(*google::protobuf::DescriptorPool::generated_pool(),
                                            gateway::GeneratedFileNames(), {"ptd."});
    if (!built.ok() || built->routes().empty()) std::abort();  // the contracts are not linked in
    return new gateway::RouteTable(*std::move(built));
  }();
  return *table;
}

}  // namespace ptd::fuzz
