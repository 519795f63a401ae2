#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

namespace sacc {
namespace {

// A header bigger than this is not a tensor table but a corrupt length field (real checkpoints: < 1 MiB).
constexpr uint64_t kMaxHeaderBytes = 256ull << 20;
// Largest dimension accepted; keeps every element count and byte size far from 64-bit overflow.
constexpr uint64_t kMaxExtent = 1ull << 40;

Status corrupt(const std::string& path, const std::string& what) {
  return Status(StatusCode::CORRUPT_DATA, fmt::format("{}: {}", path, what));
}

}  // namespace

// The file's bytes: mapped (open) or owned (from_bytes).
struct SafetensorsFile::Mapping {
  void* base = nullptr;
  size_t size = 0;
  bool mapped = false;
  std::vector<uint8_t> owned;
  ~Mapping() {
    if (mapped) munmap(base, size);
  }
};

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = std::make_unique<Mapping>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status(errno == ENOENT ? StatusCode::NOT_FOUND : StatusCode::IO_ERROR,
                  fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return Status(StatusCode::IO_ERROR, fmt::format("{}: cannot stat: {}", path, std::strerror(error)));
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size > 0) {  // an empty file cannot be mapped; parse() reports it as too short
    void* base = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_error = errno;
    if (base == MAP_FAILED) {
      ::close(fd);
      return Status(StatusCode::IO_ERROR, fmt::format("{}: cannot map: {}", path, std::strerror(map_error)));
    }
    file.mapping_->base = base;
    file.mapping_->size = file_size;
    file.mapping_->mapped = true;
  }
  ::close(fd);
  SACC_RETURN_IF_ERROR(file.parse());
  return file;
}

Result<SafetensorsFile> SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, const std::string& name) {
  SafetensorsFile file;
  file.path_ = name;
  file.mapping_ = std::make_unique<Mapping>();
  file.mapping_->owned = std::move(bytes);
  file.mapping_->base = file.mapping_->owned.data();
  file.mapping_->size = file.mapping_->owned.size();
  SACC_RETURN_IF_ERROR(file.parse());
  return file;
}

Status SafetensorsFile::parse() {
  const std::string& path = path_;
  const uint64_t file_size = mapping_->size;
  if (file_size < 8) {
    return corrupt(
        path, fmt::format("file is {} bytes, too short for a safetensors header (truncated?)", file_size));
  }
  const auto* bytes = static_cast<const uint8_t*>(mapping_->base);

  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];  // little endian
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return corrupt(path, fmt::format("header length {} does not fit in the {}-byte file (truncated or not a "
                                     "safetensors file?)",
                                     header_size, file_size));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  const nlohmann::json header =
      nlohmann::json::parse(header_begin, header_begin + header_size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return corrupt(path, "header is not a JSON object (corrupt or not a safetensors file)");
  }
  const uint64_t data_begin = 8 + header_size;
  const uint64_t data_size = file_size - data_begin;

  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return corrupt(path, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return corrupt(path, fmt::format("__metadata__['{}'] is not a string", key));
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    auto bad = [&, &tensor_name = name](const std::string& what) {
      return corrupt(path, fmt::format("tensor '{}': {}", tensor_name, what));
    };
    if (!entry.is_object()) return bad("entry is not an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) return bad("missing or non-string 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array()) return bad("missing or non-array 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return bad("'data_offsets' must be [begin, end] of non-negative integers");
    }
    Result<DType> dtype = parse_dtype(dtype_it->get<std::string>());
    if (!dtype.is_ok()) return bad(dtype.status().message());
    std::vector<int64_t> dims;
    uint64_t numel = 1;  // saturates at data_size + 1: anything larger is an error anyway
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > kMaxExtent) {
        return bad(fmt::format("shape entries must be integers in [0, {}]", kMaxExtent));
      }
      const uint64_t extent = dim.get<uint64_t>();
      dims.push_back(static_cast<int64_t>(extent));
      if (numel == 0 || extent == 0) {
        numel = 0;
      } else {
        numel = numel > data_size / extent ? data_size + 1 : numel * extent;
      }
    }
    if (numel > data_size)
      return bad(fmt::format("shape needs more than the {}-byte data section", data_size));
    Result<Shape> shape = Shape::from_vector(dims);
    if (!shape.is_ok())
      return Status(shape.status().code(),
                    fmt::format("{}: tensor '{}': {}", path, name, shape.status().message()));
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return bad(fmt::format("data_offsets [{}, {}] lie outside the {}-byte data section (truncated file?)",
                             begin, end, data_size));
    }
    const uint64_t expected = static_cast<uint64_t>(shape->numel()) * dtype_size(*dtype);
    if (end - begin != expected) {
      return bad(fmt::format("holds {} bytes but {} of {} needs {}", end - begin, shape->to_string(),
                             dtype_name(*dtype), expected));
    }
    entries_[name] = Entry{*dtype, *shape, static_cast<size_t>(data_begin + begin)};
    spans.push_back({begin, end, name});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t covered_to = 0;
  std::string covered_by;
  for (const Span& span : spans) {
    if (span.begin == span.end) continue;  // empty tensors occupy nothing
    if (span.begin < covered_to) {
      return corrupt(path, fmt::format("tensors '{}' and '{}' overlap", covered_by, span.name));
    }
    covered_to = span.end;
    covered_by = span.name;
  }
  for (const Span& span : spans) names_.push_back(span.name);
  return Status::ok();
}

Result<TensorView> SafetensorsFile::tensor(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string known;
    for (size_t i = 0; i < names_.size() && i < 12; ++i) known += (i ? ", " : "") + names_[i];
    if (names_.size() > 12) known += fmt::format(", ... ({} in all)", names_.size());
    return make_error(StatusCode::NOT_FOUND, "{}: no tensor '{}' (it holds: {})", path_, name,
                      known.empty() ? "nothing" : known);
  }
  auto* data = static_cast<uint8_t*>(mapping_->base) + it->second.offset;
  return TensorView(data, it->second.dtype, it->second.shape, Device::cpu());
}

namespace {

// Appends the bytes of a host tensor in row-major order, whatever its strides.
void append_contiguous(const TensorView& view, std::vector<uint8_t>& out) {
  const size_t element = dtype_size(view.dtype);
  const auto* src = static_cast<const uint8_t*>(view.data);
  if (view.is_contiguous()) {
    out.insert(out.end(), src, src + view.nbytes());
    return;
  }
  const int64_t count = view.numel();
  std::array<int64_t, kMaxDims> at{};
  for (int64_t n = 0; n < count; ++n) {
    int64_t offset = 0;
    for (int i = 0; i < view.shape.ndim; ++i) offset += at[i] * view.strides[i];
    out.insert(out.end(), src + offset * element, src + (offset + 1) * element);
    for (int i = view.shape.ndim - 1; i >= 0; --i) {
      if (++at[i] < view.shape[i]) break;
      at[i] = 0;
    }
  }
}

}  // namespace

Status write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<uint8_t> data;
  for (const NamedTensor& tensor : tensors) {
    if (tensor.name.empty() || tensor.name == "__metadata__" || header.contains(tensor.name)) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: tensor name '{}' is empty, reserved or repeated",
                        path, tensor.name);
    }
    if (!tensor.view.device.is_cpu()) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: tensor '{}' is on {}; copy it to the host first",
                        path, tensor.name, tensor.view.device.to_string());
    }
    if (tensor.view.numel() > 0 && tensor.view.data == nullptr) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: tensor '{}' has no data", path, tensor.name);
    }
    const size_t begin = data.size();
    if (tensor.view.numel() > 0) append_contiguous(tensor.view, data);
    header[tensor.name] = {{"dtype", std::string(dtype_name(tensor.view.dtype))},
                           {"shape", tensor.view.shape.to_vector()},
                           {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  uint8_t size_bytes[8];
  for (int i = 0; i < 8; ++i)
    size_bytes[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  const std::string temporary = fmt::format("{}.tmp{}", path, static_cast<long>(getpid()));
  std::FILE* out = std::fopen(temporary.c_str(), "wb");
  if (!out) return make_error(StatusCode::IO_ERROR, "{}: cannot create: {}", temporary, std::strerror(errno));
  const bool written = std::fwrite(size_bytes, 1, 8, out) == 8 &&
                       std::fwrite(text.data(), 1, text.size(), out) == text.size() &&
                       (data.empty() || std::fwrite(data.data(), 1, data.size(), out) == data.size());
  const int write_error = errno;
  if (std::fclose(out) != 0 || !written) {
    std::remove(temporary.c_str());
    return make_error(StatusCode::IO_ERROR, "{}: write failed: {}", path, std::strerror(write_error));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    return make_error(StatusCode::IO_ERROR, "{}: cannot move the written file into place: {}", path,
                      std::strerror(error));
  }
  return Status::ok();
}

}  // namespace sacc
