// Starts `sacc serve` (SACC_SACC_BINARY) on a free loopback port for a test and stops it with SIGTERM.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace sacc::test {

// A port the kernel just handed out on 127.0.0.1 (closed again for the server to take).
inline int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class ServeProcess {
 public:
  // Starts the server with `arguments` after "serve --host 127.0.0.1 --port N"; its output goes to
  // `log_path`.
  bool start(const std::vector<std::string>& arguments, const std::string& log_path) {
    port_ = free_loopback_port();
    if (port_ < 0) return false;
    std::vector<std::string> argv = {SACC_SACC_BINARY,     "-q", "serve", "--host", "127.0.0.1", "--port",
                                     std::to_string(port_)};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      if (address_space_limit) {
        // Set in the child before exec, so only the server runs under it (thread stacks and malloc arenas
        // count too: one BLAS thread).
        const rlimit limit{address_space_limit, address_space_limit};
        setrlimit(RLIMIT_AS, &limit);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
      }
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      std::vector<char*> raw;
      for (std::string& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      execv(raw[0], raw.data());
      _exit(127);
    }
    return true;
  }

  // Polls GET /health until it answers 200; false if the server exited first or never came up. The bound is
  // generous (model loading on a busy machine), not a timing assertion.
  bool wait_healthy() {
    constexpr int kAttempts = 1200;
    constexpr auto kPause = std::chrono::milliseconds(100);
    for (int i = 0; i < kAttempts; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      httplib::Client client("127.0.0.1", port_);
      if (auto res = client.Get("/health"); res && res->status == 200) return true;
      std::this_thread::sleep_for(kPause);
    }
    return false;
  }

  void send_sigterm() const {
    if (pid_ > 0) kill(pid_, SIGTERM);
  }

  // SIGTERM, then the exit code (-1: killed by a signal or not running).
  int stop() {
    if (pid_ <= 0) return -1;
    send_sigterm();
    return wait_exit();
  }

  int wait_exit() {
    if (pid_ <= 0) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  int port() const { return port_; }

  // Bytes of address space the server may use (RLIMIT_AS); 0: no limit. Set before start().
  uint64_t address_space_limit = 0;

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

}  // namespace sacc::test
