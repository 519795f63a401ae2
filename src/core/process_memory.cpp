#include "core/process_memory.h"

#include <sys/resource.h>

#include <fstream>
#include <string>

namespace sacc {

uint64_t process_peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmHWM:  123456 kB"
  }
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  return 0;
}

}  // namespace sacc
