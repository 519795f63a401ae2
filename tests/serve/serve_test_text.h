// Text helpers of the serve tests: a document of numbered field-note entries (about 32 SmolLM2 tokens each),
// and one value read from a /metrics page.
#pragma once

#include <sstream>
#include <string>

namespace sacc::test {

// "Field notes on <place>." and `entries` entries.
inline std::string field_notes(const std::string& place, int entries) {
  std::ostringstream text;
  text << "Field notes on " << place << ".\n";
  for (int i = 1; i <= entries; ++i)
    text << "Entry " << i << ": the survey counted " << (i * 37) % 101 << " birds near marker " << i * 3
         << ", and the water was " << (i % 3 == 0 ? "cold" : "clear") << " that morning.\n";
  return text.str();
}

// The value of the metric line that starts with `name ` (-1 when absent).
inline double metric(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

}  // namespace sacc::test
