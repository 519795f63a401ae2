// Bounds-checked little-endian cursor over a mapped GGUF header; every read says whether the bytes were
// there.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/status.h"
#include "model/gguf.h"

namespace sacc {

class GgufReader {
 public:
  GgufReader(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool read_pod(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  Status truncated(std::string_view what) const;
  Status read_string(std::string* out, std::string_view what);
  // Reads a typed value (type code, then payload) for metadata key `key`.
  Status read_value(GgufValue* out, std::string_view key);

 private:
  // `what` names the value in errors ("metadata key 'general.name'").
  Status read_payload(GgufValueType type, GgufValue* out, std::string_view what, int depth);
  Status read_array(GgufValue* out, std::string_view what, int depth);

  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

}  // namespace sacc
