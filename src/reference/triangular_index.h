// Triangular(S, W) (A-shape): keep key j for query i iff j < S or i - j < W (and j <= i). Static, no
// estimation.
//
// Block rounding (the index lists whole key blocks, so it covers a superset of the exact pattern):
//  * local window: for the query block with rows [r0, r1] every key block that intersects [r0 - W + 1, r1];
//  * sinks: the key blocks lying entirely inside [0, S) are listed as blocks; when S is not a multiple of Bk,
//    the sink keys of the partial block become single columns (unless that block is already listed).
// So the sinks are exact and the window is widened to key-block boundaries (by < Bq + Bk keys per row).
#pragma once

#include "attention/pattern.h"
#include "reference/head_index.h"

namespace sacc::ref {

HeadIndex triangular_head_index(const PatternSpec& spec, const IndexGeometry& geometry);

}  // namespace sacc::ref
