// Broken checkpoints and impossible requests fail with a clear Status (in process) and a non-zero exit with a
// message (through the sacc binary), never a crash.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/hf_checkpoint.h"
#include "model/model_loader.h"
#include "runtime/tiny_model.h"

namespace sacc {
namespace {
namespace fs = std::filesystem;

struct Dir {
  std::string path = test::make_temp_dir("err");
  ~Dir() { fs::remove_all(path); }
};

Status load_weights(const std::string& dir) {
  Result<HfCheckpoint> ckpt = HfCheckpoint::open(dir, false);
  if (!ckpt) return ckpt.status();
  Result<LlamaWeights> w = ckpt->weights();
  return w ? Status::ok() : w.status();
}

void expect_error(const Status& s, StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.to_string();
}

TEST(LoadErrors, MissingTensorIsNamed) {
  Dir d;
  test::TinyWeights w = test::make_tiny_weights({});
  w.tensors.erase("model.layers.1.mlp.up_proj.weight");
  test::write_hf_dir(w, d.path);
  expect_error(load_weights(d.path), StatusCode::NOT_FOUND, "model.layers.1.mlp.up_proj.weight");
}

TEST(LoadErrors, WrongShapeIsNamedWithExpectedShape) {
  Dir d;
  test::TinyWeights w = test::make_tiny_weights({});
  auto& shape = w.shapes["model.layers.0.self_attn.k_proj.weight"];
  std::swap(shape[0], shape[1]);
  test::write_hf_dir(w, d.path);
  expect_error(load_weights(d.path), StatusCode::CORRUPT_DATA,
               "model.layers.0.self_attn.k_proj.weight: shape");
}

TEST(LoadErrors, IntegerDtypeIsRejected) {
  Dir d;
  test::TinyWeights w = test::make_tiny_weights({});
  w.dtypes["model.norm.weight"] = "I32";
  test::write_hf_dir(w, d.path);
  expect_error(load_weights(d.path), StatusCode::CORRUPT_DATA, "not a float type");
}

TEST(LoadErrors, TruncatedSafetensors) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path);
  const fs::path file = fs::path(d.path) / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 1000);
  const Status s = load_weights(d.path);
  EXPECT_EQ(s.code(), StatusCode::CORRUPT_DATA) << s.to_string();
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << s.to_string();
}

TEST(LoadErrors, GarbageHeader) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path);
  std::ofstream(fs::path(d.path) / "model.safetensors", std::ios::binary)
      << "\x10\0\0\0\0\0\0\0{not json at all";
  EXPECT_FALSE(load_weights(d.path).is_ok());
}

TEST(LoadErrors, ShardListedInIndexButMissing) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path, 2);
  fs::remove(fs::path(d.path) / "model-00002-of-00002.safetensors");
  expect_error(load_weights(d.path), StatusCode::NOT_FOUND, "model-00002-of-00002.safetensors");
}

TEST(LoadErrors, BadConfig) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path);
  std::ofstream(fs::path(d.path) / "config.json") << R"({"model_type": "llama", "hidden_size": 48})";
  expect_error(load_weights(d.path), StatusCode::CORRUPT_DATA, "num_hidden_layers");
  std::ofstream(fs::path(d.path) / "config.json") << R"({"model_type": "gpt_neox"})";
  expect_error(load_weights(d.path), StatusCode::UNSUPPORTED, "gpt_neox");
  fs::remove(fs::path(d.path) / "config.json");
  expect_error(load_weights(d.path), StatusCode::NOT_FOUND, "config.json");
}

TEST(LoadErrors, UnknownModelSpec) {
  expect_error(load_model_config("random:llama-9").status(), StatusCode::INVALID_ARGUMENT, "llama-3.1-8b");
  expect_error(load_model_config("/nonexistent/model").status(), StatusCode::NOT_FOUND, "random:<name>");
}

// ---- through the sacc binary
struct Outcome {
  int exit_code;
  std::string output;
};

Outcome sacc(const std::string& args) {
  const std::string command = std::string(SACC_SACC_BINARY) + " -q " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(CliErrors, TruncatedCheckpoint) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path);
  const fs::path file = fs::path(d.path) / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) / 2);
  const Outcome o = sacc("generate --device cpu -m " + d.path + " -p hi -n 2");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("error:"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("model.safetensors"), std::string::npos) << o.output;
}

TEST(CliErrors, PromptLongerThanContext) {
  Dir d;
  test::TinySpec spec;
  spec.max_context = 64;
  test::write_hf_dir(test::make_tiny_weights(spec), d.path);
  const Outcome o = sacc("generate --device cpu -m " + d.path + " --prompt-tokens 60 -n 10");
  EXPECT_EQ(o.exit_code, 2) << o.output;
  EXPECT_NE(o.output.find("exceed the model's context of 64 tokens"), std::string::npos) << o.output;
}

TEST(CliErrors, PromptLargerThanMemory) {
  const Outcome o =
      sacc("generate --device cpu -m random:llama-3.2-1b --prompt-tokens 100000 -n 1 --budget 2GiB");
  EXPECT_EQ(o.exit_code, 3) << o.output;
  EXPECT_NE(o.output.find("short by"), std::string::npos) << o.output;
  const Outcome info = sacc("info --device cpu -m random:llama-3.2-1b --ctx 100000 --budget 2GiB");
  EXPECT_EQ(info.exit_code, 3) << info.output;
  EXPECT_NE(info.output.find("does NOT fit"), std::string::npos) << info.output;
}

TEST(CliErrors, GeneratesFromTinyCheckpoint) {
  Dir d;
  test::write_hf_dir(test::make_tiny_weights({}), d.path);
  const Outcome o = sacc("generate --device cpu -m " + d.path + " -p abc -n 3 --json");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("\"prompt_tokens\":4"), std::string::npos) << o.output;  // BOS + 3 bytes
}

}  // namespace
}  // namespace sacc
