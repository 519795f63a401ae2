// What the process really holds in memory, as the kernel counts it (for the CPU backend's reports next to its
// own accounting, which cannot see allocator slack, mapped file pages or library buffers).
#pragma once

#include <cstdint>

namespace sacc {

// Peak resident set size of this process so far (VmHWM from /proc/self/status, else getrusage's maxrss), in
// bytes; 0 when neither is available.
uint64_t process_peak_rss_bytes();

}  // namespace sacc
