#include "services/gateway/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ptd::gateway {
namespace {

prometheus::Gauge& Make(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

// Fields of /proc/self/stat after the command name (field 3 onwards), 0-based from field 3.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 2));
  std::string f;
  while (rest >> f) out.push_back(f);
  return out;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

ProcessMetrics::ProcessMetrics(prometheus::Registry& registry)
    : cpu_seconds_(Make(registry, "process_cpu_seconds_total", "User and system CPU time spent, in seconds")),
      resident_bytes_(Make(registry, "process_resident_memory_bytes", "Resident memory size in bytes")),
      virtual_bytes_(Make(registry, "process_virtual_memory_bytes", "Virtual memory size in bytes")),
      open_fds_(Make(registry, "process_open_fds", "Number of open file descriptors")),
      threads_(Make(registry, "process_threads", "Number of OS threads")),
      start_time_(
          Make(registry, "process_start_time_seconds", "Start time of the process since the epoch, in seconds")) {
  Update();
}

void ProcessMetrics::Update() {
  std::vector<std::string> f = StatFields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (1-based) -> minus 3.
  if (f.size() > 21) {
    cpu_seconds_.Set((std::stod(f[11]) + std::stod(f[12])) / ticks);
    threads_.Set(std::stod(f[17]));
    start_time_.Set(BootTimeSeconds() + std::stod(f[19]) / ticks);
    virtual_bytes_.Set(std::stod(f[20]));
    resident_bytes_.Set(std::stod(f[21]) * page);
  }
  int fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++fds;
    closedir(dir);
    fds -= 3;  // ".", ".." and the directory's own descriptor
  }
  open_fds_.Set(fds);
}

}  // namespace ptd::gateway
