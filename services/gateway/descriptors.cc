#include "services/gateway/descriptors.h"

#include <google/protobuf/descriptor.pb.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "services/gateway/domain/route_table.h"

namespace ptd::gateway {

absl::StatusOr<std::vector<std::string>> ServedFiles(const std::vector<std::string>& descriptor_set_paths,
                                                     google::protobuf::DescriptorPool& pool) {
  std::vector<std::string> names = GeneratedFileNames();
  for (const std::string& path : descriptor_set_paths) {
    std::ifstream in(path, std::ios::binary);
    google::protobuf::FileDescriptorSet set;
    if (!in || !set.ParseFromIstream(&in)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read a FileDescriptorSet from ", path));
    }
    for (const auto& file : set.file()) {
      if (pool.FindFileByName(file.name()) != nullptr) continue;
      if (pool.BuildFile(file) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": cannot build ", file.name()));
      }
      names.push_back(file.name());
    }
  }
  return names;
}

}  // namespace ptd::gateway
