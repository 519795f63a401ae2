#include "core/tensor.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "core/out_of_memory.h"

namespace sacc {

std::string Device::to_string() const {
  return is_cpu() ? "cpu" : fmt::format("cuda:{}", index);
}

Result<Device> parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda" || text == "gpu") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string number = text.substr(5);
    char* end = nullptr;
    long ordinal = std::strtol(number.c_str(), &end, 10);
    if (!number.empty() && end && *end == '\0' && ordinal >= 0 && ordinal < 1024) {
      return Device::cuda(static_cast<int>(ordinal));
    }
  }
  return make_error(StatusCode::INVALID_ARGUMENT, "unknown device '{}' (use cpu, cuda or cuda:N)", text);
}

Shape::Shape(std::initializer_list<int64_t> list) {
  for (int64_t d : list) {
    if (ndim < kMaxDims) dims[ndim++] = d;
  }
}

Result<Shape> Shape::from_vector(const std::vector<int64_t>& dims) {
  if (dims.size() > static_cast<size_t>(kMaxDims)) {
    return make_error(StatusCode::UNSUPPORTED, "tensor has {} dimensions; at most {} are supported",
                      dims.size(), kMaxDims);
  }
  Shape shape;
  for (int64_t d : dims) {
    if (d < 0) return make_error(StatusCode::INVALID_ARGUMENT, "negative dimension {}", d);
    shape.dims[shape.ndim++] = d;
  }
  return shape;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= dims[i];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (ndim != other.ndim) return false;
  for (int i = 0; i < ndim; ++i) {
    if (dims[i] != other.dims[i]) return false;
  }
  return true;
}

std::string Shape::to_string() const {
  std::string out = "[";
  for (int i = 0; i < ndim; ++i) out += fmt::format("{}{}", i ? ", " : "", dims[i]);
  return out + "]";
}

TensorView::TensorView(void* data_in, DType dtype_in, Shape shape_in, Device device_in)
    : data(data_in), dtype(dtype_in), shape(shape_in), device(device_in) {
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= shape.dims[i];
  }
}

bool TensorView::is_contiguous() const {
  int64_t stride = 1;
  for (int i = shape.ndim - 1; i >= 0; --i) {
    if (shape.dims[i] != 1 && strides[i] != stride) return false;
    stride *= shape.dims[i];
  }
  return true;
}

void Tensor::Free::operator()(void* p) const {
  host_free(p);
}

Result<Tensor> Tensor::empty(DType dtype, Shape shape) {
  Tensor t;
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  void* data = nullptr;
  if (bytes > 0) {
    SACC_ASSIGN_OR_RETURN(data, host_alloc(bytes));
  }
  t.storage_.reset(data);
  t.view_ = TensorView(data, dtype, shape, Device::cpu());
  return t;
}

Result<Tensor> Tensor::zeros(DType dtype, Shape shape) {
  SACC_ASSIGN_OR_RETURN(Tensor t, empty(dtype, shape));
  if (t.nbytes()) std::memset(t.data(), 0, t.nbytes());
  return t;
}

Result<Tensor> Tensor::to(DType dtype_out) const {
  SACC_ASSIGN_OR_RETURN(Tensor out, empty(dtype_out, shape()));
  if (dtype_out == dtype()) {
    if (nbytes()) std::memcpy(out.data(), data(), nbytes());
    return out;
  }
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) out.set(i, get(i));
  return out;
}

Result<void*> host_alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) return allocation_failed("tensor", bytes, "the host", host_memory_available());
  return p;
}

void host_free(void* p) {
  std::free(p);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

Result<uint64_t> parse_bytes(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || value < 0) {
    return make_error(StatusCode::INVALID_ARGUMENT, "'{}' is not a size (examples: 24GiB, 512MiB, 1e9)",
                      text);
  }
  std::string unit(end);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 1.0;
  if (unit.empty() || unit == "b")
    scale = 1.0;
  else if (unit == "k" || unit == "kib" || unit == "kb")
    scale = 1024.0;
  else if (unit == "m" || unit == "mib" || unit == "mb")
    scale = 1024.0 * 1024.0;
  else if (unit == "g" || unit == "gib" || unit == "gb")
    scale = 1024.0 * 1024.0 * 1024.0;
  else if (unit == "t" || unit == "tib" || unit == "tb")
    scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
  else
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "'{}': unknown size unit '{}' (use B, KiB, MiB, GiB, TiB)", text, unit);
  const double bytes = value * scale;
  // 2^64: the first double past what uint64_t holds (converting it or NaN would be undefined behaviour).
  if (!(bytes < 18446744073709551616.0)) {
    return make_error(StatusCode::INVALID_ARGUMENT, "'{}' is not a size below 2^64 bytes", text);
  }
  return static_cast<uint64_t>(bytes);
}

}  // namespace sacc
