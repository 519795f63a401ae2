// Minimal leveled logging to stderr. Level from set_log_level() or the SACC_LOG environment variable
// (error, warn, info, debug); default info.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace sacc {

enum class LogLevel { ERROR = 0, WARN = 1, INFO = 2, DEBUG = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_line(LogLevel level, std::string_view message);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level <= log_level()) log_line(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace sacc

#define SACC_LOG_ERROR(...) ::sacc::log(::sacc::LogLevel::ERROR, __VA_ARGS__)
#define SACC_LOG_WARN(...) ::sacc::log(::sacc::LogLevel::WARN, __VA_ARGS__)
#define SACC_LOG_INFO(...) ::sacc::log(::sacc::LogLevel::INFO, __VA_ARGS__)
#define SACC_LOG_DEBUG(...) ::sacc::log(::sacc::LogLevel::DEBUG, __VA_ARGS__)
