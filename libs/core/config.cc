#include "libs/core/config.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libs/core/log.h"

namespace ptd {

Config::Config(std::string program, std::string summary, std::vector<Option> options)
    : program_(std::move(program)), summary_(std::move(summary)), options_(std::move(options)) {
  for (const Option& o : options_) values_[o.name] = o.default_value;
}

std::string Config::EnvName(std::string_view option_name) {
  return "PTD_" + absl::AsciiStrToUpper(absl::StrReplaceAll(std::string(option_name), {{"-", "_"}}));
}

absl::Status Config::Parse(int argc, const char* const* argv) {
  for (const Option& o : options_) {
    if (const char* env = std::getenv(EnvName(o.name).c_str()); env != nullptr) values_[o.name] = env;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg.substr(0, 2) != "--")
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", std::string(arg), "'"));
    arg.remove_prefix(2);
    std::string name, value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
      if (values_.find(name) == values_.end()) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    } else {
      name = std::string(arg);
      if (values_.find(name) == values_.end()) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      value = argv[++i];
    }
    values_[name] = value;
  }
  return absl::OkStatus();
}

void Config::ParseOrExit(int argc, const char* const* argv) {
  absl::Status status = Parse(argc, argv);
  if (help_requested_) {
    std::cout << Usage();
    std::exit(0);
  }
  if (!status.ok()) {
    std::cerr << program_ << ": " << status.message() << "\n\n" << Usage();
    std::exit(2);
  }
}

std::string Config::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, " [--option=value ...]\n", summary_, "\n\nOptions:\n");
  for (const Option& o : options_) {
    absl::StrAppend(&out, "  --", o.name, " (env ", EnvName(o.name), ", default \"", o.default_value, "\")\n      ",
                    o.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      Prints this text.\n");
  return out;
}

const std::string& Config::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) {
    std::fprintf(stderr, "config: option '%.*s' was never declared\n", static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

absl::StatusOr<int64_t> Config::GetInt(std::string_view name) const {
  int64_t v;
  if (!absl::SimpleAtoi(Get(name), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", std::string(name), " must be an integer, got '", Get(name), "'"));
  }
  return v;
}

absl::StatusOr<bool> Config::GetBool(std::string_view name) const {
  bool v;
  if (!absl::SimpleAtob(Get(name), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", std::string(name), " must be true or false, got '", Get(name), "'"));
  }
  return v;
}

absl::StatusOr<absl::Duration> Config::GetDuration(std::string_view name) const {
  absl::Duration d;
  if (!absl::ParseDuration(Get(name), &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", std::string(name), " must be a duration like 250ms or 5s, got '", Get(name), "'"));
  }
  return d;
}

namespace {
template <typename T>
T OrExit(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::cerr << v.status().message() << "\n";
    std::exit(2);
  }
  return *v;
}
}  // namespace

int64_t Config::IntOrExit(std::string_view name) const { return OrExit(GetInt(name)); }
bool Config::BoolOrExit(std::string_view name) const { return OrExit(GetBool(name)); }
absl::Duration Config::DurationOrExit(std::string_view name) const { return OrExit(GetDuration(name)); }

bool SetUpServiceOrExit(const Config& config, std::string_view service) {
  log::SetService(service);
  log::Level level;
  if (!log::ParseLevel(config.Get("log-level"), &level)) {
    std::cerr << "--log-level must be debug, info, warn or error\n";
    std::exit(2);
  }
  log::SetMinLevel(level);
  const bool migrate_only = config.BoolOrExit("migrate-only");
  if (!migrate_only && config.Get("internal-token").empty()) {
    std::cerr << "--internal-token (PTD_INTERNAL_TOKEN) is required: services refuse calls without it\n";
    std::exit(2);
  }
  return migrate_only;
}

void ExitWithError(std::string_view what, const absl::Status& status) {
  log::Error(what, {{"status", status.ToString()}});
  std::exit(1);
}

}  // namespace ptd
