#include "core/out_of_memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "core/tensor.h"

namespace sacc {
namespace {

// A "Key:   123 kB" line of a /proc file, in bytes; 0 when absent.
uint64_t proc_kib_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 || line[key.size()] != ':')
      continue;
    try {
      return std::stoull(line.substr(key.size() + 1)) * 1024;
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

}  // namespace

Status allocation_failed(std::string_view what, uint64_t bytes, std::string_view device, uint64_t available,
                         std::string_view detail) {
  std::string message = fmt::format("{}: cannot allocate", what);
  if (bytes) message += fmt::format(" {}", format_bytes(bytes));
  message += fmt::format(" on {}", device);
  if (available) message += fmt::format(" ({} available)", format_bytes(available));
  if (!detail.empty()) message += fmt::format(": {}", detail);
  return Status(StatusCode::OUT_OF_MEMORY, std::move(message));
}

uint64_t host_memory_available() {
  uint64_t available = proc_kib_field("/proc/meminfo", "MemAvailable");
  rlimit limit{};
  if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    const uint64_t cap = static_cast<uint64_t>(limit.rlim_cur);
    const uint64_t used = proc_kib_field("/proc/self/status", "VmSize");
    const uint64_t left = cap > used ? cap - used : 0;
    available = available ? std::min(available, left) : left;
  }
  return available;
}

Status attach_memory_plan(const Status& status, std::string_view plan) {
  if (status.code() != StatusCode::OUT_OF_MEMORY || plan.empty() ||
      status.message().find(kMemoryPlanHeading) != std::string::npos)
    return status;
  std::string message = status.message();
  message += "\n";
  message += plan;
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return Status(status.code(), std::move(message));
}

}  // namespace sacc
