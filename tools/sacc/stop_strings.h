// OpenAI `stop` strings over streamed text: text that could be the start of a stop string is held back until
// it is known not to be, so a stop string split across tokens is never sent, and the text ends before it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sacc::cli {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);  // stops: none empty
  // Appends generated text and returns what is now safe to send. Once a stop string is found, returns the
  // text before it and stopped() turns true; later calls return "".
  std::string push(std::string_view text);
  // The held-back text at the end of a generation that met no stop string.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // held back: a suffix that is a proper prefix of some stop string
  bool stopped_ = false;
};

}  // namespace sacc::cli
