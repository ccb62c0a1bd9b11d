#include "tests/testing/testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

extern char** environ;

namespace ptd::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

}  // namespace

const Infra& GetInfra() {
  static const Infra infra = [] {
    Infra out;
    std::string path = EnvOr("PTD_TEST_INFRA_ENV", BuildPath("test-infra/env"));
    std::ifstream in(path);
    if (!in) FAIL("no test infrastructure: run the test through ctest (fixture infra), missing " << path);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "PTD_PG_URL") out.pg_url = value;
      if (key == "PTD_REDIS_URL") out.redis_url = value;
    }
    return out;
  }();
  return infra;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}();
  std::ostringstream out;
  out << prefix << "_" << ::getpid() << "_" << std::hex << salt << "_" << counter++;
  return out.str();
}

std::string FreshDatabase(const std::string& prefix) {
  const Infra& infra = GetInfra();
  std::string name = UniqueName(prefix);
  for (char& c : name) c = static_cast<char>(std::tolower(c));
  pqxx::connection conn(infra.pg_url);
  pqxx::nontransaction tx(conn);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  auto slash = infra.pg_url.rfind('/');
  return infra.pg_url.substr(0, slash + 1) + name;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string BuildPath(const std::string& relative) { return EnvOr("PTD_BUILD_DIR", ".") + "/" + relative; }
std::string SourcePath(const std::string& relative) { return EnvOr("PTD_SOURCE_DIR", PTD_SOURCE_DIR) + "/" + relative; }

Process::Process(std::string name, std::vector<std::string> argv, std::map<std::string, std::string> env)
    : name_(std::move(name)) {
  log_path_ = BuildPath("test-logs/" + UniqueName(name_) + ".log");
  std::string dir = BuildPath("test-logs");
  ::mkdir(dir.c_str(), 0755);
  // Build everything the child needs before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    if (env.find(key) == env.end()) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    static const char kExecFailed[] = "testing: execve failed: no such program?\n";
    (void)!::write(2, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  REQUIRE(pid_ > 0);
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

bool Process::running() {
  if (reaped_) return false;
  int status;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return true;
}

void Process::Signal(int signo) {
  if (!reaped_) ::kill(pid_, signo);
}

int Process::Wait(std::chrono::milliseconds timeout) {
  if (!WaitFor([this] { return !running(); }, timeout)) return -1;
  return status_;
}

std::string Process::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

namespace {
int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  return WaitFor(
      [port] {
        int fd = ConnectLoopback(port);
        if (fd < 0) return false;
        ::close(fd);
        return true;
      },
      timeout);
}

std::string HttpGet(int port, const std::string& path) {
  int fd = ConnectLoopback(port);
  if (fd < 0) return "";
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return "";
  }
  std::string response;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace ptd::testing
