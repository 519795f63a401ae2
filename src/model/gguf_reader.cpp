#include "model/gguf_reader.h"

namespace sacc {
namespace {

constexpr int kMaxArrayDepth = 4;  // nested arrays deeper than this do not occur in real files

// Smallest encoding of one element, to reject counts that cannot fit the remaining bytes before allocating.
uint64_t min_element_bytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::BOOL:
      return 1;
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
      return 2;
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::FLOAT32:
      return 4;
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::FLOAT64:
    case GgufValueType::STRING:
      return 8;
    case GgufValueType::ARRAY:
      return 12;
  }
  return 1;
}

bool valid_type(uint32_t code) {
  return code <= static_cast<uint32_t>(GgufValueType::FLOAT64);
}

}  // namespace

Status GgufReader::truncated(std::string_view what) const {
  return make_error(StatusCode::CORRUPT_DATA, "file ends inside {} (at byte {} of {}; truncated download?)",
                    what, pos_, size_);
}

Status GgufReader::read_string(std::string* out, std::string_view what) {
  uint64_t length = 0;
  if (!read_pod(&length)) return truncated(what);
  if (length > remaining()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: string length {} exceeds the {} bytes left in the file",
                      what, length, remaining());
  }
  out->assign(reinterpret_cast<const char*>(data_ + pos_), length);
  pos_ += length;
  return Status::ok();
}

Status GgufReader::read_value(GgufValue* out, std::string_view key) {
  // Formatted once per key and passed down: an array of 150K tokens must not format it per element.
  const std::string what = fmt::format("metadata key '{}'", key);
  uint32_t code = 0;
  if (!read_pod(&code)) return truncated(what);
  if (!valid_type(code))
    return make_error(StatusCode::CORRUPT_DATA, "{} has unknown value type {}", what, code);
  return read_payload(static_cast<GgufValueType>(code), out, what, 0);
}

Status GgufReader::read_payload(GgufValueType type, GgufValue* out, std::string_view what, int depth) {
  out->type = type;
  auto read_signed = [&](auto tag) -> Status {
    decltype(tag) v{};
    if (!read_pod(&v)) return truncated(what);
    out->i64 = static_cast<int64_t>(v);  // NOLINT(bugprone-signed-char-misuse): GGUF INT8 is signed
    out->u64 = static_cast<uint64_t>(out->i64);
    return Status::ok();
  };
  auto read_unsigned = [&](auto tag) -> Status {
    decltype(tag) v{};
    if (!read_pod(&v)) return truncated(what);
    out->u64 = static_cast<uint64_t>(v);
    out->i64 = static_cast<int64_t>(out->u64);
    return Status::ok();
  };
  switch (type) {
    case GgufValueType::UINT8:
      return read_unsigned(uint8_t{});
    case GgufValueType::INT8:
      return read_signed(int8_t{});
    case GgufValueType::UINT16:
      return read_unsigned(uint16_t{});
    case GgufValueType::INT16:
      return read_signed(int16_t{});
    case GgufValueType::UINT32:
      return read_unsigned(uint32_t{});
    case GgufValueType::INT32:
      return read_signed(int32_t{});
    case GgufValueType::UINT64:
      return read_unsigned(uint64_t{});
    case GgufValueType::INT64:
      return read_signed(int64_t{});
    case GgufValueType::BOOL: {
      uint8_t v = 0;
      if (!read_pod(&v)) return truncated(what);
      if (v > 1) return make_error(StatusCode::CORRUPT_DATA, "{}: BOOL value {} is not 0 or 1", what, v);
      out->u64 = v;
      out->i64 = v;
      return Status::ok();
    }
    case GgufValueType::FLOAT32: {
      float v = 0;
      if (!read_pod(&v)) return truncated(what);
      out->f64 = v;
      return Status::ok();
    }
    case GgufValueType::FLOAT64: {
      if (!read_pod(&out->f64)) return truncated(what);
      return Status::ok();
    }
    case GgufValueType::STRING:
      return read_string(&out->str, what);
    case GgufValueType::ARRAY:
      return read_array(out, what, depth);
  }
  return make_error(StatusCode::CORRUPT_DATA, "{}: unknown value type", what);
}

Status GgufReader::read_array(GgufValue* out, std::string_view what, int depth) {
  if (depth >= kMaxArrayDepth) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: arrays nested deeper than {}", what, kMaxArrayDepth);
  }
  uint32_t code = 0;
  uint64_t count = 0;
  if (!read_pod(&code) || !read_pod(&count)) return truncated(what);
  if (!valid_type(code)) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: array of unknown value type {}", what, code);
  }
  const auto element_type = static_cast<GgufValueType>(code);
  out->element_type = element_type;
  if (count > remaining() / min_element_bytes(element_type)) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: array of {} elements does not fit the {} bytes left",
                      what, count, remaining());
  }
  GgufValue element;
  for (uint64_t i = 0; i < count; ++i) {
    if (element_type == GgufValueType::STRING) {
      out->strings.emplace_back();
      SACC_RETURN_IF_ERROR(read_string(&out->strings.back(), what));
      continue;
    }
    if (element_type == GgufValueType::ARRAY) {
      out->arrays.emplace_back();
      SACC_RETURN_IF_ERROR(read_payload(element_type, &out->arrays.back(), what, depth + 1));
      continue;
    }
    SACC_RETURN_IF_ERROR(read_payload(element_type, &element, what, depth + 1));
    if (element_type == GgufValueType::FLOAT32 || element_type == GgufValueType::FLOAT64) {
      out->floats.push_back(element.f64);
    } else {
      out->ints.push_back(element.i64);
    }
  }
  return Status::ok();
}

}  // namespace sacc
