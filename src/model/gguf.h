// GGUF (v2/v3) reader: memory-maps the file, parses and validates the header, metadata and tensor table at
// open, and dequantises tensors on request. Every offset and count is checked against the file size before it
// is used, so a truncated or corrupt file gives a CORRUPT_DATA Status naming the file (and tensor or key),
// never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "model/dequantize.h"

namespace sacc {

// Metadata value types; the numeric codes are the file format's.
enum class GgufValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);

// One metadata value. Scalars fill exactly one of the scalar fields; arrays fill the vector that matches
// their element type (integers and bools -> ints, floats -> floats, strings -> strings, arrays -> arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  GgufValueType element_type = GgufValueType::UINT8;  // arrays only
  uint64_t u64 = 0;                                   // unsigned integers (and bool as 0/1)
  int64_t i64 = 0;                                    // signed integers
  double f64 = 0.0;                                   // floats
  std::string str;                                    // STRING
  std::vector<int64_t> ints;         // ARRAY of integer/bool (UINT64 values above INT64_MAX wrap)
  std::vector<double> floats;        // ARRAY of FLOAT32/FLOAT64
  std::vector<std::string> strings;  // ARRAY of STRING
  std::vector<GgufValue> arrays;     // ARRAY of ARRAY

  bool is_integer() const;  // any integer type or BOOL
  bool is_float() const;
  uint64_t array_size() const;
  std::string to_string(size_t max_elements = 8) const;  // for `sacc info`: "[1, 2, 3, ... (151936 total)]"
};

struct GgufTensorInfo {
  std::string name;
  GgmlTypeInfo type;
  Shape shape;          // row-major, outermost first (GGUF lists dims innermost first; we reverse them)
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;  // bytes in the file
};

class GgufFile {
 public:
  // Maps and validates `path`; NOT_FOUND / IO_ERROR / CORRUPT_DATA / UNSUPPORTED with the path in the
  // message.
  static Result<GgufFile> open(const std::string& path);
  // The same checks on a file's bytes held in memory; `name` stands for the path in messages and path().
  static Result<GgufFile> from_bytes(std::vector<uint8_t> bytes, const std::string& name);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const;
  uint64_t alignment() const { return alignment_; }

  // ---- metadata
  const std::vector<std::string>& keys() const { return keys_; }  // file order
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  // Typed accessors: NOT_FOUND when absent, INVALID_ARGUMENT naming the key and both types when mistyped.
  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;   // any integer type (bool as 0/1)
  Result<double> get_float(std::string_view key) const;  // any float or integer type
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  Result<std::vector<double>> get_float_array(std::string_view key) const;
  // Defaults for optional keys (a mistyped present key still gives the default; use get_* to be strict).
  int64_t get_int_or(std::string_view key, int64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  std::string get_string_or(std::string_view key, const std::string& fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;

  // ---- tensors
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  // Raw bytes of a tensor inside the mapping (valid while this GgufFile lives).
  const uint8_t* tensor_data(const GgufTensorInfo& info) const;

  // Dequantises a tensor into a new host tensor of F32 or BF16 with the tensor's row-major shape.
  // NOT_FOUND naming the tensor and the file when absent.
  Result<Tensor> load_tensor(std::string_view name, DType dtype) const;
  Result<Tensor> load_tensor_f32(std::string_view name) const { return load_tensor(name, DType::F32); }
  Result<Tensor> load_tensor_bf16(std::string_view name) const { return load_tensor(name, DType::BF16); }
  // Dequantises into caller memory of `dtype` (F32 or BF16) holding exactly numel elements (e.g. pinned
  // memory).
  Status load_tensor_into(const GgufTensorInfo& info, DType dtype, void* dst) const;

 private:
  struct Mapping;
  GgufFile() = default;
  Status parse();

  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace sacc
