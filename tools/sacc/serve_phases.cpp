#include "tools/sacc/serve_phases.h"

namespace sacc::cli {

const char* request_phase_name(RequestPhase phase) {
  switch (phase) {
    case RequestPhase::PARSE:
      return "parse";
    case RequestPhase::TOKENIZE:
      return "tokenize";
    case RequestPhase::QUEUE:
      return "queue";
    case RequestPhase::LOOKUP:
      return "lookup";
    case RequestPhase::RESERVE:
      return "reserve";
    case RequestPhase::RESTORE:
      return "restore";
    case RequestPhase::PREFILL:
      return "prefill";
    case RequestPhase::SAMPLE:
      return "sample";
    case RequestPhase::DECODE:
      return "decode";
  }
  return "unknown";
}

void PhaseClock::lap(RequestPhase phase) {
  const ServeClock::time_point now = ServeClock::now();
  times_[phase] = std::chrono::duration<double>(now - mark_).count();
  mark_ = now;
}

}  // namespace sacc::cli
