// Errors as values. A Status carries a code and a message a user can act on
// ("model.safetensors: tensor 'lm_head.weight' ends past the end of the file (truncated download?)").
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sacc {

enum class StatusCode {
  OK = 0,
  INVALID_ARGUMENT,  // a caller or user passed something wrong (shape, option, pattern string)
  NOT_FOUND,         // file, tensor or key missing
  CORRUPT_DATA,      // a file is truncated or malformed
  UNSUPPORTED,       // valid request this build or device cannot serve
  OUT_OF_MEMORY,     // host or device allocation failed or would exceed the budget
  IO_ERROR,          // the OS refused a read or write
  CUDA_ERROR,        // a CUDA runtime / library call failed
  INTERNAL,          // a bug: an invariant did not hold
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::OK; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid argument: ..." for printing to a user.
  std::string to_string() const;
  // Prefix context: Status("bad dtype").with_context("model.safetensors") -> "model.safetensors: bad dtype".
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::OK;
  std::string message_;
};

template <typename... Args>
Status make_error(StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

// Result<T>: either a value or a non-OK Status (std::expected is C++23; nvcc builds C++20).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(state_).is_ok())
      state_ = Status(StatusCode::INTERNAL, "Result built from OK status");
  }

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace sacc

#define SACC_CONCAT_INNER(a, b) a##b
#define SACC_CONCAT(a, b) SACC_CONCAT_INNER(a, b)

// Return the Status if it is an error.
#define SACC_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::sacc::Status sacc_status_ = (expr);           \
    if (!sacc_status_.is_ok()) return sacc_status_; \
  } while (0)

// auto x = ...Result<T>...; on error return its Status.
#define SACC_ASSIGN_OR_RETURN(lhs, expr) \
  SACC_ASSIGN_OR_RETURN_IMPL(SACC_CONCAT(sacc_result_, __LINE__), lhs, expr)
// `tmp` and `lhs` are declarations (`const T x`), which parentheses would break.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define SACC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
