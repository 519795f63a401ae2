// Deterministic synthetic long-context Q/K/V with the structure real attention heads show, planted per KV
// head:
//  * sinks: the first keys share a direction every query also carries;
//  * vertical columns: a few scattered keys carry a second shared direction;
//  * slash diagonals and local attention: rotary features (one set of frequencies shared by all heads, like
//    RoPE but spread over (0, pi)) make q_i . k_j depend on i - j only; it peaks at the planted offsets and,
//    decaying, at the local offsets 0, 1, 2, ...; the side lobes give every diagonal some mass, as RoPE does;
//  * topics (what block-cluster heads exploit): the text is cut into segments, each about one of a few
//  topics;
//    keys carry their segment's topic and queries their own segment's, so a query attends to every segment
//    on its topic (block-shaped attention);
//  * noise on every dimension (uniform, with the variance that gives the stated logit noise).
// Query heads of one group weigh the features differently, so heads differ as in real models. Values are
// rounded to bf16 by default (what the engine's kernels see). Cost is O(L * (Hq + Hkv) * d): about a second
// for L = 32K, 32/8 heads, d = 128 on one core.
#pragma once

#include <cstdint>
#include <vector>

#include "reference/qkv.h"

namespace sacc::ref {

struct SyntheticConfig {
  AttentionShape shape{8192, 8, 2, 128};
  uint64_t seed = 1;
  int sinks = 4;        // keys [0, sinks) are sinks
  int verticals = 16;   // planted vertical columns per KV head (at random keys)
  int local_width = 8;  // local attention: offsets [0, local_width), weights halving per step
  int slashes = 4;      // planted slash offsets per KV head beyond the local band
  // Logit of a planted sink / vertical / slash hit for a query head of weight 1.
  double structure_logit = 12.0;
  double topic_logit = 2.5;  // logit between a query and a key on the same topic (0: no topics)
  int topic_segment = 512;   // tokens per topic segment
  int topics = 6;            // distinct topics (at most 8)
  double noise_logit = 0.5;  // standard deviation of the logit noise between unrelated q and k
  bool bf16_values = true;   // round Q/K/V to bf16
  bool vary_heads = true;  // false: every query head weighs every feature 1 (all structure at full strength)
};

struct PlantedStructure {                              // per KV head
  std::vector<std::vector<int32_t>> vertical_columns;  // [Hkv][verticals] ascending keys
  std::vector<std::vector<int32_t>> slash_offsets;     // [Hkv][slashes] ascending, beyond the local band
};

struct SyntheticInput {
  HostQkv qkv;
  PlantedStructure planted;
};

Result<SyntheticInput> make_synthetic_input(const SyntheticConfig& config);

}  // namespace sacc::ref
