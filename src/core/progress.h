// Progress for long work (loading weights, prefilling 128K tokens): a single updating line on a terminal,
// a line every 10 % otherwise, nothing when quiet. Writes to stderr so stdout stays machine-readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sacc {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress() { finish(); }
  void advance(int64_t amount = 1) { update(done_ + amount); }
  void update(int64_t done);
  void finish();

  static void set_globally_enabled(bool enabled);  // --quiet turns all progress off

 private:
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool terminal_;
  bool finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace sacc
