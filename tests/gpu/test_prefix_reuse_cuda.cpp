// Prefix KV reuse on the CUDA backend (Backend::export_kv / import_kv / extend): a restored prefix plus the
// suffix gives the logits of a fresh prefill of the whole prompt, and decoding continues the same.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "core/device_info.h"
#include "model/llama_weights.h"
#include "runtime/backend.h"
#include "tiny_cuda_models.h"

namespace sacc {
namespace {

// A restored prefix of `reuse` tokens and a prompt of `length` tokens. The suffix's attention takes one dense
// flash launch when reuse is a multiple of the kernel's query tile and the suffix has more than one row
// (DeviceShard::run_attention), else the decode kernel row by row.
struct ReuseCase {
  const char* name;
  int64_t reuse;
  int length;
};

const ReuseCase kReuses[] = {
    {"flash_suffix_in_one_block", 256, 337},  // rows 256..336: one partial query block
    {"flash_suffix_of_three_blocks", 256, 600}, {"flash_suffix_of_two_rows", 256, 258},
    {"decode_rows_off_the_tile", 200, 337},     {"decode_one_row", 256, 257},
};

class PrefixReuseCuda : public ::testing::TestWithParam<std::tuple<bool, ReuseCase>> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

std::vector<int32_t> with_suffix(std::vector<int32_t> prefix, int length, int salt) {
  for (int i = 0; i < length; ++i) prefix.push_back((i * 53 + salt) % 1000);
  return prefix;
}

// The fresh prefill and the reused run compute the suffix rows' Q/K/V in GEMMs of different row counts (and
// off the tile, their attention in the decode kernel), over the same bf16 K/V: the logits differ by bf16
// rounding (~2^-9 relative per element, a few ulps after 3 layers), far under what a wrong position or mask
// would move them.
TEST_P(PrefixReuseCuda, RestoredPrefixPlusSuffixMatchesAFreshPrefill) {
  const auto& [qwen, c] = GetParam();
  const LlamaWeights w = llama_weights_random(test::tiny_cuda_config(qwen, 3), 42);
  BackendOptions options;
  options.device = Device::cuda(0);
  options.attention = AttentionMode::DENSE;
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> made = make_cuda_backend(w, options);
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  Backend& b = **made;
  const std::vector<int32_t> doc = test::fixed_prompt(300, 1000);
  std::vector<int32_t> a = with_suffix(doc, 21, 1), q = with_suffix(doc, 300, 2);
  q.resize(c.length);
  ASSERT_LE(c.reuse, 300);  // a and q share the document's tokens
  constexpr int64_t kCapacity = 640;

  std::vector<float> logits, fresh, reused, fresh_step, reused_step;
  ASSERT_TRUE(b.reserve(kCapacity).is_ok());
  ASSERT_TRUE(b.prefill(a, logits).is_ok());
  Result<std::unique_ptr<KvSnapshot>> snapshot = b.export_kv(c.reuse);
  ASSERT_TRUE(snapshot.is_ok()) << snapshot.status().to_string();
  EXPECT_EQ((*snapshot)->bytes(), 2ull * 3 * c.reuse * w.config.kv_dim() * 2);

  ASSERT_TRUE(b.reserve(kCapacity).is_ok());
  ASSERT_TRUE(b.prefill(q, fresh).is_ok());
  ASSERT_TRUE(b.decode(5, fresh_step).is_ok());

  ASSERT_TRUE(b.reserve(kCapacity).is_ok());
  ASSERT_TRUE(b.import_kv(**snapshot, c.reuse).is_ok());
  Status s = b.extend(std::span<const int32_t>(q).subspan(c.reuse), reused);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(b.position(), static_cast<int64_t>(q.size()));
  ASSERT_TRUE(b.decode(5, reused_step).is_ok());

  ASSERT_EQ(reused.size(), fresh.size());
  EXPECT_LT(test::relative_error(reused, fresh), 1e-2);
  EXPECT_LT(test::relative_error(reused_step, fresh_step), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Models, PrefixReuseCuda,
                         ::testing::Combine(::testing::Values(false, true), ::testing::ValuesIn(kReuses)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "qwen2_" : "llama3_") +
                                  std::get<1>(info.param).name;
                         });

}  // namespace
}  // namespace sacc
