// Tuning of the flash-attention kernel family (tile sizes, warps, pipeline depth). Tuning, not semantics:
// none of these values changes what the kernel computes, only how fast. Head dim and visit policy are the
// compile-time semantics; everything else lives in this one table.
#pragma once

#include "attention/kernel_tile.h"

namespace sacc::flash {

// Query rows per CTA and key columns per tile: the kernel tile (attention/kernel_tile.h), which is also the
// index geometry's Bq / Bk, so one CTA is exactly one (query head, query block) slot of the index.
inline constexpr int kBlockM = kTileBlockQ;
inline constexpr int kBlockN = kTileBlockK;

template <int kHeadDim>
struct FlashConfig;

// d = 128: 4 warps x 32 rows (two m16 tiles per warp, so every K/V fragment read from shared memory feeds two
// MMAs). Q is re-read from shared memory each tile: keeping it in registers (64 more per thread) would push
// the 128 O + 64 S accumulators past the 255-register limit.
template <>
struct FlashConfig<128> {
  static constexpr int kWarps = 4;
  static constexpr int kMTilesPerWarp = 2;  // m16 tiles per warp
  static constexpr int kStages = 2;         // K/V shared-memory stages (cp.async double buffering)
  static constexpr bool kQInRegisters = false;
  static constexpr int kMinBlocksPerSm = 1;
};

// d = 64: same tiling; Q fits in registers (32 per thread) next to 64 O + 64 S accumulators.
template <>
struct FlashConfig<64> {
  static constexpr int kWarps = 4;
  static constexpr int kMTilesPerWarp = 2;
  static constexpr int kStages = 2;
  static constexpr bool kQInRegisters = true;
  static constexpr int kMinBlocksPerSm = 2;
};

template <int kHeadDim>
struct FlashTiles : FlashConfig<kHeadDim> {
  using Config = FlashConfig<kHeadDim>;
  static constexpr int kThreads = Config::kWarps * 32;
  static constexpr int kChunksPerRow = kHeadDim / 8;  // 16-byte chunks of one bf16 row
  // bf16 elements of shared memory: Q tile, then kStages x (K tile, V tile).
  static constexpr int kQElems = kBlockM * kHeadDim;
  static constexpr int kKvElems = kBlockN * kHeadDim;
  static constexpr int kSmemBytes =
      2 * (kQElems + 2 * Config::kStages * kKvElems) + Config::kStages * kBlockN * int(sizeof(int));

  static_assert(kHeadDim % 16 == 0 && kHeadDim <= 256, "head dim must be a multiple of the MMA k (16)");
  static_assert(Config::kWarps * 16 * Config::kMTilesPerWarp == kBlockM,
                "warps x rows must cover the query tile");
  static_assert(kBlockN % 16 == 0, "key tile must be a multiple of the MMA k (16)");
  static_assert((kBlockN * kChunksPerRow) % kThreads == 0, "K/V tile loads must split evenly over threads");
  static_assert((kBlockM * kChunksPerRow) % kThreads == 0, "Q tile loads must split evenly over threads");
  // Hopper: 227 KB of shared memory per CTA (opt-in above 48 KB), 228 KB per SM; kMinBlocksPerSm CTAs must
  // fit.
  static_assert(kSmemBytes <= 227 * 1024, "shared memory over the sm_90 per-CTA limit");
  static_assert(kSmemBytes * Config::kMinBlocksPerSm <= 228 * 1024, "shared memory over the per-SM limit");
};

// Hopper, warp-specialised (flash_kernel_sm90.cuh): a producer warpgroup (TMA) and two consumer warpgroups;
// one CTA per SM. A tile is two 64-key halves (index key blocks or groups of 64 gathered columns), so both
// GEMMs are m64n128. Registers: launched at 65536 / 384 = 168 per thread, setmaxnreg moves the producer to 56
// and the consumers to 224 (S 64 + O d/2 + P 32 accumulators and fragments).
template <int kHeadDim>
struct FlashTilesSm90 {
  // K/V ring depth. Deeper rings (d = 128: 3 stages, d = 64: 4) ran gathered tiles no faster and d = 128's
  // 8 % slower on the H200 (bench/results/real_models_h200.md, "twelfth session").
  static constexpr int kStages = 2;
  static constexpr int kTileKeys = 2 * kBlockN;
  static constexpr int kThreads = 3 * 128;
  // Every kExpPolyPeriod-th n8 column tile of S takes its exponentials from the FMA pipe (flash_softmax.cuh,
  // poly_exp2); 0: all on the special-function unit. H200, dense 16K-128K: d 64 2-6 % faster with period 4
  // (period 3 about the same, period 2 no better than none); d 128, where the tensor cores need twice the
  // clocks per tile, 3-5 % slower with period 4 (bench/results/real_models_h200.md, "fifteenth session").
  static constexpr int kExpPolyPeriod = kHeadDim == 64 ? 4 : 0;
  static constexpr int kQElems = kBlockM * kHeadDim;
  static constexpr int kKvElems = kTileKeys * kHeadDim;
  // Q + stages x (K + V) + 1 + 3 x kStages mbarriers + 1024 to re-align to the swizzle atom. Gathered
  // columns' key positions are not kept here: the consumers read them from the index.
  static constexpr int kSmemBytes = 2 * (kQElems + 2 * kStages * kKvElems) + 8 * (1 + 3 * kStages) + 1024;

  static_assert(kHeadDim == 64 || kHeadDim == 128, "wgmma tiles are built from 64-column (128-byte) blocks");
  static_assert(kBlockM == 128, "two consumer warpgroups x 64 rows");
  static_assert(kTileKeys <= 256, "TMA boxes and wgmma N are at most 256");
  // Hopper: 227 KB of shared memory per CTA.
  static_assert(kSmemBytes <= 227 * 1024, "shared memory over the sm_90 per-CTA limit");
};

}  // namespace sacc::flash
