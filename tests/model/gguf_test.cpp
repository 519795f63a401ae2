// GGUF reader: tiny files written by the test (metadata of every type, tensors of every type, shapes,
// alignment), and truncated or corrupt files, which must give clear errors naming the file and never read out
// of bounds.
#include <gtest/gtest.h>

#include <cstring>

#include "core/dtype.h"
#include "model/gguf.h"
#include "model/gguf_hparams.h"
#include "tests/model/gguf_writer.h"

namespace sacc {
namespace {

using testing_gguf::Bytes;
using testing_gguf::GgufWriter;
using testing_gguf::write_temp_file;

std::string f32_bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

// A Q8_0 tensor of `rows` x 32 with d = 1/8 and q = row - 5 + column / 4 (integers, exact).
std::string q8_rows(int rows) {
  std::string out;
  for (int r = 0; r < rows; ++r) {
    std::string block(34, '\0');
    const uint16_t d = float_to_fp16(0.125f);
    std::memcpy(block.data(), &d, 2);
    for (int c = 0; c < 32; ++c) block[2 + c] = static_cast<char>(r - 5 + c / 4);
    out += block;
  }
  return out;
}

GgufWriter sample_writer() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add("u8", 0, Bytes().pod<uint8_t>(200));
  w.add("i8", 1, Bytes().pod<int8_t>(-100));
  w.add("u16", 2, Bytes().pod<uint16_t>(60000));
  w.add("i16", 3, Bytes().pod<int16_t>(-30000));
  w.add_u32("u32", 4000000000u);
  w.add_i32("i32", -2000000000);
  w.add_f32("f32", 0.5f);
  w.add_bool("flag", true);
  w.add("u64", 10, Bytes().pod<uint64_t>(1ull << 40));
  w.add("i64", 11, Bytes().pod<int64_t>(-(1ll << 40)));
  w.add("f64", 12, Bytes().pod<double>(-2.25));
  w.add_string_array("names", {"a", "", "ünïcode"});
  w.add_i32_array("numbers", {3, -1, 7});
  Bytes nested;  // [[1, 2], [3]] as arrays of UINT16
  nested.pod<uint32_t>(9).pod<uint64_t>(2);
  nested.pod<uint32_t>(2).pod<uint64_t>(2).pod<uint16_t>(1).pod<uint16_t>(2);
  nested.pod<uint32_t>(2).pod<uint64_t>(1).pod<uint16_t>(3);
  w.add("nested", 9, nested);
  w.add_tensor("vector", 0, {3}, f32_bytes({1.0f, -2.0f, 0.25f}));
  w.add_tensor("matrix", 8, {32, 3}, q8_rows(3));  // [3, 32] row-major
  return w;
}

TEST(Gguf, ReadsMetadataOfEveryType) {
  auto file = GgufFile::open(write_temp_file("sample.gguf", sample_writer().build()));
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->keys().size(), 15u);
  EXPECT_EQ(file->keys()[1], "u8");
  EXPECT_EQ(*file->get_int("u8"), 200);
  EXPECT_EQ(*file->get_int("i8"), -100);
  EXPECT_EQ(*file->get_int("u16"), 60000);
  EXPECT_EQ(*file->get_int("i16"), -30000);
  EXPECT_EQ(*file->get_int("u32"), 4000000000ll);
  EXPECT_EQ(*file->get_int("i32"), -2000000000);
  EXPECT_EQ(*file->get_float("f32"), 0.5);
  EXPECT_EQ(*file->get_bool("flag"), true);
  EXPECT_EQ(*file->get_int("u64"), 1ll << 40);
  EXPECT_EQ(*file->get_int("i64"), -(1ll << 40));
  EXPECT_EQ(*file->get_float("f64"), -2.25);
  EXPECT_EQ(*file->get_float("i32"), -2e9);  // integers read as numbers too
  EXPECT_EQ(*file->get_string_array("names"), (std::vector<std::string>{"a", "", "ünïcode"}));
  EXPECT_EQ(*file->get_int_array("numbers"), (std::vector<int64_t>{3, -1, 7}));
  const GgufValue* nested = file->find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->arrays.size(), 2u);
  EXPECT_EQ(nested->arrays[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->arrays[1].ints, (std::vector<int64_t>{3}));
  EXPECT_EQ(nested->to_string(), "[[1, 2], [3]]");
  EXPECT_EQ(file->find("numbers")->to_string(2), "[3, -1, ... (3 total)]");

  // Missing and mistyped keys name the key and the types.
  EXPECT_EQ(file->get_int("absent").status().code(), StatusCode::NOT_FOUND);
  auto mistyped = file->get_string("u32");
  EXPECT_EQ(mistyped.status().code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(mistyped.status().message().find("'u32' is UINT32"), std::string::npos)
      << mistyped.status().message();
  EXPECT_EQ(file->get_int_or("absent", 9), 9);
  EXPECT_EQ(file->get_string_or("general.architecture", ""), "llama");
}

TEST(Gguf, LoadsTensorsWithRowMajorShapes) {
  GgufWriter writer = sample_writer();
  writer.add_u32("general.alignment", 64);
  auto file = GgufFile::open(write_temp_file("tensors.gguf", writer.build(3, 64)));
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensorInfo* matrix = file->find_tensor("matrix");
  ASSERT_NE(matrix, nullptr);
  EXPECT_EQ(matrix->shape, (Shape{3, 32}));
  EXPECT_EQ(matrix->type.name, "Q8_0");
  EXPECT_EQ(matrix->nbytes, 3u * 34u);
  EXPECT_EQ(matrix->offset % 64, 0u);
  auto m = file->load_tensor_f32("matrix");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 32; ++c) EXPECT_EQ(m->get(r * 32 + c), 0.125f * static_cast<float>(r - 5 + c / 4));
  }
  auto v = file->load_tensor_bf16("vector");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(v->dtype(), DType::BF16);
  EXPECT_EQ(v->shape(), (Shape{3}));
  EXPECT_EQ(v->get(0), 1.0f);
  EXPECT_EQ(v->get(1), -2.0f);
  EXPECT_EQ(v->get(2), 0.25f);

  auto missing = file->load_tensor_f32("output.weight");
  EXPECT_EQ(missing.status().code(), StatusCode::NOT_FOUND);
  EXPECT_NE(missing.status().message().find("'output.weight'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("tensors.gguf"), std::string::npos);
  EXPECT_EQ(file->load_tensor("vector", DType::F16).status().code(), StatusCode::INVALID_ARGUMENT);
}

TEST(Gguf, AcceptsVersion2) {
  auto file = GgufFile::open(write_temp_file("v2.gguf", sample_writer().build(2)));
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  EXPECT_EQ(file->version(), 2u);
}

// Every proper prefix of a valid file is a truncated download: each must fail with CORRUPT_DATA, naming the
// file.
TEST(Gguf, EveryTruncationFailsCleanly) {
  const std::string bytes = sample_writer().build();
  for (size_t length = 0; length < bytes.size(); ++length) {
    auto file = GgufFile::open(write_temp_file("truncated.gguf", bytes.substr(0, length)));
    ASSERT_FALSE(file.is_ok()) << "a " << length << "-byte prefix of " << bytes.size() << " opened";
    EXPECT_EQ(file.status().code(), StatusCode::CORRUPT_DATA) << file.status().to_string();
    EXPECT_NE(file.status().message().find("truncated.gguf"), std::string::npos) << file.status().to_string();
  }
}

// Flipping any single header byte must give an error or a valid file, never a crash or a wild read (run under
// ASan to make the second half of that claim checkable).
TEST(Gguf, CorruptedBytesNeverCrash) {
  const std::string bytes = sample_writer().build();
  int errors = 0;
  for (size_t at = 0; at < 400 && at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0xa5);
    auto file = GgufFile::open(write_temp_file("flipped.gguf", bad));
    if (!file.is_ok()) {
      ++errors;
      continue;
    }
    for (const auto& info : file->tensors()) (void)file->load_tensor_f32(info.name);
  }
  EXPECT_GT(errors, 100);
}

Status open_status(const std::string& name, const std::string& bytes) {
  auto file = GgufFile::open(write_temp_file(name, bytes));
  return file.is_ok() ? Status::ok() : file.status();
}

void expect_error(const Status& status, StatusCode code, const std::string& fragment) {
  EXPECT_EQ(status.code(), code) << status.to_string();
  EXPECT_NE(status.message().find(fragment), std::string::npos) << status.to_string();
}

TEST(Gguf, ClearErrors) {
  expect_error(GgufFile::open("/nonexistent/model.gguf").status(), StatusCode::NOT_FOUND,
               "/nonexistent/model.gguf");
  expect_error(open_status("magic.gguf", "GGML" + std::string(60, '\0')), StatusCode::CORRUPT_DATA,
               "not a GGUF");
  expect_error(open_status("v1.gguf", Bytes().raw("GGUF").pod<uint32_t>(1).raw(std::string(16, '\0')).data()),
               StatusCode::UNSUPPORTED, "version 1");
  expect_error(open_status("be.gguf", Bytes().raw("GGUF").pod<uint32_t>(0x03000000).data()),
               StatusCode::UNSUPPORTED, "big-endian");
  expect_error(
      open_status("counts.gguf",
                  Bytes().raw("GGUF").pod<uint32_t>(3).pod<uint64_t>(0).pod<uint64_t>(1ull << 60).data()),
      StatusCode::CORRUPT_DATA, "metadata count");

  GgufWriter huge_string;
  huge_string.add("key", 8, Bytes().pod<uint64_t>(1ull << 50));
  expect_error(open_status("string.gguf", huge_string.build()), StatusCode::CORRUPT_DATA, "string length");

  GgufWriter huge_array;
  huge_array.add("arr", 9, Bytes().pod<uint32_t>(6).pod<uint64_t>(1ull << 40));
  expect_error(open_status("array.gguf", huge_array.build()), StatusCode::CORRUPT_DATA, "'arr'");

  GgufWriter bad_type;
  bad_type.add("key", 13, Bytes().pod<uint32_t>(0));
  expect_error(open_status("type.gguf", bad_type.build()), StatusCode::CORRUPT_DATA, "unknown value type 13");

  GgufWriter bad_bool;
  bad_bool.add("flag", 7, Bytes().pod<uint8_t>(2));
  expect_error(open_status("bool.gguf", bad_bool.build()), StatusCode::CORRUPT_DATA, "BOOL");

  GgufWriter twice;
  twice.add_u32("key", 1);
  twice.add_u32("key", 2);
  expect_error(open_status("twice.gguf", twice.build()), StatusCode::CORRUPT_DATA, "appears twice");

  GgufWriter alignment;
  alignment.add_u32("general.alignment", 48);
  expect_error(open_status("align.gguf", alignment.build()), StatusCode::CORRUPT_DATA, "power of two");

  GgufWriter q3k;
  q3k.add_tensor("blk.0.attn_q.weight", 11, {256}, std::string(110, '\0'));
  expect_error(open_status("q3k.gguf", q3k.build()), StatusCode::UNSUPPORTED, "'blk.0.attn_q.weight'");

  GgufWriter unknown;
  unknown.add_tensor("t", 77, {4}, std::string(16, '\0'));
  expect_error(open_status("unknown.gguf", unknown.build()), StatusCode::CORRUPT_DATA,
               "unknown tensor type code 77");

  GgufWriter ragged;
  ragged.add_tensor("t", 8, {33, 2}, std::string(136, '\0'));
  expect_error(open_status("ragged.gguf", ragged.build()), StatusCode::CORRUPT_DATA, "not a multiple");

  GgufWriter dims;
  dims.add_tensor("t", 0, {4, 0}, "");
  expect_error(open_status("dims.gguf", dims.build()), StatusCode::CORRUPT_DATA, "invalid dimension");

  GgufWriter many_dims;
  many_dims.add_tensor("t", 0, {1, 1, 1, 1, 1}, std::string(4, '\0'));
  expect_error(open_status("ndims.gguf", many_dims.build()), StatusCode::CORRUPT_DATA, "5 dimensions");

  GgufWriter duplicate;
  duplicate.add_tensor("t", 0, {1}, std::string(4, '\0'));
  duplicate.add_tensor("t", 0, {1}, std::string(4, '\0'));
  expect_error(open_status("dup.gguf", duplicate.build()), StatusCode::CORRUPT_DATA, "'t' appears twice");

  // The tensor table says 64 floats but the file holds 16: the tensor ends past the end of the file.
  GgufWriter short_data;
  short_data.add_tensor("token_embd.weight", 0, {64}, std::string(64, '\0'));
  const std::string full = short_data.build();
  expect_error(open_status("short.gguf", full.substr(0, full.size() - 200)), StatusCode::CORRUPT_DATA,
               "'token_embd.weight'");
}

TEST(Gguf, MisalignedOffsetIsReported) {
  GgufWriter w;
  w.add_tensor("a", 0, {1}, std::string(4, '\0'));
  std::string bytes = w.build();
  // The offset is the last 8 bytes of the tensor info: header (24) + name (8 + 1) + n_dims (4) + dim (8) +
  // type (4).
  const size_t offset_at = 24 + 9 + 4 + 8 + 4;
  bytes[offset_at] = 4;
  expect_error(open_status("misaligned.gguf", bytes), StatusCode::CORRUPT_DATA, "not aligned");
}

GgufWriter tiny_llama() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_string("general.name", "tiny");
  w.add_u32("llama.context_length", 4096);
  w.add_u32("llama.embedding_length", 64);
  w.add_u32("llama.block_count", 2);
  w.add_u32("llama.feed_forward_length", 160);
  w.add_u32("llama.attention.head_count", 4);
  w.add_u32("llama.attention.head_count_kv", 2);
  w.add_f32("llama.rope.freq_base", 500000.0f);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_string("llama.rope.scaling.type", "llama3");
  w.add_f32("llama.rope.scaling.factor", 8.0f);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  return w;
}

TEST(GgufHyperparams, ReadsLlamaKeys) {
  auto file = GgufFile::open(write_temp_file("tiny_llama.gguf", tiny_llama().build()));
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto hp = read_gguf_hyperparams(*file);
  ASSERT_TRUE(hp.is_ok()) << hp.status().to_string();
  EXPECT_EQ(hp->architecture, "llama");
  EXPECT_EQ(hp->name, "tiny");
  EXPECT_EQ(hp->context_length, 4096);
  EXPECT_EQ(hp->embedding_length, 64);
  EXPECT_EQ(hp->block_count, 2);
  EXPECT_EQ(hp->feed_forward_length, 160);
  EXPECT_EQ(hp->head_count, 4);
  EXPECT_EQ(hp->head_count_kv, 2);
  EXPECT_EQ(hp->head_dim, 16);
  EXPECT_EQ(hp->vocab_size, 3);
  EXPECT_EQ(hp->rope_freq_base, 500000.0);
  EXPECT_EQ(hp->rope_scaling_type, "llama3");
  EXPECT_EQ(hp->rope_scaling_factor, 8.0);
  EXPECT_TRUE(hp->tied_embeddings);
  EXPECT_FALSE(hp->qkv_bias);
  EXPECT_TRUE(hp->rope_rows_interleaved);
}

TEST(GgufHyperparams, ErrorsNameTheKey) {
  GgufWriter missing = tiny_llama();
  GgufWriter qwen3;
  qwen3.add_string("general.architecture", "qwen3");
  auto file = GgufFile::open(write_temp_file("qwen3.gguf", qwen3.build()));
  ASSERT_TRUE(file.is_ok());
  expect_error(read_gguf_hyperparams(*file).status(), StatusCode::UNSUPPORTED, "'qwen3'");

  GgufWriter no_layers;
  no_layers.add_string("general.architecture", "qwen2");
  no_layers.add_u32("qwen2.context_length", 32768);
  file = GgufFile::open(write_temp_file("no_layers.gguf", no_layers.build()));
  ASSERT_TRUE(file.is_ok());
  expect_error(read_gguf_hyperparams(*file).status(), StatusCode::CORRUPT_DATA, "qwen2.embedding_length");

  GgufWriter bad_heads = tiny_llama();
  bad_heads.add_u32("llama.attention.head_count_kv", 3);
  file = GgufFile::open(write_temp_file("bad_heads.gguf", bad_heads.build()));
  ASSERT_FALSE(file.is_ok());  // the key appears twice
}

TEST(GgufHyperparams, UnpermuteRopeRows) {
  // Two heads of dim 4, one column: GGUF rows per head are [x0, y0, x1, y1] (pairs); HF order is [x0, x1, y0,
  // y1].
  auto t = Tensor::empty(DType::F32, Shape{8, 1});
  ASSERT_TRUE(t.is_ok());
  const float gguf_rows[8] = {0, 10, 1, 11, 20, 30, 21, 31};
  for (int i = 0; i < 8; ++i) t->set(i, gguf_rows[i]);
  ASSERT_TRUE(unpermute_rope_rows(*t, 2).is_ok());
  const float hf_rows[8] = {0, 1, 10, 11, 20, 21, 30, 31};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(t->get(i), hf_rows[i]) << i;
  EXPECT_EQ(unpermute_rope_rows(*t, 3).code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sacc
