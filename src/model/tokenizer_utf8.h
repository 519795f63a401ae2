// UTF-8 repair for decoded token bytes: invalid sequences become U+FFFD (one per maximal invalid subpart, as
// Rust's String::from_utf8_lossy and hence HF tokenizers do).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sacc {

// Appends the valid text of `bytes` to `out`. With `hold_incomplete`, a trailing sequence that is a valid but
// unfinished prefix is not consumed; returns the number of bytes consumed.
size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool hold_incomplete);

}  // namespace sacc
