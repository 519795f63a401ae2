// Where one `sacc serve` request's time goes, phase by phase, for /metrics (sacc_request_phase_seconds). The
// phases before the first token follow each other without gaps or overlap inside [arrival, first token], so
// they sum to at most the time to first token; what they leave out is the worker's bookkeeping between them.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>

namespace sacc::cli {

using ServeClock = std::chrono::steady_clock;

enum class RequestPhase {
  PARSE,     // arrival (body read) -> JSON parsed and checked, model matched
  TOKENIZE,  // -> chat template applied and the prompt tokenised
  QUEUE,     // -> the worker takes the request into a sequence slot (the memory check, admission and the
             //    wait in the FIFO)
  LOOKUP,    // -> the prefix cache matched the prompt (its room made, least recently used entries evicted)
  RESERVE,   // -> the request's slot's KV cache sized for it
  RESTORE,   // -> the reused prefix's KV copied in, device work done (0 without reuse)
  PREFILL,   // -> the computed positions' last logits on the host (device work done); includes the
             //    request's attention settings applied, and the other requests' prefill and decode steps
             //    that ran before and between its prefill steps
  SAMPLE,    // -> the first token sampled
  DECODE,    // first token -> the last token (the decode steps, streaming included)
};
inline constexpr size_t kRequestPhases = static_cast<size_t>(RequestPhase::DECODE) + 1;

// The label value: "parse", "tokenize", ...
const char* request_phase_name(RequestPhase phase);

// Seconds per phase of one request.
struct RequestPhaseTimes {
  std::array<double, kRequestPhases> seconds{};
  double& operator[](RequestPhase phase) { return seconds[static_cast<size_t>(phase)]; }
  double operator[](RequestPhase phase) const { return seconds[static_cast<size_t>(phase)]; }
};

// A request's stopwatch: lap() charges the time since the previous lap (or the start) to a phase. The HTTP
// thread laps until the request is queued, the worker after it takes it (the queue's mutex orders the two).
class PhaseClock {
 public:
  explicit PhaseClock(ServeClock::time_point start) : mark_(start) {}
  void lap(RequestPhase phase);
  // A phase timed elsewhere (the engine's); does not move the lap mark.
  void set(RequestPhase phase, double seconds) { times_[phase] = seconds; }
  const RequestPhaseTimes& times() const { return times_; }

 private:
  ServeClock::time_point mark_;
  RequestPhaseTimes times_;
};

}  // namespace sacc::cli
