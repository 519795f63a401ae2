// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header size N, N bytes
// of JSON {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the tensor bytes (offsets relative to the end of the header).
//
// Reading memory-maps the file and hands out zero-copy TensorViews into the mapping (valid while the
// SafetensorsFile lives), so sharded multi-GiB checkpoints open instantly. The header is validated up front:
// known dtypes, offsets inside the data section, sizes equal to numel * dtype size, no overlapping tensors.
// A view's data is aligned only as the file lays it out (our writer and HF's: 8-byte aligned data section,
// but tensor offsets are not padded), so read element by element (load_as_float / memcpy) or copy before
// casting.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sacc {

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  // The same checks on a file's bytes held in memory; `name` stands for the path in messages and path().
  static Result<SafetensorsFile> from_bytes(std::vector<uint8_t> bytes, const std::string& name);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  // Tensor names in file order (ascending data offset).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // NOT_FOUND naming the file and listing what it holds when `name` is absent.
  Result<TensorView> tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status parse();  // validates the header of the bytes in mapping_, fills the tables
  struct Mapping;
  struct Entry {
    DType dtype;
    Shape shape;
    size_t offset;  // from the start of the file
  };
  std::string path_;
  std::unique_ptr<Mapping> mapping_;
  std::vector<std::string> names_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

struct NamedTensor {
  std::string name;
  TensorView view;  // host memory, any dtype, any strides (written contiguously)
};

// Writes (via a temporary file renamed into place) the tensors in the given order. Names must be unique and
// not
// "__metadata__".
Status write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace sacc
