// `sacc attention --device cuda` as a user runs it: the binary on a file this test writes, its output against
// the CPU run of the same command (`--device cpu`, the fp64 oracle), its dumped index against the CPU one,
// and the CUDA-only refusals. Skips where no GPU is visible.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "attention/cost_model.h"
#include "cli/run_sacc.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "core/safetensors.h"
#include "reference/sparse_attention.h"
#include "reference/synthetic.h"

namespace sacc {
namespace {

// tests/gpu/test_flash_attention.cpp's budget for the GPU against fp64: P and O each rounded to bf16 once
// (relative rms 2^-8 / sqrt(3)), twice that pair, as a relative L2 error per head.
const double kBf16Rounding = std::ldexp(1.0, -8) / std::sqrt(3.0);
const double kOTolerance = 2.0 * std::sqrt(2.0) * kBf16Rounding;
// The CPU run's O is the fp64 result rounded to bf16 once more: against it the GPU may be off by both
// (triangle inequality), with the second rounding given the same factor 2.
const double kOAgainstCpuFileTolerance = kOTolerance + 2.0 * kBf16Rounding;
constexpr double kLseTolerance = 2e-3;  // fp32 LSE: |lse - lse_ref| <= tol * (1 + |lse_ref|)

// What `sacc attention --out F --dump-index` wrote, read back.
struct FileOutput {
  AttentionShape shape;
  std::vector<uint16_t> o;  // [L, Hq, d] bf16 bits
  std::vector<float> lse;   // [Hq, L]
  SparseIndex index;
  std::string producer;
};

FileOutput read_output(const std::string& path, const AttentionShape& shape) {
  FileOutput out;
  out.shape = shape;
  Result<SafetensorsFile> file = SafetensorsFile::open(path);
  EXPECT_TRUE(file.is_ok()) << file.status().to_string();
  if (!file.is_ok()) return out;
  auto copy = [&](const char* name, auto& into) {
    Result<TensorView> view = file->tensor(name);
    EXPECT_TRUE(view.is_ok()) << name;
    if (!view.is_ok()) return;
    using T = typename std::remove_reference_t<decltype(into)>::value_type;
    into.assign(view->as<T>(), view->as<T>() + view->numel());
  };
  copy("o", out.o);
  copy("lse", out.lse);
  copy("index.block_offsets", out.index.block_offsets);
  copy("index.block_ids", out.index.block_ids);
  copy("index.column_offsets", out.index.column_offsets);
  copy("index.column_ids", out.index.column_ids);
  const auto& metadata = file->metadata();
  out.producer = metadata.count("producer") ? metadata.at("producer") : "";
  IndexGeometry& g = out.index.geometry;
  g.seq_len = shape.seq_len;
  g.num_heads = std::stoi(metadata.at("index.num_heads"));
  g.block_q = std::stoi(metadata.at("index.block_q"));
  g.block_k = std::stoi(metadata.at("index.block_k"));
  g.shared_per_kv_group = metadata.at("index.shared_per_kv_group") == "true";
  EXPECT_EQ(out.o.size(), static_cast<size_t>(shape.seq_len * shape.num_q_heads * shape.head_dim));
  EXPECT_EQ(out.lse.size(), static_cast<size_t>(shape.seq_len * shape.num_q_heads));
  return out;
}

// Per-head relative L2 error of `got` against `want` (bf16 or fp64 values) and the LSE rule; NaN never
// passes.
template <typename Want>
void expect_close(const FileOutput& got, const std::vector<Want>& want_o, const std::vector<float>& want_lse,
                  double o_tolerance, const std::string& what) {
  const AttentionShape& s = got.shape;
  ASSERT_EQ(got.o.size(), want_o.size()) << what;
  for (int h = 0; h < s.num_q_heads; ++h) {
    double error = 0.0, norm = 0.0;
    for (int64_t i = 0; i < s.seq_len; ++i) {
      for (int c = 0; c < s.head_dim; ++c) {
        const size_t at = (static_cast<size_t>(i) * s.num_q_heads + h) * s.head_dim + c;
        const double g = bf16_to_float(got.o[at]);
        double w = 0.0;
        if constexpr (std::is_same_v<Want, uint16_t>) {
          w = bf16_to_float(want_o[at]);
        } else {
          w = want_o[at];
        }
        ASSERT_FALSE(std::isnan(g)) << what << ": O[" << i << ", " << h << ", " << c << "]";
        error += (g - w) * (g - w);
        norm += w * w;
      }
    }
    EXPECT_LE(std::sqrt(error / std::max(norm, 1e-30)), o_tolerance) << what << ": head " << h;
  }
  ASSERT_EQ(got.lse.size(), want_lse.size()) << what;
  for (size_t n = 0; n < want_lse.size(); ++n) {
    const double w = want_lse[n], g = got.lse[n];
    if (std::isinf(w)) {
      ASSERT_TRUE(std::isinf(g) && g < 0) << what << ": LSE[" << n << "] = " << g;
    } else {
      ASSERT_LE(std::abs(g - w), kLseTolerance * (1.0 + std::abs(w))) << what << ": LSE[" << n << "]";
    }
  }
}

bool same_index(const SparseIndex& a, const SparseIndex& b) {
  return a.block_offsets == b.block_offsets && a.block_ids == b.block_ids &&
         a.column_offsets == b.column_offsets && a.column_ids == b.column_ids;
}

class AttentionCliCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("sacc_cli_cuda_{}_{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A structured input (sinks, verticals, slashes, local band: few ties for the estimators) written as BF16;
  // the oracle view of the same values stays in `input_`.
  std::string write_qkv(const AttentionShape& shape, DType dtype = DType::BF16) {
    ref::SyntheticConfig config;
    config.shape = shape;
    config.seed = 5;
    Result<ref::SyntheticInput> input = ref::make_synthetic_input(config);
    EXPECT_TRUE(input.is_ok()) << input.status().to_string();
    input_ = std::move(input).value();
    auto make = [&](const std::vector<float>& values, int heads) {
      Tensor t = Tensor::zeros(dtype, {shape.seq_len, heads, shape.head_dim}).value();
      for (int64_t n = 0; n < t.numel(); ++n) t.set(n, values[n]);
      return t;
    };
    const Tensor q = make(input_.qkv.q, shape.num_q_heads), k = make(input_.qkv.k, shape.num_kv_heads),
                 v = make(input_.qkv.v, shape.num_kv_heads);
    const std::string file = path("qkv.safetensors");
    EXPECT_TRUE(write_safetensors(file, {{"q", q.view()}, {"k", k.view()}, {"v", v.view()}}).is_ok());
    return file;
  }

  void expect_failure(const std::string& arguments, const std::string& message_piece) {
    const test::SaccRun run = test::run_sacc_binary(arguments);
    EXPECT_GT(run.exit_code, 0) << arguments << "\n" << run.output;
    EXPECT_NE(run.output.find(message_piece), std::string::npos)
        << arguments << "\nexpected '" << message_piece << "' in:\n"
        << run.output;
  }

  std::filesystem::path dir_;
  ref::SyntheticInput input_;
};

// The acceptance check: the same command on both devices. Triangular and dense indices are deterministic and
// must be equal; the estimated patterns may break ties differently (then the density agrees within 1% and
// the CUDA output is checked against the oracle on the CUDA index instead).
TEST_F(AttentionCliCuda, MatchesTheCpuRunOfTheSameCommand) {
  for (int d : {128, 64}) {
    const AttentionShape shape{1000, 8, 2, d};
    const std::string in = write_qkv(shape);
    struct Case {
      std::string pattern, flags;
      bool deterministic;
    };
    const Case cases[] = {
        {"dense", "", true},
        {"triangular:64,200", "", true},
        {"interval-slash:100,60", "", false},
        {"block-cluster:4", "", false},
        {"interval-slash:200,100@0.9", "--shared", false},
        {"block-cluster:6@0.9", "--shared", false},
    };
    for (const Case& c : cases) {
      SCOPED_TRACE(fmt::format("d={} {} {}", d, c.pattern, c.flags));
      const std::string common =
          fmt::format("attention --in {} --pattern {} --dump-index {}", in, c.pattern, c.flags);
      const test::SaccRun cuda =
          test::run_sacc_binary(common + " --device cuda --compare --out " + path("cuda.safetensors"));
      ASSERT_EQ(cuda.exit_code, 0) << cuda.output;
      EXPECT_NE(cuda.output.find("not a benchmark"), std::string::npos) << cuda.output;
      EXPECT_NE(cuda.output.find("against the CPU oracle on the same index"), std::string::npos)
          << cuda.output;
      const test::SaccRun cpu =
          test::run_sacc_binary(common + " --device cpu --out " + path("cpu.safetensors"));
      ASSERT_EQ(cpu.exit_code, 0) << cpu.output;

      const FileOutput gpu_out = read_output(path("cuda.safetensors"), shape);
      const FileOutput cpu_out = read_output(path("cpu.safetensors"), shape);
      EXPECT_EQ(gpu_out.producer, "sacc attention (CUDA)");
      ASSERT_TRUE(gpu_out.index.validate().is_ok()) << gpu_out.index.validate().to_string();
      const bool equal = same_index(gpu_out.index, cpu_out.index);
      if (c.deterministic) {
        EXPECT_TRUE(equal) << "the dumped CUDA index differs from the CPU one";
      }
      if (equal) {
        expect_close(gpu_out, cpu_out.o, cpu_out.lse, kOAgainstCpuFileTolerance, "CUDA vs CPU file");
      } else {
        const double gpu_density = index_cost(gpu_out.index, d).density();
        const double cpu_density = index_cost(cpu_out.index, d).density();
        EXPECT_NEAR(gpu_density, cpu_density, 0.01 * cpu_density);
        Result<ref::AttentionResult> want = ref::sparse_attention(input_.qkv.view(), gpu_out.index);
        ASSERT_TRUE(want.is_ok()) << want.status().to_string();
        std::vector<float> want_lse(want->lse.begin(), want->lse.end());
        expect_close(gpu_out, want->o, want_lse, kOTolerance, "CUDA vs oracle on the CUDA index");
      }
    }
  }
}

// F32 input is rounded to bf16 for the GPU; --compare checks against the oracle on those rounded values.
TEST_F(AttentionCliCuda, F32InputAndOversizedBudgets) {
  const std::string in = write_qkv({333, 4, 1, 64}, DType::F32);
  const test::SaccRun run =
      test::run_sacc_binary("attention --device cuda --compare --in " + in + " --pattern block-cluster:3");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  expect_failure("attention --device cuda --in " + in + " --pattern interval-slash:1000,10",
                 "budget larger than the sequence");
  expect_failure("attention --device cuda --in " + in + " --pattern block-cluster:100", "only 6");
  const test::SaccRun clamped = test::run_sacc_binary(
      "attention --device cuda --clamp-budgets --compare --in " + in + " --pattern interval-slash:1000,1000");
  EXPECT_EQ(clamped.exit_code, 0) << clamped.output;
}

TEST_F(AttentionCliCuda, DemoRunsEveryPatternOnTheGpu) {
  const test::SaccRun run =
      test::run_sacc_binary("attention --demo --device cuda --len 700 --heads 4 --kv-heads 2 --head-dim 64");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* piece : {"| dense", "| triangular:", "| interval-slash:", "| block-cluster:", "@0.9",
                            "oracle err", "not a benchmark"}) {
    EXPECT_NE(run.output.find(piece), std::string::npos) << piece << "\n" << run.output;
  }
}

TEST_F(AttentionCliCuda, RefusesWhatTheKernelsDoNotSupport) {
  const std::string in = write_qkv({200, 2, 1, 32});
  expect_failure("attention --device cuda --in " + in, "head dim 64 or 128");
  const std::string in64 = write_qkv({200, 2, 1, 64});
  expect_failure("attention --device cuda --block-q 64 --pattern block-cluster:2 --in " + in64, "Bq=128");
  expect_failure("attention --device cuda:" + std::to_string(cuda_device_count()) + " --in " + in64,
                 "CUDA device(s) visible");
}

}  // namespace
}  // namespace sacc
