#ifndef PTD_LIBS_CORE_CONFIG_H_
#define PTD_LIBS_CORE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ptd {

// Settings of a program, from flags and environment. For an option named "grpc-address" the flag is
// `--grpc-address=V` (or `--grpc-address V`) and the environment variable is `PTD_GRPC_ADDRESS`.
// A flag wins over the environment, which wins over the default. `--help` asks for the usage text.
class Config {
 public:
  struct Option {
    std::string name;
    std::string default_value;
    std::string help;
  };

  Config(std::string program, std::string summary, std::vector<Option> options);

  // Reads argv and the environment. Unknown flags and flags without a value are INVALID_ARGUMENT.
  absl::Status Parse(int argc, const char* const* argv);
  // Like Parse, but for main(): prints usage and exits 0 on --help, prints the error and exits 2 on bad flags.
  void ParseOrExit(int argc, const char* const* argv);

  bool help_requested() const { return help_requested_; }
  std::string Usage() const;

  // The value of a declared option; asking for an undeclared one is a programming error (aborts).
  const std::string& Get(std::string_view name) const;
  absl::StatusOr<int64_t> GetInt(std::string_view name) const;
  absl::StatusOr<bool> GetBool(std::string_view name) const;
  // "250ms", "5s", "1m" (absl::ParseDuration syntax).
  absl::StatusOr<absl::Duration> GetDuration(std::string_view name) const;

  // Shortcuts for main(): exit 2 with a message naming the option when the value does not parse.
  int64_t IntOrExit(std::string_view name) const;
  bool BoolOrExit(std::string_view name) const;
  absl::Duration DurationOrExit(std::string_view name) const;

  static std::string EnvName(std::string_view option_name);

 private:
  std::string program_;
  std::string summary_;
  std::vector<Option> options_;
  std::map<std::string, std::string, std::less<>> values_;
  bool help_requested_ = false;
};

// For a service's main(), after ParseOrExit: logs as `service` at --log-level, and exits 2 with a message for a
// bad level, or for an empty --internal-token unless --migrate-only (services refuse calls without it).
// Returns --migrate-only.
bool SetUpServiceOrExit(const Config& config, std::string_view service);

// For main(): logs `what` with the status at error level and exits 1.
[[noreturn]] void ExitWithError(std::string_view what, const absl::Status& status);

}  // namespace ptd

#endif  // PTD_LIBS_CORE_CONFIG_H_
