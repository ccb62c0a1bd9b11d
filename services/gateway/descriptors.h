#ifndef PTD_SERVICES_GATEWAY_DESCRIPTORS_H_
#define PTD_SERVICES_GATEWAY_DESCRIPTORS_H_

#include <google/protobuf/descriptor.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ptd::gateway {

// The files whose services the gateway serves: every one compiled into this binary, and those of the
// FileDescriptorSets at `descriptor_set_paths` (protoc --include_imports --descriptor_set_out) that the binary
// does not have, which are built into `pool`. INVALID_ARGUMENT names a set that cannot be read or built.
absl::StatusOr<std::vector<std::string>> ServedFiles(const std::vector<std::string>& descriptor_set_paths,
                                                     google::protobuf::DescriptorPool& pool);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DESCRIPTORS_H_
