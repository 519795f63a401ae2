// `sacc attention` as a user runs it: the binary on files a test writes, its output against the oracle, and
// bad input that must end in a clear message and a non-zero exit, never a crash.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/device_info.h"
#include "core/safetensors.h"
#include "reference/build_index.h"
#include "reference/sparse_attention.h"

namespace sacc {
namespace {

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string output;  // stdout and stderr
};

RunResult run_sacc(const std::string& arguments) {
  const std::string command = std::string(SACC_SACC_BINARY) + " " + arguments + " 2>&1";
  RunResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

class AttentionCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("sacc_cli_{}_{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes q [L, hq, d], k and v [kv_len, hkv, d] of `dtype` with random values; returns the path.
  std::string write_qkv(const std::string& name, int64_t seq_len, int hq, int hkv, int d,
                        DType dtype = DType::BF16, int64_t kv_len = -1, DType k_dtype = DType::BF16) {
    if (kv_len < 0) kv_len = seq_len;
    std::mt19937 rng(static_cast<uint32_t>(seq_len * 31 + hq));
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    auto make = [&](DType type, int64_t len, int heads) {
      Tensor t = Tensor::zeros(type, {len, heads, d}).value();
      for (int64_t n = 0; n < t.numel(); ++n) t.set(n, uniform(rng));
      return t;
    };
    tensors_.push_back(make(dtype, seq_len, hq));
    tensors_.push_back(make(k_dtype == DType::BF16 ? dtype : k_dtype, kv_len, hkv));
    tensors_.push_back(make(dtype, kv_len, hkv));
    const size_t n = tensors_.size();
    EXPECT_TRUE(write_safetensors(path(name), {{"q", tensors_[n - 3].view()},
                                               {"k", tensors_[n - 2].view()},
                                               {"v", tensors_[n - 1].view()}})
                    .is_ok());
    return path(name);
  }

  void expect_failure(const std::string& arguments, const std::string& message_piece) {
    const RunResult run = run_sacc(arguments);
    EXPECT_GT(run.exit_code, 0) << arguments << "\n" << run.output;  // not 0, not a signal
    EXPECT_NE(run.output.find(message_piece), std::string::npos)
        << arguments << "\nexpected '" << message_piece << "' in:\n"
        << run.output;
  }

  std::filesystem::path dir_;
  std::vector<Tensor> tensors_;
};

TEST_F(AttentionCli, HelpExplainsEveryOption) {
  const RunResult run = run_sacc("attention --help");
  EXPECT_EQ(run.exit_code, 0);
  for (const char* option : {"--demo",
                             "--in",
                             "--out",
                             "--pattern",
                             "--dump-index",
                             "--compare",
                             "--device",
                             "--scale",
                             "--block-q",
                             "--block-k",
                             "--last-queries",
                             "--sink-keys",
                             "--local-diagonals",
                             "--shared",
                             "--clamp-budgets",
                             "--len",
                             "--heads",
                             "--kv-heads",
                             "--head-dim",
                             "--seed",
                             "interval-slash:KV,KS",
                             "@GAMMA"}) {
    EXPECT_NE(run.output.find(option), std::string::npos) << option;
  }
}

TEST_F(AttentionCli, DemoPrintsATableOfEveryPattern) {
  const RunResult run = run_sacc("attention --demo --len 500 --heads 4 --kv-heads 2 --head-dim 32");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* piece : {"| dense", "| triangular:", "| interval-slash:", "| block-cluster:", "@0.9",
                            "density", "recall", "rel.err"}) {
    EXPECT_NE(run.output.find(piece), std::string::npos) << piece << "\n" << run.output;
  }
}

// The acceptance round trip: a file written here, run through the binary, read back and compared with the
// oracle computed in-process on the same values (bit-exact: same code, same inputs; o is rounded to bf16
// once).
TEST_F(AttentionCli, RoundTripMatchesTheOracle) {
  struct Case {
    std::string pattern, flags;
    DType dtype;
    bool shared;
    int block_q, block_k;
  };
  const Case cases[] = {
      {"interval-slash:40,30", "", DType::BF16, false, 128, 64},
      {"block-cluster:3@0.9", "--shared --block-q 64 --block-k 128", DType::F32, true, 64, 128},
      {"triangular:5,50", "--block-q 64 --block-k 64", DType::F16, false, 64, 64},
      {"dense", "", DType::BF16, false, 128, 64},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pattern);
    const std::string in = write_qkv("qkv.safetensors", 333, 6, 2, 64, c.dtype);
    const std::string out = path("o.safetensors");
    const RunResult run = run_sacc(
        fmt::format("attention --in {} --pattern {} --out {} --dump-index {}", in, c.pattern, out, c.flags));
    ASSERT_EQ(run.exit_code, 0) << run.output;

    const SafetensorsFile input = SafetensorsFile::open(in).value();
    const ref::HostQkv qkv =
        ref::qkv_from_tensors(input.tensor("q").value(), input.tensor("k").value(), input.tensor("v").value())
            .value();
    const IndexGeometry geometry{333, c.shared ? 2 : 6, c.block_q, c.block_k, c.shared};
    const SparseIndex index =
        ref::build_index(qkv.view(), {parse_pattern(c.pattern).value()}, EstimationConfig{}, geometry)
            .value();
    const ref::AttentionResult expected = ref::sparse_attention(qkv.view(), index).value();

    const SafetensorsFile output = SafetensorsFile::open(out).value();
    const TensorView o = output.tensor("o").value();
    const TensorView lse = output.tensor("lse").value();
    ASSERT_EQ(o.dtype, DType::BF16);
    ASSERT_EQ(o.shape, (Shape{333, 6, 64}));
    ASSERT_EQ(lse.dtype, DType::F32);
    ASSERT_EQ(lse.shape, (Shape{6, 333}));
    for (int64_t n = 0; n < o.numel(); ++n) {
      ASSERT_EQ(o.as<uint16_t>()[n], float_to_bf16(static_cast<float>(expected.o[n]))) << n;
    }
    for (int64_t n = 0; n < lse.numel(); ++n)
      ASSERT_EQ(lse.as<float>()[n], static_cast<float>(expected.lse[n]));
    auto ids = [&](const char* name) {
      const TensorView view = output.tensor(name).value();
      return std::vector<int32_t>(view.as<int32_t>(), view.as<int32_t>() + view.numel());
    };
    EXPECT_EQ(ids("index.block_offsets"), index.block_offsets);
    EXPECT_EQ(ids("index.block_ids"), index.block_ids);
    EXPECT_EQ(ids("index.column_offsets"), index.column_offsets);
    EXPECT_EQ(ids("index.column_ids"), index.column_ids);
    EXPECT_EQ(output.metadata().at("index.block_q"), std::to_string(c.block_q));
  }
}

TEST_F(AttentionCli, CompareReportsRecallAndError) {
  const std::string in = write_qkv("qkv.safetensors", 200, 2, 1, 32);
  const RunResult run = run_sacc("attention --in " + in + " --pattern triangular:4,40 --compare");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("attention recall"), std::string::npos) << run.output;
}

TEST_F(AttentionCli, BadPatternsAndBudgets) {
  const std::string in = write_qkv("qkv.safetensors", 333, 2, 1, 32);
  expect_failure("attention --in " + in + " --pattern zigzag:3", "unknown pattern");
  expect_failure("attention --in " + in + " --pattern interval-slash:1000,10",
                 "budget larger than the sequence");
  expect_failure("attention --in " + in + " --pattern interval-slash:10,334", "L = 333");
  expect_failure("attention --in " + in + " --pattern block-cluster:100", "only 6");
  expect_failure("attention --in " + in + " --pattern interval-slash:10", "takes 2 number");
  expect_failure("attention --in " + in + " --pattern block-cluster:4@1.5", "(0, 1]");
  expect_failure("attention --in " + in + " --pattern dense --pattern dense", "takes one");
  // Clamped, the oversized budgets are served.
  EXPECT_EQ(
      run_sacc("attention --clamp-budgets --in " + in + " --pattern interval-slash:1000,1000").exit_code, 0);
}

TEST_F(AttentionCli, BadTensors) {
  expect_failure("attention --in " + write_qkv("zero_heads", 10, 0, 0, 8), "need >= 1");
  expect_failure("attention --in " + write_qkv("short_kv", 10, 2, 1, 8, DType::BF16, 9),
                 "expected [10, 1, 8]");
  expect_failure("attention --in " + write_qkv("groups", 10, 3, 2, 8), "multiple");
  expect_failure("attention --in " + write_qkv("ints", 10, 2, 1, 8, DType::BF16, -1, DType::I32),
                 "dtype I32");
  Tensor q = Tensor::zeros(DType::F32, {4, 1, 8}).value();
  ASSERT_TRUE(write_safetensors(path("no_v"), {{"q", q.view()}, {"k", q.view()}}).is_ok());
  expect_failure("attention --in " + path("no_v"), "no tensor 'v'");
}

TEST_F(AttentionCli, BrokenFiles) {
  const std::string in = write_qkv("qkv.safetensors", 64, 2, 1, 16);
  std::filesystem::copy_file(in, path("cut"));
  std::filesystem::resize_file(path("cut"), std::filesystem::file_size(in) - 10);
  expect_failure("attention --in " + path("cut"), "truncated");
  std::filesystem::copy_file(in, path("short_header"));
  std::filesystem::resize_file(path("short_header"), 30);
  expect_failure("attention --in " + path("short_header"), "truncated");
  {
    std::ofstream garbage(path("garbage"), std::ios::binary);
    garbage.write("\x10\0\0\0\0\0\0\0", 8);                 // a 16-byte header ...
    garbage << "not json at all!" << std::string(32, 'x');  // ... that is not JSON
  }
  expect_failure("attention --in " + path("garbage"), "JSON");
  expect_failure("attention --in " + path("does_not_exist"), "cannot open");
}

TEST_F(AttentionCli, BadOptions) {
  expect_failure("attention", "nothing to do");
  expect_failure("attention --demo --len 100 --heads 8 --kv-heads 3", "multiple");
  expect_failure("attention --demo --len 100 --head-dim 33", "even");
  expect_failure("attention --in x --block-q 0", "block-q");
  const std::string in = write_qkv("qkv.safetensors", 16, 1, 1, 8);
  expect_failure("attention --in " + in + " --device cuda", "--device cpu");
  expect_failure("attention --in " + in + " --device tpu", "unknown device");
  expect_failure("attention --in " + in + " --out " + path("no/such/dir/o.safetensors"), "o.safetensors");
}

// --device cuda where it cannot run: a message that says what to do and a non-zero exit, for file runs and
// the demo. The test binary and sacc come from the same configuration, so the test knows which case applies.
TEST_F(AttentionCli, CudaDeviceWithoutCudaOrGpu) {
  const std::string in = write_qkv("qkv.safetensors", 64, 2, 1, 64);
  expect_failure("attention --demo --device tpu --len 100", "unknown device");
  if (!built_with_cuda()) {
    expect_failure("attention --device cuda --in " + in,
                   "this sacc was built without CUDA; use --device cpu");
    expect_failure("attention --device cuda:1 --demo --len 100", "this sacc was built without CUDA");
  } else if (cuda_device_count() == 0) {
    expect_failure("attention --device cuda --in " + in, "no CUDA device is visible");
    expect_failure("attention --device cuda:1 --demo --len 100", "no CUDA device is visible");
  } else {
    GTEST_SKIP() << "a GPU is visible: tests/gpu/test_attention_cli_cuda.cpp covers --device cuda";
  }
}

}  // namespace
}  // namespace sacc
