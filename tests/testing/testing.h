#ifndef PTD_TESTS_TESTING_TESTING_H_
#define PTD_TESTS_TESTING_TESTING_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

// Helpers for tests that run against the real PostgreSQL and Redis of the `infra` ctest fixture and against
// real service binaries.
namespace ptd::testing {

// The fixture's servers (from $PTD_TEST_INFRA_ENV, by default $PTD_BUILD_DIR/test-infra/env, which the
// `infra` fixture writes). Fails the test when they are not up.
struct Infra {
  std::string pg_url;     // postgresql://ptd@127.0.0.1:PORT/postgres
  std::string redis_url;  // redis://127.0.0.1:PORT
};
const Infra& GetInfra();

// Creates a new, empty database with a unique name and returns its URL.
std::string FreshDatabase(const std::string& prefix = "t");

// A unique string for Redis stream keys, tenant ids, etc.
std::string UniqueName(const std::string& prefix);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Path of a binary built in this build tree, e.g. BuildPath("services/trading/ptd-trading").
std::string BuildPath(const std::string& relative);
std::string SourcePath(const std::string& relative);

// A child process, killed (SIGKILL) when the object goes away if still running.
// Its stdout and stderr go to a log file under the build tree, named after the process.
class Process {
 public:
  Process(std::string name, std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int signo);
  // Waits for exit; returns the exit status as from waitpid, or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  std::string name_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Polls `ready` every 20 ms until it is true or the timeout passes; returns the last answer.
template <typename F>
bool WaitFor(F ready, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A plain HTTP/1.0 GET on 127.0.0.1:port; returns the body ("" on failure).
std::string HttpGet(int port, const std::string& path);

}  // namespace ptd::testing

#include "tests/testing/testing_inl.h"

#endif  // PTD_TESTS_TESTING_TESTING_H_
