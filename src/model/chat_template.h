// Chat templates implemented in C++ (no Jinja engine): Llama-3.x headers and ChatML (SmolLM2, Qwen2). The
// kind is chosen from the template text a model ships (tokenizer_config.json / tokenizer.chat_template), else
// its vocab.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sacc {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatTemplateKind { NONE, LLAMA3, CHATML };

std::string_view chat_template_kind_name(ChatTemplateKind kind);

struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::NONE;
  std::string bos_text;  // Llama-3: "<|begin_of_text|>" rendered at the start; ChatML: ""
  // ChatML: the system prompt used when the first message is not "system" ("" = none).
  // Llama-3.1: the preamble of the system turn (knowledge cut-off and date) when system_preamble is set.
  std::string default_system;
  bool system_preamble =
      false;  // Llama-3.1 always renders a system turn; Llama-3 renders only the given ones
};

// Picks the template from a model's Jinja source (may be empty) and whether the vocab has the marker tokens.
// The default system prompt of ChatML models is taken from the Jinja source where it states one.
ChatTemplate detect_chat_template(std::string_view jinja_source, bool vocab_has_llama3_headers,
                                  bool vocab_has_chatml_markers);

// Renders messages as the model's template would; INVALID_ARGUMENT for an empty list, an unknown role or a
// model without a template (NONE).
Result<std::string> render_chat(const ChatTemplate& chat_template, std::span<const ChatMessage> messages,
                                bool add_generation_prompt);

}  // namespace sacc
