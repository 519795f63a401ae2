// safetensors: round trips for every dtype, zero-copy views, and clear errors for broken files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/safetensors.h"

namespace sacc {
namespace {

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("sacc_safetensors_{}_{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file made of a raw header (the length prefix is computed) and `data_bytes` zero bytes.
  std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes) const {
    const std::string file = path(name);
    std::ofstream out(file, std::ios::binary);
    uint64_t size = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((size >> (8 * i)) & 0xff));
    out << header << std::string(data_bytes, '\0');
    return file;
  }

  std::filesystem::path dir_;
};

TEST_F(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  Tensor bf16 = Tensor::zeros(DType::BF16, {3, 5}).value();
  Tensor f16 = Tensor::zeros(DType::F16, {7}).value();
  Tensor f32 = Tensor::zeros(DType::F32, {2, 3, 4}).value();
  Tensor i32 = Tensor::zeros(DType::I32, {4}).value();
  Tensor u8 = Tensor::zeros(DType::U8, {3}).value();  // odd size: later tensors start unaligned in the data
  Tensor f64 = Tensor::zeros(DType::F64, {2}).value();
  for (int64_t n = 0; n < 15; ++n) bf16.set(n, 0.5f * static_cast<float>(n) - 3.0f);
  for (int64_t n = 0; n < 7; ++n) f16.set(n, -1.25f * static_cast<float>(n));
  for (int64_t n = 0; n < 24; ++n) f32.set(n, 1.0f / static_cast<float>(n + 1));
  for (int64_t n = 0; n < 4; ++n) i32.as<int32_t>()[n] = static_cast<int32_t>(n * 1000 - 7);
  u8.as<uint8_t>()[2] = 255;
  f64.as<double>()[1] = 1e-300;
  Tensor empty = Tensor::zeros(DType::F32, {0, 4}).value();
  const std::vector<NamedTensor> tensors{{"w.bf16", bf16.view()}, {"f16", f16.view()}, {"u8", u8.view()},
                                         {"f32", f32.view()},     {"i32", i32.view()}, {"f64", f64.view()},
                                         {"empty", empty.view()}};
  ASSERT_TRUE(write_safetensors(path("a.safetensors"), tensors, {{"format", "pt"}, {"note", "x"}}).is_ok());
  Result<SafetensorsFile> file = SafetensorsFile::open(path("a.safetensors"));
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  EXPECT_EQ(file->names().size(), 7u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  for (const NamedTensor& expected : tensors) {
    Result<TensorView> view = file->tensor(expected.name);
    ASSERT_TRUE(view.is_ok()) << expected.name;
    EXPECT_EQ(view->dtype, expected.view.dtype) << expected.name;
    EXPECT_EQ(view->shape, expected.view.shape) << expected.name;
    ASSERT_EQ(view->nbytes(), expected.view.nbytes());
    if (view->nbytes()) {
      EXPECT_EQ(std::memcmp(view->data, expected.view.data, view->nbytes()), 0) << expected.name;
    }
  }
  EXPECT_TRUE(file->contains("f16"));
  // The file on disk has the 8-byte aligned header the format recommends.
  std::ifstream in(path("a.safetensors"), std::ios::binary);
  uint64_t header = 0;
  in.read(reinterpret_cast<char*>(&header), 8);
  EXPECT_EQ(header % 8, 0u);
}

TEST_F(Safetensors, WritesStridedViewsContiguously) {
  Tensor t = Tensor::zeros(DType::F32, {3, 4}).value();
  for (int64_t n = 0; n < 12; ++n) t.set(n, static_cast<float>(n));
  TensorView transposed = t.view();  // [4, 3] view of the same memory
  transposed.shape = {4, 3};
  transposed.strides[0] = 1;
  transposed.strides[1] = 4;
  ASSERT_TRUE(write_safetensors(path("t.safetensors"), {{"t", transposed}}).is_ok());
  SafetensorsFile file = SafetensorsFile::open(path("t.safetensors")).value();
  const TensorView view = file.tensor("t").value();
  for (int64_t r = 0; r < 4; ++r) {
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(view.as<float>()[r * 3 + c], static_cast<float>(c * 4 + r));
  }
}

TEST_F(Safetensors, WriterRejectsBadNames) {
  Tensor t = Tensor::zeros(DType::F32, {1}).value();
  EXPECT_FALSE(write_safetensors(path("x"), {{"a", t.view()}, {"a", t.view()}}).is_ok());
  EXPECT_FALSE(write_safetensors(path("x"), {{"__metadata__", t.view()}}).is_ok());
  EXPECT_FALSE(write_safetensors(path("no/such/dir/x"), {{"a", t.view()}}).is_ok());
  EXPECT_FALSE(std::filesystem::exists(path("x")));
}

TEST_F(Safetensors, MissingTensorNamesFileAndContents) {
  Tensor t = Tensor::zeros(DType::F32, {1}).value();
  ASSERT_TRUE(write_safetensors(path("m.safetensors"), {{"q", t.view()}}).is_ok());
  SafetensorsFile file = SafetensorsFile::open(path("m.safetensors")).value();
  Result<TensorView> missing = file.tensor("k");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::NOT_FOUND);
  EXPECT_NE(missing.status().message().find("m.safetensors"), std::string::npos);
  EXPECT_NE(missing.status().message().find("'k'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("q"), std::string::npos);
}

// Each broken file gives a Status naming the file (and the tensor where there is one) and the problem.
TEST_F(Safetensors, BrokenFilesGiveClearErrors) {
  struct Case {
    std::string name, header;
    size_t data_bytes;
    std::string expect;  // a piece of the message
  };
  const Case cases[] = {
      {"not_json", "{\"a\": [", 0, "not a JSON object"},
      {"array", "[1, 2]", 0, "not a JSON object"},
      {"dtype", R"({"t": {"dtype": "F12", "shape": [1], "data_offsets": [0, 4]}})", 4, "unknown dtype"},
      {"no_shape", R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, "'shape'"},
      {"neg_shape", R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, "shape entries"},
      {"offsets", R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4, "data_offsets"},
      {"past_end", R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8, "outside"},
      {"reversed", R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", 8, "outside"},
      {"size", R"({"t": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})", 8, "needs 6"},
      {"overlap",
       R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
       12, "overlap"},
      {"huge_dims",
       R"({"t": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}})", 4,
       "data section"},
      {"metadata", R"({"__metadata__": {"a": 1}})", 0, "__metadata__"},
  };
  for (const Case& c : cases) {
    const std::string file = raw_file(c.name, c.header, c.data_bytes);
    Result<SafetensorsFile> opened = SafetensorsFile::open(file);
    ASSERT_FALSE(opened.is_ok()) << c.name;
    EXPECT_EQ(opened.status().code(), StatusCode::CORRUPT_DATA) << c.name;
    EXPECT_NE(opened.status().message().find(file), std::string::npos) << opened.status().message();
    EXPECT_NE(opened.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << opened.status().message();
  }
}

TEST_F(Safetensors, TruncatedEmptyAndMissingFiles) {
  Tensor t = Tensor::zeros(DType::F32, {64}).value();
  ASSERT_TRUE(write_safetensors(path("full"), {{"t", t.view()}}).is_ok());
  const auto size = std::filesystem::file_size(path("full"));
  for (uintmax_t keep : {uintmax_t{0}, uintmax_t{5}, uintmax_t{8}, uintmax_t{20}, size - 1}) {
    std::filesystem::copy_file(path("full"), path("cut"), std::filesystem::copy_options::overwrite_existing);
    std::filesystem::resize_file(path("cut"), keep);
    Result<SafetensorsFile> opened = SafetensorsFile::open(path("cut"));
    ASSERT_FALSE(opened.is_ok()) << "kept " << keep << " bytes";
    EXPECT_EQ(opened.status().code(), StatusCode::CORRUPT_DATA) << opened.status().message();
  }
  // A length prefix far beyond the file.
  {
    std::ofstream out(path("garbage"), std::ios::binary);
    out << "\xff\xff\xff\xff\xff\xff\xff\x7f"
        << "{}";
  }
  EXPECT_EQ(SafetensorsFile::open(path("garbage")).status().code(), StatusCode::CORRUPT_DATA);
  Result<SafetensorsFile> missing = SafetensorsFile::open(path("nope"));
  EXPECT_EQ(missing.status().code(), StatusCode::NOT_FOUND);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

TEST_F(Safetensors, ViewsStayValidAfterMove) {
  Tensor t = Tensor::zeros(DType::I32, {3}).value();
  t.as<int32_t>()[2] = 42;
  ASSERT_TRUE(write_safetensors(path("mv"), {{"t", t.view()}}).is_ok());
  SafetensorsFile first = SafetensorsFile::open(path("mv")).value();
  const TensorView view = first.tensor("t").value();
  SafetensorsFile second = std::move(first);
  EXPECT_EQ(view.as<int32_t>()[2], 42);
  EXPECT_EQ(second.tensor("t")->as<int32_t>()[2], 42);
}

}  // namespace
}  // namespace sacc
