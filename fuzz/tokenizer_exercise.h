// What a loaded tokenizer must survive whatever its vocab: encoding and decoding text with specials,
// multi-byte and invalid UTF-8, ids out of range, streaming decode and the chat template.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace sacc::fuzz {

inline void exercise_tokenizer(const Tokenizer& tokenizer) {
  static const std::string kText =
      "Hello world! <|im_end|><|eot_id|> 12345 caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xfe  \n\n\ttab";
  std::vector<int32_t> ids = tokenizer.encode(kText, true);
  (void)tokenizer.encode_prompt(kText);
  (void)tokenizer.decode(ids, false);
  ids.push_back(-1);
  ids.push_back(tokenizer.vocab_size());
  (void)tokenizer.decode(ids, true);
  StreamingDecoder stream(tokenizer);
  for (int32_t id : ids) (void)stream.push(id);
  (void)stream.finish();
  (void)tokenizer.stop_ids();
  const std::array<ChatMessage, 2> messages{ChatMessage{"system", "be brief"}, ChatMessage{"user", kText}};
  (void)tokenizer.encode_chat(messages, true);
}

}  // namespace sacc::fuzz
