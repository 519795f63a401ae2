// Encoding with an EncodeMemo (a server's repeated document) gives exactly what a fresh encode() gives: a new
// question after the same text, an edit in the middle, an added token's text appearing right at the
// difference, a shorter text, the same text; on the Llama-3 tokenizer (shared/data) and the real GGUF models'
// tokenizers when present (SmolLM2's two-stage pre-tokenizer reuses nothing, Qwen's and Llama-3's the
// document).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/tokenizer.h"

namespace sacc {
namespace {

const std::string kModelsDir = std::string(SACC_SOURCE_DIR) + "/.models/";

// Prose with punctuation, digits, runs of spaces and newlines, and non-ASCII letters.
std::string document(size_t paragraphs) {
  const char* sentences[] = {"The hacker's dictionary lists 1,024 words; most   are jokes.\n",
                             "Naïve users type 'rm -rf /' at 3am — and regret it.\n\n",
                             "  Indented code: for (int i = 0; i < 10; ++i) { x += i; }\n",
                             "Émile read 42 pages, then 7 more...\t(tab) done.\n"};
  std::string text;
  for (size_t i = 0; i < paragraphs; ++i) text += sentences[i % 4];
  return text;
}

void expect_memo_matches(const Tokenizer& tok, const std::string& special) {
  EncodeMemo memo;
  const std::string doc = document(200);
  const std::vector<std::string> texts = {
      doc + "Question: what is 7 * 6?",
      doc + "Question: who wrote it?",  // a new question: most of the document reused
      doc + "Question: who wrote it?",  // the same text
      doc.substr(0, doc.size() / 2),    // a prefix of the previous text
      doc.substr(0, 5000) + "EDIT" + doc.substr(5004),
      doc.substr(0, 3000) + special + doc.substr(3000),  // an added token at the difference
      doc.substr(0, 3000) + special.substr(0, special.size() - 1) + " tail",  // its first bytes only
      doc + "Question: who wrote it?",
  };
  for (bool bos : {false, true}) {
    for (size_t i = 0; i < texts.size(); ++i) {
      SCOPED_TRACE(testing::Message() << "text " << i << (bos ? " with BOS" : ""));
      const std::vector<int32_t> fresh = tok.encode(texts[i], bos);
      EXPECT_EQ(tok.encode(texts[i], bos, memo), fresh);
      if (!tok.reuses_prefixes()) {
        EXPECT_EQ(memo.reused_tokens(), 0u);
      } else if (i == 1) {
        EXPECT_GT(memo.reused_tokens(), fresh.size() * 9 / 10);
      } else if (i == 2) {
        EXPECT_EQ(memo.reused_tokens(), fresh.size());
      }
    }
  }
  // Random edits of the previous text at random places.
  std::mt19937 gen(5);
  std::string text = doc;
  for (int round = 0; round < 40; ++round) {
    const size_t at = std::uniform_int_distribution<size_t>(0, text.size())(gen);
    const std::string inserts[] = {" ", "\n", "x", "12", special, "é", "  \n\n"};
    text.insert(at, inserts[round % 7]);
    SCOPED_TRACE(testing::Message() << "round " << round << " at " << at);
    ASSERT_EQ(tok.encode(text, false, memo), tok.encode(text, false));
  }
}

TEST(TokenizerMemo, Llama3MatchesAFreshEncode) {
  auto loaded = Tokenizer::from_hf_json(std::string(SACC_SHARED_DATA_DIR) + "/llama3-tokenizer");
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  expect_memo_matches(*loaded, "<|eot_id|>");
}

TEST(TokenizerMemo, RealModelsMatchAFreshEncode) {
  int tested = 0;
  for (const auto& [name, special] :
       {std::pair<std::string, std::string>{"SmolLM2-135M-Instruct.Q4_1.gguf", "<|im_end|>"},
        {"Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", "<|im_end|>"}}) {
    auto file = GgufFile::open(kModelsDir + name);
    if (!file) continue;
    auto tok = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tok.is_ok()) << name << ": " << tok.status().to_string();
    SCOPED_TRACE(name);
    expect_memo_matches(*tok, special);
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "no model in " << kModelsDir << " (run scripts/fetch_models.sh)";
}

}  // namespace
}  // namespace sacc
