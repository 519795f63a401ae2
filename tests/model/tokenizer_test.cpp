// Tokenizer pieces that the golden file does not reach: a BPE vocabulary written into a GGUF by the test
// (merge order, added tokens, ignore_merges), streaming decode of characters split across tokens, UTF-8
// repair, and the chat templates.
#include <gtest/gtest.h>

#include "model/chat_template.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "model/tokenizer_utf8.h"
#include "tests/model/gguf_writer.h"

namespace sacc {
namespace {

using testing_gguf::GgufWriter;
using testing_gguf::write_temp_file;

// A GPT-2-style vocabulary: the 256 byte tokens (spelled in the byte-level alphabet), merged tokens,
// specials.
struct TinyVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
};

std::string spell_byte(int b) {
  // Printable Latin-1 bytes spell themselves; the others move to U+0100 onward in byte order.
  static const std::vector<std::string> spelling = [] {
    std::vector<std::string> out(256);
    int next = 256;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae;
      const int cp = printable ? c : next++;
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xc0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3f));
      }
      out[c] = s;
    }
    return out;
  }();
  return spelling[b];
}

Tokenizer tiny_tokenizer(const std::string& pre, const std::string& chat_template, bool add_bos) {
  GgufWriter w;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(spell_byte(b));
    types.push_back(6);
  }
  const std::string space = spell_byte(' ');
  // Merges: "l l" first, then "h e", "he ll", "hell o", " w", ... Ids follow.
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"l", "l"},          {"h", "e"}, {"he", "ll"},          {"hell", "o"}, {space, "w"}, {"o", "r"},
      {space + "w", "or"}, {"l", "d"}, {space + "wor", "ld"}, {"a", "a"},    {"aa", "aa"}};
  std::vector<std::string> merge_texts;
  for (const auto& [a, b] : merges) {
    tokens.push_back(a + b);
    types.push_back(1);
    merge_texts.push_back(a + " " + b);
  }
  tokens.push_back("aaa");  // in the vocab but not reachable by merges: only ignore_merges produces it
  types.push_back(1);
  for (const std::string special : {"<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(special);
    types.push_back(3);
  }
  tokens.push_back("<user tag>");
  types.push_back(4);
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", pre);
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_i32_array("tokenizer.ggml.token_type", types);
  w.add_string_array("tokenizer.ggml.merges", merge_texts);
  w.add_u32("tokenizer.ggml.bos_token_id", 256 + 12);
  w.add_u32("tokenizer.ggml.eos_token_id", 256 + 13);
  w.add_bool("tokenizer.ggml.add_bos_token", add_bos);
  if (!chat_template.empty()) w.add_string("tokenizer.chat_template", chat_template);
  auto file = GgufFile::open(write_temp_file("tiny_tok_" + pre + ".gguf", w.build()));
  EXPECT_TRUE(file.is_ok()) << file.status().to_string();
  auto tokenizer = Tokenizer::from_gguf(*file);
  EXPECT_TRUE(tokenizer.is_ok()) << tokenizer.status().to_string();
  return std::move(tokenizer).value();
}

constexpr int32_t kLL = 256, kHE = 257, kHELL = 258, kHELLO = 259, kWORLD = 264, kAA = 265, kAAAA = 266,
                  kAAA = 267;
constexpr int32_t kBos = 268, kEot = 269, kImStart = 270, kImEnd = 271, kUserTag = 272;

TEST(TinyTokenizer, MergesByRank) {
  const Tokenizer t = tiny_tokenizer("gpt2", "", false);
  EXPECT_EQ(t.vocab_size(), 273);
  EXPECT_EQ(t.encode("hello world", false), (std::vector<int32_t>{kHELLO, kWORLD}));
  EXPECT_EQ(t.encode("hell", false), (std::vector<int32_t>{kHELL}));
  // "aaaaa": equal-rank pairs merge leftmost first -> aa aa a -> aaaa a.
  EXPECT_EQ(t.encode("aaaaa", false), (std::vector<int32_t>{kAAAA, 'a'}));
  EXPECT_EQ(t.encode("aaa", false), (std::vector<int32_t>{kAA, 'a'}));  // no ignore_merges for gpt2
  EXPECT_EQ(t.encode("", false), std::vector<int32_t>{});
  EXPECT_EQ(t.decode(t.encode("hello world", false)), "hello world");
}

TEST(TinyTokenizer, IgnoreMergesForLlama3) {
  const Tokenizer t = tiny_tokenizer("llama-bpe", "", true);
  EXPECT_EQ(t.pre_tokenizer_name(), "llama3");
  EXPECT_EQ(t.encode("aaa", false), (std::vector<int32_t>{kAAA}));  // whole pre-token is in the vocab
  EXPECT_EQ(t.encode("aaa", true), (std::vector<int32_t>{kBos, kAAA}));
}

TEST(TinyTokenizer, AddedTokensSplitFirst) {
  const Tokenizer t = tiny_tokenizer("gpt2", "", false);
  EXPECT_EQ(t.encode("hello<|eot_id|>hello", false), (std::vector<int32_t>{kHELLO, kEot, kHELLO}));
  EXPECT_EQ(t.encode("<|im_start|><|im_end|>", false), (std::vector<int32_t>{kImStart, kImEnd}));
  EXPECT_EQ(t.encode("x<user tag>", false), (std::vector<int32_t>{'x', kUserTag}));
  // A prefix of a special token is plain text.
  EXPECT_EQ(t.encode("<|eot", false).size(), 5u);
  EXPECT_TRUE(t.is_special(kEot));
  EXPECT_FALSE(t.is_special(kUserTag));
  // Specials are skipped when decoding by default, user-defined tokens are text.
  const std::vector<int32_t> ids = {kHELLO, kEot, kUserTag};
  EXPECT_EQ(t.decode(ids), "hello<user tag>");
  EXPECT_EQ(t.decode(ids, false), "hello<|eot_id|><user tag>");
  EXPECT_EQ(t.eos_id(), kEot);
  EXPECT_EQ(t.eot_id(), kEot);
  EXPECT_EQ(t.stop_ids(), (std::vector<int32_t>{kEot}));
}

TEST(TinyTokenizer, SmollmSplitsDigits) {
  const Tokenizer smollm = tiny_tokenizer("smollm", "", false);
  const Tokenizer gpt2 = tiny_tokenizer("gpt2", "", false);
  // Both give one byte token per digit here (no digit merges); the pieces differ, which the ids cannot show,
  // so check that digits next to letters stay separable and everything round-trips.
  EXPECT_EQ(smollm.encode("a12", false), (std::vector<int32_t>{'a', '1', '2'}));
  EXPECT_EQ(gpt2.decode(gpt2.encode("x 123 y", false)), "x 123 y");
}

TEST(TinyTokenizer, ErrorsForOtherTokenizerModels) {
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "a"});
  auto file = GgufFile::open(write_temp_file("spm.gguf", w.build()));
  ASSERT_TRUE(file.is_ok());
  auto t = Tokenizer::from_gguf(*file);
  EXPECT_EQ(t.status().code(), StatusCode::UNSUPPORTED);
  EXPECT_NE(t.status().message().find("'llama'"), std::string::npos);

  GgufWriter bad_merge;
  bad_merge.add_string("tokenizer.ggml.model", "gpt2");
  bad_merge.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
  bad_merge.add_string_array("tokenizer.ggml.merges", {"a b"});
  file = GgufFile::open(write_temp_file("bad_merge.gguf", bad_merge.build()));
  ASSERT_TRUE(file.is_ok());
  t = Tokenizer::from_gguf(*file);
  EXPECT_EQ(t.status().code(), StatusCode::CORRUPT_DATA);
  EXPECT_NE(t.status().message().find("merges[0]"), std::string::npos) << t.status().message();

  EXPECT_EQ(Tokenizer::from_hf_json("/nonexistent/dir").status().code(), StatusCode::NOT_FOUND);
}

TEST(StreamingDecoder, HoldsBackSplitCharacters) {
  const Tokenizer t = tiny_tokenizer("gpt2", "", false);
  // "é" = C3 A9, "🚀" = F0 9F 9A 80: fed one byte token at a time.
  StreamingDecoder decoder(t);
  EXPECT_EQ(decoder.push('h'), "h");
  EXPECT_EQ(decoder.push(0xc3), "");
  EXPECT_EQ(decoder.push(0xa9), "é");
  EXPECT_EQ(decoder.push(0xf0), "");
  EXPECT_EQ(decoder.push(0x9f), "");
  EXPECT_EQ(decoder.push(kEot), "");  // a skipped special does not flush the pending bytes
  EXPECT_EQ(decoder.push(0x9a), "");
  EXPECT_EQ(decoder.push(0x80), "🚀");
  EXPECT_EQ(decoder.push(kHELLO), "hello");
  // An unfinished character at the end becomes U+FFFD; a byte that cannot continue it is repaired at once.
  EXPECT_EQ(decoder.push(0xe6), "");
  EXPECT_EQ(decoder.finish(), "\xef\xbf\xbd");
  EXPECT_EQ(decoder.push(0xe6), "");
  EXPECT_EQ(decoder.push('x'), "\xef\xbf\xbdx");
  EXPECT_EQ(decoder.finish(), "");
}

TEST(Utf8, LossyRepairMatchesMaximalSubparts) {
  std::string out;
  EXPECT_EQ(append_utf8_lossy("ok\xe6\x97\xa5", out, true), 5u);
  EXPECT_EQ(out, "ok日");
  out.clear();
  EXPECT_EQ(append_utf8_lossy("a\xe6\x97", out, true), 1u);  // held back
  EXPECT_EQ(out, "a");
  out.clear();
  append_utf8_lossy("a\xe6\x97", out, false);
  EXPECT_EQ(out, "a\xef\xbf\xbd");  // one replacement for the truncated sequence
  out.clear();
  append_utf8_lossy("\x80\xc0\xaf\xed\xa0\x80z", out, false);  // stray continuation, overlong, surrogate
  EXPECT_EQ(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
}

const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif "
    "%}{{'<|im_start|>'"
    " + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
const char* kQwenTemplate =
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba "
    "Cloud. "
    "You are a helpful assistant.' }}\n    {%- endif %}\n{%- else %}\n    {%- if messages[0]['role'] == "
    "'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}";

TEST(ChatTemplate, ChatMLWithDefaultSystemPrompts) {
  const std::vector<ChatMessage> chat = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
  const ChatTemplate smol = detect_chat_template(kSmolTemplate, false, true);
  EXPECT_EQ(smol.kind, ChatTemplateKind::CHATML);
  EXPECT_EQ(
      *render_chat(smol, chat, true),
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
      "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  const ChatTemplate qwen = detect_chat_template(kQwenTemplate, false, true);
  EXPECT_EQ(qwen.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  const std::vector<ChatMessage> with_system = {{"system", "Be terse."}, {"user", " x "}};
  EXPECT_EQ(*render_chat(qwen, with_system, false),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\n x <|im_end|>\n");
  // No template text but ChatML markers in the vocab: ChatML without a default system turn.
  const ChatTemplate bare = detect_chat_template("", false, true);
  EXPECT_EQ(bare.kind, ChatTemplateKind::CHATML);
  EXPECT_EQ(*render_chat(bare, {{ChatMessage{"user", "q"}}}, true),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama31Preamble) {
  ChatTemplate llama31 = detect_chat_template(
      "{{- bos_token }}...<|start_header_id|>system<|end_header_id|>\\n\\nCutting Knowledge Date: December "
      "2023",
      true, false);
  llama31.bos_text = "<|begin_of_text|>";
  ASSERT_EQ(llama31.kind, ChatTemplateKind::LLAMA3);
  EXPECT_EQ(
      *render_chat(llama31, {{ChatMessage{"user", "  Hi \n"}}}, true),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
      "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(
      *render_chat(llama31, {{ChatMessage{"system", "Sys."}, ChatMessage{"user", "Q"}}}, false),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
      "Today Date: 26 Jul 2024\n\nSys.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>");
}

TEST(ChatTemplate, Errors) {
  const ChatTemplate none = detect_chat_template("", false, false);
  EXPECT_EQ(none.kind, ChatTemplateKind::NONE);
  EXPECT_EQ(render_chat(none, {{ChatMessage{"user", "q"}}}, true).status().code(),
            StatusCode::INVALID_ARGUMENT);
  const ChatTemplate chatml = detect_chat_template("", false, true);
  EXPECT_EQ(render_chat(chatml, {}, true).status().code(), StatusCode::INVALID_ARGUMENT);
  auto bad_role = render_chat(chatml, {{ChatMessage{"robot", "q"}}}, true);
  EXPECT_NE(bad_role.status().message().find("'robot'"), std::string::npos);
}

TEST(TinyTokenizer, EncodeChatHasOneBos) {
  const Tokenizer t = tiny_tokenizer("llama-bpe", "<|start_header_id|>", true);
  ASSERT_EQ(t.chat_template().kind, ChatTemplateKind::LLAMA3);
  auto ids = t.encode_chat({{ChatMessage{"user", "hello"}}}, true);
  ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
  EXPECT_EQ(std::count(ids->begin(), ids->end(), kBos), 1);
  EXPECT_EQ(ids->front(), kBos);
}

}  // namespace
}  // namespace sacc
