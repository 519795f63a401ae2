// The flash kernels' tile: Bq query rows per CTA by Bk keys per key tile. The one definition: the index
// geometry (sparse_index.h), head configs, `sacc search` / `sacc eval` defaults, the plan and the kernels
// (flash_config.h) all derive from these two constants. Plain constexpr, so nvcc and the host compiler both
// include it.
#pragma once

namespace sacc {

inline constexpr int kTileBlockQ = 128;  // Bq: query rows of one CTA (= one index slot)
inline constexpr int kTileBlockK = 64;   // Bk: keys of one index key block and of one kernel key tile

static_assert(kTileBlockQ % kTileBlockK == 0, "a query block must cover whole key blocks (the cover table)");

}  // namespace sacc
