#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <thread>

#include "model/gguf_reader.h"

namespace sacc {

// The file's bytes: mapped (open) or owned (from_bytes).
struct GgufFile::Mapping {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  bool mapped = false;
  std::vector<uint8_t> owned;
  ~Mapping() {
    if (mapped) munmap(const_cast<uint8_t*>(data), size);
  }
};

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxTensorDims = 4;            // ggml tensors have at most 4 dimensions
constexpr uint64_t kMaxElements = uint64_t{1} << 48;

bool is_integer_type(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
    case GgufValueType::INT8:
    case GgufValueType::UINT16:
    case GgufValueType::INT16:
    case GgufValueType::UINT32:
    case GgufValueType::INT32:
    case GgufValueType::UINT64:
    case GgufValueType::INT64:
    case GgufValueType::BOOL:
      return true;
    default:
      return false;
  }
}

Status type_error(std::string_view key, const GgufValue& value, std::string_view wanted) {
  std::string actual(gguf_value_type_name(value.type));
  if (value.type == GgufValueType::ARRAY)
    actual += fmt::format(" of {}", gguf_value_type_name(value.element_type));
  return make_error(StatusCode::INVALID_ARGUMENT, "metadata key '{}' is {}, expected {}", key, actual,
                    wanted);
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8:
      return "UINT8";
    case GgufValueType::INT8:
      return "INT8";
    case GgufValueType::UINT16:
      return "UINT16";
    case GgufValueType::INT16:
      return "INT16";
    case GgufValueType::UINT32:
      return "UINT32";
    case GgufValueType::INT32:
      return "INT32";
    case GgufValueType::FLOAT32:
      return "FLOAT32";
    case GgufValueType::BOOL:
      return "BOOL";
    case GgufValueType::STRING:
      return "STRING";
    case GgufValueType::ARRAY:
      return "ARRAY";
    case GgufValueType::UINT64:
      return "UINT64";
    case GgufValueType::INT64:
      return "INT64";
    case GgufValueType::FLOAT64:
      return "FLOAT64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  return is_integer_type(type);
}

bool GgufValue::is_float() const {
  return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64;
}

uint64_t GgufValue::array_size() const {
  if (type != GgufValueType::ARRAY) return 0;
  return ints.size() + floats.size() + strings.size() + arrays.size();
}

std::string GgufValue::to_string(size_t max_elements) const {
  switch (type) {
    case GgufValueType::STRING:
      return str;
    case GgufValueType::BOOL:
      return u64 != 0 ? "true" : "false";
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      return fmt::format("{}", f64);
    case GgufValueType::UINT8:
    case GgufValueType::UINT16:
    case GgufValueType::UINT32:
    case GgufValueType::UINT64:
      return fmt::format("{}", u64);
    case GgufValueType::ARRAY:
      break;
    default:
      return fmt::format("{}", i64);
  }
  const uint64_t n = array_size();
  std::string out = "[";
  for (uint64_t i = 0; i < std::min<uint64_t>(n, max_elements); ++i) {
    if (i > 0) out += ", ";
    if (!ints.empty()) out += fmt::format("{}", ints[i]);
    if (!floats.empty()) out += fmt::format("{}", floats[i]);
    if (!strings.empty()) out += fmt::format("'{}'", strings[i]);
    if (!arrays.empty()) out += arrays[i].to_string(max_elements);
  }
  if (n > max_elements) out += fmt::format(", ... ({} total)", n);
  return out + "]";
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

uint64_t GgufFile::file_size() const {
  return mapping_ ? mapping_->size : 0;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  GgufFile file;
  file.path_ = path;
  file.mapping_ = std::make_unique<Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? StatusCode::NOT_FOUND : StatusCode::IO_ERROR, "{}: cannot open: {}",
                      path, std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(StatusCode::IO_ERROR, "{}: not a regular file", path);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    void* data = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return make_error(StatusCode::IO_ERROR, "{}: mmap failed: {}", path, std::strerror(err));
    }
    file.mapping_->data = static_cast<const uint8_t*>(data);
    file.mapping_->size = size;
    file.mapping_->mapped = true;
  }
  ::close(fd);
  Status status = file.parse();
  if (!status.is_ok()) return status.with_context(path);
  return file;
}

Result<GgufFile> GgufFile::from_bytes(std::vector<uint8_t> bytes, const std::string& name) {
  GgufFile file;
  file.path_ = name;
  file.mapping_ = std::make_unique<Mapping>();
  file.mapping_->owned = std::move(bytes);
  file.mapping_->data = file.mapping_->owned.data();
  file.mapping_->size = file.mapping_->owned.size();
  Status status = file.parse();
  if (!status.is_ok()) return status.with_context(name);
  return file;
}

Status GgufFile::parse() {
  GgufReader reader(mapping_->data, mapping_->size);
  uint32_t magic = 0;
  if (!reader.read_pod(&magic) || magic != kGgufMagic) {
    return make_error(StatusCode::CORRUPT_DATA, "not a GGUF file (the first 4 bytes are not 'GGUF')");
  }
  if (!reader.read_pod(&version_)) return reader.truncated("the version");
  if (version_ == 1) {
    return make_error(StatusCode::UNSUPPORTED,
                      "GGUF version 1 is not supported (re-convert the model to v3)");
  }
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0 && version_ != 0) {
      return make_error(StatusCode::UNSUPPORTED, "big-endian GGUF files are not supported");
    }
    return make_error(StatusCode::UNSUPPORTED, "GGUF version {} is not supported (2 or 3 expected)",
                      version_);
  }
  uint64_t tensor_count = 0, kv_count = 0;
  if (!reader.read_pod(&tensor_count)) return reader.truncated("the tensor count");
  if (!reader.read_pod(&kv_count)) return reader.truncated("the metadata count");
  // Each key-value takes at least 13 bytes and each tensor info at least 24: larger counts cannot fit the
  // file.
  if (kv_count > reader.remaining() / 13) {
    return make_error(StatusCode::CORRUPT_DATA, "metadata count {} is too large for a file of {} bytes",
                      kv_count, mapping_->size);
  }
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    SACC_RETURN_IF_ERROR(reader.read_string(&key, fmt::format("the key of metadata entry {}", i)));
    GgufValue value;
    SACC_RETURN_IF_ERROR(reader.read_value(&value, key));
    if (metadata_.count(key) != 0) {
      return make_error(StatusCode::CORRUPT_DATA, "metadata key '{}' appears twice", key);
    }
    keys_.push_back(key);
    metadata_.emplace(std::move(key), std::move(value));
  }

  if (const GgufValue* value = find("general.alignment")) {
    if (!value->is_integer() || value->type == GgufValueType::BOOL || value->u64 == 0 ||
        value->u64 > (1u << 20) || (value->u64 & (value->u64 - 1)) != 0) {
      return make_error(StatusCode::CORRUPT_DATA, "general.alignment must be a power of two, got {}",
                        value->to_string());
    }
    alignment_ = value->u64;
  }

  if (tensor_count > reader.remaining() / 24) {
    return make_error(StatusCode::CORRUPT_DATA, "tensor count {} is too large for a file of {} bytes",
                      tensor_count, mapping_->size);
  }
  tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    SACC_RETURN_IF_ERROR(reader.read_string(&info.name, fmt::format("the name of tensor {}", i)));
    const std::string what = fmt::format("tensor '{}'", info.name);
    uint32_t n_dims = 0;
    if (!reader.read_pod(&n_dims)) return reader.truncated(what);
    if (n_dims == 0 || n_dims > kMaxTensorDims) {
      return make_error(StatusCode::CORRUPT_DATA, "{} has {} dimensions (1 to {} allowed)", what, n_dims,
                        kMaxTensorDims);
    }
    std::array<uint64_t, kMaxTensorDims> ne{};
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      if (!reader.read_pod(&ne[d])) return reader.truncated(what);
      if (ne[d] == 0 || ne[d] > kMaxElements || numel > kMaxElements / ne[d]) {
        return make_error(StatusCode::CORRUPT_DATA, "{} has an invalid dimension {} = {}", what, d, ne[d]);
      }
      numel *= ne[d];
    }
    uint32_t type_code = 0;
    uint64_t offset = 0;
    if (!reader.read_pod(&type_code) || !reader.read_pod(&offset)) return reader.truncated(what);
    auto type = ggml_type_info(type_code);
    if (!type.is_ok()) return type.status().with_context(what);
    info.type = *type;
    if (ne[0] % static_cast<uint64_t>(info.type.block_size) != 0) {
      return make_error(StatusCode::CORRUPT_DATA,
                        "{}: row length {} is not a multiple of the {} block size {}", what, ne[0],
                        info.type.name, info.type.block_size);
    }
    if (offset % alignment_ != 0) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: data offset {} is not aligned to {} bytes", what,
                        offset, alignment_);
    }
    info.shape.ndim = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d)
      info.shape[static_cast<int>(n_dims - 1 - d)] = static_cast<int64_t>(ne[d]);
    info.nbytes = ggml_nbytes(info.type, numel);
    info.offset = offset;  // relative until the data section start is known
    if (tensor_index_.count(info.name) != 0) {
      return make_error(StatusCode::CORRUPT_DATA, "tensor '{}' appears twice", info.name);
    }
    tensor_index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }

  const uint64_t header_end = reader.position();
  const uint64_t data_start = (header_end + alignment_ - 1) / alignment_ * alignment_;
  for (auto& info : tensors_) {
    const uint64_t size = mapping_->size;
    if (data_start > size || info.offset > size - data_start ||
        info.nbytes > size - data_start - info.offset) {
      return make_error(StatusCode::CORRUPT_DATA,
                        "tensor '{}' ({} bytes at data offset {}) ends past the end of the file ({} bytes; "
                        "truncated download?)",
                        info.name, info.nbytes, info.offset, size);
    }
    info.offset += data_start;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(std::string(key));
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {
Status missing_key(std::string_view key) {
  return make_error(StatusCode::NOT_FOUND, "metadata key '{}' is missing", key);
}
}  // namespace

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->type != GgufValueType::STRING) return type_error(key, *value, "STRING");
  return value->str;
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (!value->is_integer()) return type_error(key, *value, "an integer");
  return value->i64;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->is_float()) return value->f64;
  if (value->is_integer() && value->type != GgufValueType::BOOL) return static_cast<double>(value->i64);
  return type_error(key, *value, "a number");
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->type != GgufValueType::BOOL) return type_error(key, *value, "BOOL");
  return value->u64 != 0;
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->type != GgufValueType::ARRAY || value->element_type != GgufValueType::STRING) {
    return type_error(key, *value, "ARRAY of STRING");
  }
  return value->strings;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->type != GgufValueType::ARRAY || !is_integer_type(value->element_type)) {
    return type_error(key, *value, "ARRAY of integers");
  }
  return value->ints;
}

Result<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr) return missing_key(key);
  if (value->type != GgufValueType::ARRAY) return type_error(key, *value, "ARRAY of numbers");
  if (!value->ints.empty()) return std::vector<double>(value->ints.begin(), value->ints.end());
  if (value->element_type != GgufValueType::FLOAT32 && value->element_type != GgufValueType::FLOAT64 &&
      value->array_size() != 0) {
    return type_error(key, *value, "ARRAY of numbers");
  }
  return value->floats;
}

int64_t GgufFile::get_int_or(std::string_view key, int64_t fallback) const {
  auto value = get_int(key);
  return value.is_ok() ? *value : fallback;
}

double GgufFile::get_float_or(std::string_view key, double fallback) const {
  auto value = get_float(key);
  return value.is_ok() ? *value : fallback;
}

std::string GgufFile::get_string_or(std::string_view key, const std::string& fallback) const {
  auto value = get_string(key);
  return value.is_ok() ? *value : fallback;
}

bool GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  auto value = get_bool(key);
  return value.is_ok() ? *value : fallback;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return mapping_->data + info.offset;
}

Status GgufFile::load_tensor_into(const GgufTensorInfo& info, DType dtype, void* dst) const {
  if (dtype != DType::F32 && dtype != DType::BF16) {
    return make_error(StatusCode::INVALID_ARGUMENT, "{}: tensor '{}' can be loaded as F32 or BF16, not {}",
                      path_, info.name, dtype_name(dtype));
  }
  const int64_t numel = info.shape.numel();
  const int64_t block = info.type.block_size;
  const uint8_t* src = tensor_data(info);
  // Dequantising a large embedding takes a while on one core; split whole blocks over the cores.
  const int64_t n_blocks = numel / block;
  const int64_t kMinBlocksPerThread = 1 << 14;
  const int64_t n_threads = std::clamp<int64_t>(n_blocks / kMinBlocksPerThread, 1,
                                                std::max(1u, std::thread::hardware_concurrency()));
  auto work = [&](int64_t first_block, int64_t last_block) {
    const uint8_t* chunk_src = src + first_block * info.type.block_bytes;
    const int64_t first = first_block * block, count = (last_block - first_block) * block;
    if (dtype == DType::F32) {
      dequantize_to_f32(info.type.type, chunk_src, count, static_cast<float*>(dst) + first);
    } else {
      dequantize_to_bf16(info.type.type, chunk_src, count, static_cast<uint16_t*>(dst) + first);
    }
  };
  if (n_threads == 1) {
    work(0, n_blocks);
    return Status::ok();
  }
  std::vector<std::thread> threads;
  const int64_t per_thread = (n_blocks + n_threads - 1) / n_threads;
  for (int64_t t = 0; t < n_threads; ++t) {
    const int64_t first = t * per_thread, last = std::min(n_blocks, first + per_thread);
    if (first < last) threads.emplace_back(work, first, last);
  }
  for (auto& thread : threads) thread.join();
  return Status::ok();
}

Result<Tensor> GgufFile::load_tensor(std::string_view name, DType dtype) const {
  const GgufTensorInfo* info = find_tensor(name);
  if (info == nullptr) {
    return make_error(StatusCode::NOT_FOUND, "{}: tensor '{}' is missing", path_, name);
  }
  SACC_ASSIGN_OR_RETURN(Tensor tensor, Tensor::empty(dtype, info->shape));
  SACC_RETURN_IF_ERROR(load_tensor_into(*info, dtype, tensor.data()));
  return tensor;
}

}  // namespace sacc
