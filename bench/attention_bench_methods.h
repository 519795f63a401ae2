// What each benchmark row runs, and the device state to run it repeatedly.
//
// Sparse rows compare at equal cost: Interval-Slash uses the real per-head budgets of one layer of
// MInference's Llama-3.1-8B config; Triangular and Block-Cluster get the smallest window / key-block budget
// whose predicted kernel cost (attention/cost_model.h) reaches that layer's; "adaptive" is the same
// Interval-Slash budgets used as caps with a mass target of kAdaptiveGamma.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "attention_bench.h"
#include "core/cuda/device_memory.h"

namespace sacc::bench {

constexpr double kAdaptiveGamma = 0.95;
constexpr int64_t kTriangularSinks = 128;

// One layer's Interval-Slash budgets [Hq] from MInference's per-head config (attention/minference_config.h).
struct LayerBudgets {
  int layer = 0;
  std::vector<PatternSpec> heads;  // [Hq]
};

Result<std::vector<LayerBudgets>> load_minference_budgets(const std::string& path);
// The layer whose total budget (vertical + slash over its heads) is the median of all layers: a typical
// layer.
const LayerBudgets& typical_layer(const std::vector<LayerBudgets>& layers);

struct MethodSetup {
  Method method = Method::DENSE;
  std::string pattern;     // for the report
  LayerPatterns patterns;  // sparse rows: one spec per query head
  IndexGeometry geometry;  // sparse rows
};

// Fails for sparse methods when the layer's head count differs from the shape's query heads. Triangular and
// Block-Cluster rows take their knob from `density` (predicted share of the causal tiles) when it is > 0,
// else from equal predicted cost to the layer's budgets.
Result<MethodSetup> setup_method(Method method, const AttentionShape& shape, const LayerBudgets& budgets,
                                 double density = 0.0);

// Workspaces of one method at one shape, allocated once before timing.
class MethodRunner {
 public:
  static Result<MethodRunner> create(const MethodSetup& setup, const AttentionShape& shape, int device);

  // Enqueues plan (sparse rows) and attention on `stream`, recording `after_plan` in between (and right away
  // for dense rows). No host synchronisation.
  Status enqueue(const AttentionParams& params, cudaEvent_t after_plan, cudaStream_t stream);

  // Host copy of the index the last enqueue built (sparse rows); synchronises the stream.
  Result<SparseIndex> last_index(cudaStream_t stream) const;

 private:
  MethodSetup setup_;
  DeviceBuffer plan_workspace_, run_workspace_, eager_workspace_;
  SparseIndexView index_;
  FlashKernelChoice kernel_;  // the attention selector's choice for this device and index
};

}  // namespace sacc::bench
