#include "core/status.h"

namespace sacc {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::OK:
      return "ok";
    case StatusCode::INVALID_ARGUMENT:
      return "invalid argument";
    case StatusCode::NOT_FOUND:
      return "not found";
    case StatusCode::CORRUPT_DATA:
      return "corrupt data";
    case StatusCode::UNSUPPORTED:
      return "unsupported";
    case StatusCode::OUT_OF_MEMORY:
      return "out of memory";
    case StatusCode::IO_ERROR:
      return "I/O error";
    case StatusCode::CUDA_ERROR:
      return "CUDA error";
    case StatusCode::INTERNAL:
      return "internal error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return fmt::format("{}: {}", status_code_name(code_), message_);
}

Status Status::with_context(const std::string& context) const {
  if (is_ok()) return *this;
  return Status(code_, fmt::format("{}: {}", context, message_));
}

}  // namespace sacc
