// Tensor views (non-owning: pointer + dtype + shape + strides + device) and host tensors that own their
// memory. Strides are in elements, row-major by default. Up to kMaxDims dimensions.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace sacc {

enum class DeviceKind : uint8_t { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  static Device cpu() { return {}; }
  static Device cuda(int ordinal = 0) { return {DeviceKind::CUDA, ordinal}; }
  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool operator==(const Device&) const = default;
  std::string to_string() const;  // "cpu", "cuda:0"
};

// Parses "cpu", "cuda", "cuda:1".
Result<Device> parse_device(const std::string& text);

constexpr int kMaxDims = 6;

struct Shape {
  int ndim = 0;
  std::array<int64_t, kMaxDims> dims{};

  Shape() = default;
  Shape(std::initializer_list<int64_t> list);
  static Result<Shape> from_vector(const std::vector<int64_t>& dims);
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  std::vector<int64_t> to_vector() const { return {dims.begin(), dims.begin() + ndim}; }
  std::string to_string() const;  // "[4224, 32, 128]"
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::F32;
  Shape shape;
  std::array<int64_t, kMaxDims> strides{};  // in elements
  Device device;

  TensorView() = default;
  // Contiguous row-major view.
  TensorView(void* data, DType dtype, Shape shape, Device device = Device::cpu());

  int64_t numel() const { return shape.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Host tensor owning 64-byte-aligned memory. Cheap to move; copies share nothing (use clone()).
class Tensor {
 public:
  Tensor() = default;
  static Result<Tensor> empty(DType dtype, Shape shape);
  static Result<Tensor> zeros(DType dtype, Shape shape);

  const TensorView& view() const { return view_; }
  void* data() const { return view_.data; }
  DType dtype() const { return view_.dtype; }
  const Shape& shape() const { return view_.shape; }
  int64_t numel() const { return view_.numel(); }
  size_t nbytes() const { return view_.nbytes(); }
  bool defined() const { return view_.data != nullptr || view_.numel() == 0; }
  template <typename T>
  T* as() const {
    return view_.as<T>();
  }

  // Element access through float (any floating or integer dtype), flat row-major index.
  float get(int64_t flat_index) const { return load_as_float(view_.data, view_.dtype, flat_index); }
  void set(int64_t flat_index, float value) { store_from_float(view_.data, view_.dtype, flat_index, value); }

  // Convert to another dtype (rounding to nearest even for bf16/fp16).
  Result<Tensor> to(DType dtype) const;
  Result<Tensor> clone() const { return to(dtype()); }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> storage_;
  TensorView view_;
};

// Host allocation, 64-byte aligned; OUT_OF_MEMORY with the size in the message on failure.
Result<void*> host_alloc(size_t bytes);
void host_free(void* p);

std::string format_bytes(uint64_t bytes);  // "1.50 GiB"
// Parses "24GiB", "512MiB", "1.5G", "1000000" (bytes).
Result<uint64_t> parse_bytes(const std::string& text);

}  // namespace sacc
