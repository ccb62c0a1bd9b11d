#ifndef PTD_TOOLS_LOAD_MIX_H_
#define PTD_TOOLS_LOAD_MIX_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ptd::load {

// The share of each operation in the load: a weight per operation name. Weights are relative (3 and 1 make
// 75 % and 25 %); 0 leaves an operation out.
struct Mix {
  std::vector<std::string> names;  // in the order of the known names
  std::vector<double> weights;     // parallel to names

  double total() const;
  double weight(std::string_view name) const;
  // The operation (an index into names) for a uniform random number r in [0, 1).
  size_t Pick(double r) const;
};

// A mix file: one `name weight` a line; `#` starts a comment; blank lines are ignored. Names not in `known`,
// a name given twice, and negative or non-numeric weights are INVALID_ARGUMENT naming the line. Operations
// the file does not name get weight 0.
absl::StatusOr<Mix> ParseMix(std::string_view text, const std::vector<std::string>& known);

// `overrides` is "name=weight,name=weight": those weights replace the mix's. Unknown names are
// INVALID_ARGUMENT listing the known ones. The result must have a positive total.
absl::StatusOr<Mix> OverrideMix(Mix mix, std::string_view overrides);

}  // namespace ptd::load

#endif  // PTD_TOOLS_LOAD_MIX_H_
