#include "model/tokenizer_utf8.h"

#include <cstdint>

namespace sacc {
namespace {

constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

// Valid range of the second byte given the lead (excludes overlongs, surrogates and code points > U+10FFFF).
bool second_byte_ok(uint8_t lead, uint8_t second) {
  switch (lead) {
    case 0xe0:
      return second >= 0xa0 && second <= 0xbf;
    case 0xed:
      return second >= 0x80 && second <= 0x9f;
    case 0xf0:
      return second >= 0x90 && second <= 0xbf;
    case 0xf4:
      return second >= 0x80 && second <= 0x8f;
    default:
      return second >= 0x80 && second <= 0xbf;
  }
}

int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;  // continuation byte or a lead that can never start a valid sequence
}

}  // namespace

size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool hold_incomplete) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto lead = static_cast<uint8_t>(bytes[pos]);
    const int length = sequence_length(lead);
    if (length == 1) {
      out.push_back(bytes[pos++]);
      continue;
    }
    if (length == 0) {
      out.append(kReplacement);
      ++pos;
      continue;
    }
    // Count how many bytes after the lead continue the sequence validly.
    int valid = 1;
    while (valid < length && pos + valid < bytes.size()) {
      const auto c = static_cast<uint8_t>(bytes[pos + valid]);
      const bool ok = valid == 1 ? second_byte_ok(lead, c) : (c & 0xc0) == 0x80;
      if (!ok) break;
      ++valid;
    }
    if (valid == length) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else if (pos + valid == bytes.size() && hold_incomplete) {
      return pos;  // an unfinished character at the end: wait for the next token
    } else {
      out.append(kReplacement);
      pos += valid;
    }
  }
  return pos;
}

}  // namespace sacc
