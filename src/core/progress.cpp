#include "core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace sacc {
namespace {
std::atomic<bool> g_enabled{true};
}

void Progress::set_globally_enabled(bool enabled) {
  g_enabled = enabled;
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled && g_enabled.load()),
      terminal_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t done) {
  done_ = done;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  if (terminal_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    const double eta = fraction > 0 ? elapsed / fraction - elapsed : 0.0;
    std::fprintf(stderr, "\r%s: %3.0f%% (%lld/%lld) %.1fs, eta %.1fs   ", label_.c_str(), 100.0 * fraction,
                 static_cast<long long>(done_), static_cast<long long>(total_), elapsed, eta);
    std::fflush(stderr);
  } else {
    const int decile = static_cast<int>(fraction * 10.0);
    if (decile != last_decile_ && elapsed > 1.0) {
      last_decile_ = decile;
      std::fprintf(stderr, "%s: %d%% (%.1fs)\n", label_.c_str(), decile * 10, elapsed);
    }
  }
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (terminal_ && last_draw_ != start_) std::fprintf(stderr, "\n");
}

}  // namespace sacc
