#include "tools/load/mix.h"

#include <algorithm>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ptd::load {
namespace {

absl::Status Unknown(std::string_view name, const std::vector<std::string>& known) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown operation '", std::string(name), "'; the operations are: ", absl::StrJoin(known, ", ")));
}

absl::StatusOr<double> ParseWeight(std::string_view name, std::string_view text) {
  double weight = 0;
  if (!absl::SimpleAtod(absl::string_view(text.data(), text.size()), &weight) || !(weight >= 0) || weight > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("the weight of ", std::string(name), " must be a number >= 0, got '", std::string(text), "'"));
  }
  return weight;
}

size_t IndexOf(const Mix& mix, std::string_view name) {
  return static_cast<size_t>(std::find(mix.names.begin(), mix.names.end(), name) - mix.names.begin());
}

}  // namespace

double Mix::total() const {
  double sum = 0;
  for (double w : weights) sum += w;
  return sum;
}

double Mix::weight(std::string_view name) const {
  const size_t i = IndexOf(*this, name);
  return i < names.size() ? weights[i] : 0;
}

size_t Mix::Pick(double r) const {
  double point = r * total();
  size_t last = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    last = i;
    if (point < weights[i]) return i;
    point -= weights[i];
  }
  return last;  // rounding at the very top
}

absl::StatusOr<Mix> ParseMix(std::string_view text, const std::vector<std::string>& known) {
  Mix mix{known, std::vector<double>(known.size(), 0)};
  std::vector<bool> seen(known.size(), false);
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const std::string where = absl::StrCat("mix line ", line_number, ": ");
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected `name weight`, got '", line, "'"));
    }
    const std::string name(fields[0]);
    const size_t i = IndexOf(mix, name);
    if (i == mix.names.size()) return absl::InvalidArgumentError(absl::StrCat(where, Unknown(name, known).message()));
    if (seen[i]) return absl::InvalidArgumentError(absl::StrCat(where, name, " is named twice"));
    absl::StatusOr<double> weight = ParseWeight(name, std::string_view(fields[1].data(), fields[1].size()));
    if (!weight.ok()) return absl::InvalidArgumentError(absl::StrCat(where, weight.status().message()));
    seen[i] = true;
    mix.weights[i] = *weight;
  }
  return mix;
}

absl::StatusOr<Mix> OverrideMix(Mix mix, std::string_view overrides) {
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(overrides.data(), overrides.size()), ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--mix: expected name=weight, got '", item, "'"));
    }
    const std::string name(absl::StripAsciiWhitespace(item.substr(0, eq)));
    const size_t i = IndexOf(mix, name);
    if (i == mix.names.size())
      return absl::InvalidArgumentError(absl::StrCat("--mix: ", Unknown(name, mix.names).message()));
    const absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
    absl::StatusOr<double> weight = ParseWeight(name, std::string_view(value.data(), value.size()));
    if (!weight.ok()) return absl::InvalidArgumentError(absl::StrCat("--mix: ", weight.status().message()));
    mix.weights[i] = *weight;
  }
  if (!(mix.total() > 0)) return absl::InvalidArgumentError("the mix gives every operation weight 0");
  return mix;
}

}  // namespace ptd::load
