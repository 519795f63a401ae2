#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace sacc {
namespace {

LogLevel level_from_environment() {
  const char* value = std::getenv("SACC_LOG");
  if (!value) return LogLevel::INFO;
  if (!std::strcmp(value, "error")) return LogLevel::ERROR;
  if (!std::strcmp(value, "warn")) return LogLevel::WARN;
  if (!std::strcmp(value, "debug")) return LogLevel::DEBUG;
  return LogLevel::INFO;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_environment())};
  return level;
}

}  // namespace

void set_log_level(LogLevel level) {
  level_storage() = static_cast<int>(level);
}
LogLevel log_level() {
  return static_cast<LogLevel>(level_storage().load());
}

void log_line(LogLevel level, std::string_view message) {
  static std::mutex mutex;
  static const char* kTags[] = {"error", "warn", "info", "debug"};
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "[sacc %s] %.*s\n", kTags[static_cast<int>(level)], static_cast<int>(message.size()),
               message.data());
}

}  // namespace sacc
