// Writes small GGUF files for tests, byte by byte as the format specifies, independent of the reader.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sacc::testing_gguf {

class Bytes {
 public:
  template <typename T>
  Bytes& pod(T value) {
    const auto* p = reinterpret_cast<const char*>(&value);
    data_.append(p, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    pod<uint64_t>(s.size());
    data_ += s;
    return *this;
  }
  Bytes& raw(const std::string& s) {
    data_ += s;
    return *this;
  }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

class GgufWriter {
 public:
  // Metadata: value bytes already encoded (type code first).
  void add(const std::string& key, uint32_t type, const Bytes& payload) {
    ++kv_count_;
    kv_.str(key).pod<uint32_t>(type).raw(payload.data());
  }
  void add_u32(const std::string& key, uint32_t v) { add(key, 4, Bytes().pod(v)); }
  void add_i32(const std::string& key, int32_t v) { add(key, 5, Bytes().pod(v)); }
  void add_f32(const std::string& key, float v) { add(key, 6, Bytes().pod(v)); }
  void add_bool(const std::string& key, bool v) { add(key, 7, Bytes().pod<uint8_t>(v ? 1 : 0)); }
  void add_string(const std::string& key, const std::string& v) { add(key, 8, Bytes().str(v)); }
  void add_string_array(const std::string& key, const std::vector<std::string>& values) {
    Bytes b;
    b.pod<uint32_t>(8).pod<uint64_t>(values.size());
    for (const auto& v : values) b.str(v);
    add(key, 9, b);
  }
  void add_i32_array(const std::string& key, const std::vector<int32_t>& values) {
    Bytes b;
    b.pod<uint32_t>(5).pod<uint64_t>(values.size());
    for (int32_t v : values) b.pod(v);
    add(key, 9, b);
  }

  // dims innermost first, as the file stores them; data is the tensor's bytes.
  void add_tensor(const std::string& name, uint32_t type, const std::vector<uint64_t>& dims,
                  const std::string& data) {
    tensors_.push_back({name, type, dims, data});
  }

  std::string build(uint32_t version = 3, uint64_t alignment = 32) const {
    Bytes out;
    out.raw("GGUF")
        .pod<uint32_t>(version)
        .pod<uint64_t>(tensors_.size())
        .pod<uint64_t>(kv_count_)
        .raw(kv_.data());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
      offsets.push_back(offset);
      out.str(t.name).pod<uint32_t>(static_cast<uint32_t>(t.dims.size()));
      for (uint64_t d : t.dims) out.pod(d);
      out.pod(t.type).pod(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    std::string file = out.data();
    file.resize((file.size() + alignment - 1) / alignment * alignment, '\0');
    for (size_t i = 0; i < tensors_.size(); ++i) {
      file += tensors_[i].data;
      if (i + 1 < tensors_.size())
        file.resize(file.size() + (offsets[i + 1] - offsets[i] - tensors_[i].data.size()), '\0');
    }
    return file;
  }

 private:
  struct TensorEntry {
    std::string name;
    uint32_t type;
    std::vector<uint64_t> dims;
    std::string data;
  };
  Bytes kv_;
  uint64_t kv_count_ = 0;
  std::vector<TensorEntry> tensors_;
};

inline std::string write_temp_file(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace sacc::testing_gguf
