#include "model/chat_template.h"

#include <array>

namespace sacc {
namespace {

constexpr std::string_view kLlama3Start = "<|start_header_id|>";
constexpr std::string_view kLlama3End = "<|end_header_id|>\n\n";
constexpr std::string_view kLlama3Eot = "<|eot_id|>";
constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

// Jinja's `trim` filter: leading and trailing whitespace removed.
std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

// The text a ChatML template states as the system turn when the conversation has none, e.g. SmolLM2's
// '<|im_start|>system\nYou are a helpful AI assistant named SmolLM...<|im_end|>\n'. Occurrences whose text is
// built from variables (quotes or braces inside) are skipped; "\n" escapes are unescaped.
std::string default_system_prompt(std::string_view source) {
  const std::string opener = std::string(kImStart) + "system";
  for (size_t at = source.find(opener); at != std::string_view::npos; at = source.find(opener, at + 1)) {
    size_t begin = at + opener.size();
    if (source.substr(begin, 1) == "\n") {
      begin += 1;
    } else if (source.substr(begin, 2) == "\\n") {
      begin += 2;
    } else {
      continue;
    }
    const size_t end = source.find(kImEnd, begin);
    if (end == std::string_view::npos) break;
    const std::string_view text = source.substr(begin, end - begin);
    if (text.empty() || text.find_first_of("'\"{}+") != std::string_view::npos) continue;
    std::string unescaped;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        unescaped += '\n';
        ++i;
      } else {
        unescaped += text[i];
      }
    }
    return unescaped;
  }
  return {};
}

bool known_role(std::string_view role) {
  constexpr std::array<std::string_view, 5> kRoles = {"system", "user", "assistant", "tool", "ipython"};
  for (std::string_view known : kRoles) {
    if (role == known) return true;
  }
  return false;
}

}  // namespace

std::string_view chat_template_kind_name(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::NONE:
      return "none";
    case ChatTemplateKind::LLAMA3:
      return "llama3";
    case ChatTemplateKind::CHATML:
      return "chatml";
  }
  return "?";
}

ChatTemplate detect_chat_template(std::string_view jinja_source, bool vocab_has_llama3_headers,
                                  bool vocab_has_chatml_markers) {
  ChatTemplate result;
  if (jinja_source.find(kLlama3Start) != std::string_view::npos) {
    result.kind = ChatTemplateKind::LLAMA3;
  } else if (jinja_source.find(kImStart) != std::string_view::npos) {
    result.kind = ChatTemplateKind::CHATML;
  } else if (jinja_source.empty() && vocab_has_llama3_headers) {
    result.kind = ChatTemplateKind::LLAMA3;
  } else if (jinja_source.empty() && vocab_has_chatml_markers) {
    result.kind = ChatTemplateKind::CHATML;
  }
  if (result.kind == ChatTemplateKind::CHATML) result.default_system = default_system_prompt(jinja_source);
  // Llama-3.1's template opens every conversation with a system turn stating the knowledge cut-off and a
  // date.
  if (result.kind == ChatTemplateKind::LLAMA3 &&
      jinja_source.find("Cutting Knowledge Date") != std::string_view::npos) {
    result.default_system = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
    result.system_preamble = true;
  }
  return result;
}

Result<std::string> render_chat(const ChatTemplate& chat_template, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  if (chat_template.kind == ChatTemplateKind::NONE) {
    return make_error(
        StatusCode::INVALID_ARGUMENT,
        "this model has no chat template (neither Llama-3 headers nor ChatML markers); use a plain "
        "prompt without --chat");
  }
  if (messages.empty()) return make_error(StatusCode::INVALID_ARGUMENT, "a chat needs at least one message");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!known_role(messages[i].role)) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "message {} has role '{}' (system, user, assistant, tool or ipython expected)", i,
                        messages[i].role);
    }
  }
  std::string out;
  if (chat_template.kind == ChatTemplateKind::LLAMA3) {
    out += chat_template.bos_text;
    size_t first = 0;
    if (chat_template.system_preamble) {
      // Llama-3.1: the system turn always exists and carries the preamble before any user-given system text.
      std::string_view system;
      if (messages[0].role == "system") {
        system = trim(messages[0].content);
        first = 1;
      }
      out += fmt::format("{}system{}{}{}{}", kLlama3Start, kLlama3End, chat_template.default_system, system,
                         kLlama3Eot);
    }
    for (size_t i = first; i < messages.size(); ++i) {
      out += fmt::format("{}{}{}{}{}", kLlama3Start, messages[i].role, kLlama3End, trim(messages[i].content),
                         kLlama3Eot);
    }
    if (add_generation_prompt) out += fmt::format("{}assistant{}", kLlama3Start, kLlama3End);
    return out;
  }
  if (messages[0].role != "system" && !chat_template.default_system.empty()) {
    out += fmt::format("{}system\n{}{}\n", kImStart, chat_template.default_system, kImEnd);
  }
  for (const ChatMessage& message : messages) {
    out += fmt::format("{}{}\n{}{}\n", kImStart, message.role, message.content, kImEnd);
  }
  if (add_generation_prompt) out += fmt::format("{}assistant\n", kImStart);
  return out;
}

}  // namespace sacc
