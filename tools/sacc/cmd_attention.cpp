// `sacc attention`: run one pattern (or dense) over Q/K/V from a safetensors file, or a synthetic demo.
#include <chrono>
#include <cstdio>

#include "attention/cost_model.h"
#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/sparse_attention.h"
#include "tools/sacc/attention_cuda.h"
#include "tools/sacc/attention_io.h"
#include "tools/sacc/attention_options.h"
#include "tools/sacc/commands.h"

namespace sacc::cli {
namespace {

constexpr const char* kFooter = R"(
Patterns (--pattern):
  dense                       causal attention over every key
  triangular:S,W              sink keys [0, S) + a local window of W keys (A-shape); static
  interval-slash:KV,KS        top-KV vertical key columns + top-KS slash diagonals (vertical-slash), estimated from
                              the last --last-queries queries
  block-cluster:KB            top-KB key blocks per query block from mean-pooled Q and K
  ...@GAMMA                   adaptive budget: the fewest items whose estimated mass reaches GAMMA, capped by the
                              budget (interval-slash:1000,6096@0.95)
  interval-slash:...+block-cluster:...  both estimated, each query block gets the key blocks of either
                              (the default: interval-slash:1000,256@0.95+block-cluster:512@0.99)

Input (--in): a safetensors file with q [L, Hq, d], k [L, Hkv, d], v [L, Hkv, d] in BF16, F16 or F32
(Hq a multiple of Hkv). Output (--out): o [L, Hq, d] BF16 and lse [Hq, L] F32 (natural-log log-sum-exp of the
scaled scores); with --dump-index also index.block_offsets, index.block_ids, index.column_offsets and
index.column_ids (I32, the CSR index of src/attention/sparse_index.h; geometry in the file's metadata).

Devices (--device): cpu runs the fp64 CPU oracle. cuda[:N] uploads Q/K/V as bf16, builds sparse indices on the
GPU (plan(): estimation + index build, no host round trip before the kernel) and runs the flash kernels (bf16
in and out, fp32 accumulation); head dims 64 and 128, index blocks Bq=128, Bk=64 (the kernel tile). Times are one run after one
warm-up, measured with CUDA events: not a benchmark (see sacc bench / bench/). With --compare the CUDA result
is checked against the CPU oracle on the same index, failing beyond the bf16 tolerance.

Examples:
  sacc attention --demo
  sacc attention --demo --len 16384 --heads 32 --kv-heads 8
  sacc attention --demo --device cuda --len 131072 --heads 32 --kv-heads 8
  sacc attention --in qkv.safetensors --pattern interval-slash:1000,6096 --out o.safetensors --dump-index
  sacc attention --in qkv.safetensors --pattern block-cluster:64 --device cuda --compare
)";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Status run_on_cpu(const FileOptions& file, const IndexOptions& options) {
  SACC_ASSIGN_OR_RETURN(PatternSpec spec, file_pattern(file.patterns));
  SACC_ASSIGN_OR_RETURN(const ref::HostQkv host, load_qkv_file(file.input));
  ref::QkvView qkv = host.view();
  qkv.softmax_scale = file.softmax_scale;
  const AttentionShape& shape = qkv.shape;
  const IndexGeometry geometry = options.geometry(shape.seq_len, shape.num_q_heads, shape.num_kv_heads);
  if (options.clamp_budgets) spec = ref::clamp_pattern_to_length(spec, geometry);

  auto start = std::chrono::steady_clock::now();
  SACC_ASSIGN_OR_RETURN(SparseIndex index, ref::build_index(qkv, {spec}, options.estimation, geometry));
  const double plan_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  Result<ref::AttentionResult> result =
      spec.kind == PatternKind::DENSE ? ref::dense_attention(qkv) : ref::sparse_attention(qkv, index);
  SACC_RETURN_IF_ERROR(result.status());
  const double run_seconds = seconds_since(start);
  print_attention_summary(spec, shape, index_cost(index, shape.head_dim), 1e3 * plan_seconds,
                          1e3 * run_seconds, "CPU oracle");
  if (file.compare && spec.kind != PatternKind::DENSE) {
    SACC_ASSIGN_OR_RETURN(ref::AttentionResult dense, ref::dense_attention(qkv));
    SACC_ASSIGN_OR_RETURN(double error, ref::relative_l2_error(result->o, dense.o));
    SACC_ASSIGN_OR_RETURN(ref::RecallReport recall, ref::attention_recall(qkv, index));
    std::printf("against dense: attention recall %.4f, relative error of O %.5f\n", recall.mean, error);
  }
  if (!file.output.empty()) {
    SACC_RETURN_IF_ERROR(write_attention_output(file.output, output_from_oracle(*result), spec,
                                                "sacc attention (CPU oracle)",
                                                file.dump_index ? &index : nullptr));
    std::printf("wrote %s\n", file.output.c_str());
  }
  return Status::ok();
}

Status run_on_file(const FileOptions& file, const IndexOptions& options) {
  SACC_ASSIGN_OR_RETURN(Device device, parse_device(file.device));
  return device.is_cpu() ? run_on_cpu(file, options) : run_attention_file_cuda(file, options, device);
}

}  // namespace

void add_attention_command(CLI::App& app, CommandBody& body) {
  CLI::App* cmd = app.add_subcommand(
      "attention",
      "run dense or sparse attention on Q/K/V tensors from a file, or compare the patterns (--demo)");
  cmd->footer(kFooter);
  auto file = std::make_shared<FileOptions>();
  auto options = std::make_shared<IndexOptions>();
  auto demo = std::make_shared<DemoOptions>();
  auto run_demo = std::make_shared<bool>(false);

  cmd->add_flag(
      "--demo", *run_demo,
      "make a synthetic long-context input with planted sinks, vertical columns, slash diagonals and "
      "local attention, and print density, attention recall, relative error of O and time per pattern");
  cmd->add_option("--in", file->input,
                  "safetensors file holding q [L,Hq,d], k and v [L,Hkv,d] (BF16/F16/F32)");
  cmd->add_option("--out", file->output,
                  "write o [L,Hq,d] (BF16) and lse [Hq,L] (F32) to this safetensors file");
  cmd->add_option(
      "--pattern", file->patterns,
      "pattern to run (see below); default dense. With --demo: repeatable, replaces the default set");
  cmd->add_flag("--dump-index", file->dump_index, "also write the CSR index arrays into --out");
  cmd->add_flag(
      "--compare", file->compare,
      "cpu: also run dense attention and print attention recall and relative error of O against it; "
      "cuda: check O and LSE against the CPU oracle on the same index (fails beyond bf16 tolerance)");
  cmd->add_option("--device", file->device,
                  "where to run: cpu (the fp64 oracle) or cuda[:N] (the flash kernels, GPU index build); "
                  "default cpu");
  cmd->add_option("--scale", file->softmax_scale, "softmax scale; default 1/sqrt(d)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--block-q", options->block_q,
                  fmt::format("query rows per index block (Bq); default {}", kTileBlockQ))
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--block-k", options->block_k,
                  fmt::format("keys per index block (Bk); default {}", kTileBlockK))
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--last-queries", options->estimation.last_queries,
                  "interval-slash: number m of last queries the estimate uses; default 64")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--sink-keys", options->estimation.sink_keys,
                  "interval-slash: first keys always kept (inside the vertical budget); default 30")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--local-diagonals", options->estimation.local_diagonals,
                  "interval-slash: nearest diagonals always kept (inside the slash budget; the main diagonal "
                  "always is); default 100")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag(
      "--shared", options->shared_per_kv_group,
      "one index per KV group (scores of the group's query heads summed) instead of one per query head");
  cmd->add_flag("--clamp-budgets", options->clamp_budgets,
                "reduce budgets larger than the input (KV, KS > L; KB > key blocks) instead of failing");
  cmd->add_option("--len", demo->seq_len, "--demo: sequence length L; default 8192")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--heads", demo->num_q_heads, "--demo: query heads Hq; default 4")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--kv-heads", demo->num_kv_heads, "--demo: KV heads Hkv (divides Hq); default 1")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--head-dim", demo->head_dim, "--demo: head dim d (even, >= 16); default 128")
      ->check(CLI::Range(16, 1024));
  cmd->add_option(
         "--density", demo->target_density,
         "--demo: predicted density (cost model) the default patterns are sized to; adaptive variants "
         "are capped at twice it; default 0.15")
      ->check(CLI::Range(0.001, 1.0));
  cmd->add_option("--seed", demo->seed, "--demo: seed of the synthetic input; default 1");

  cmd->callback([&body, file, options, demo, run_demo] {
    body = [file, options, demo, run_demo]() -> int {
      Status status;
      if (*run_demo) {
        if (!file->input.empty()) {
          return report_error(Status(StatusCode::INVALID_ARGUMENT, "--demo makes its own input; drop --in"));
        }
        demo->patterns = file->patterns;
        Result<Device> device = parse_device(file->device);
        if (!device.is_ok()) return report_error(device.status());
        status = device->is_cpu() ? run_attention_demo(*demo, *options)
                                  : run_attention_demo_cuda(*demo, *options, *device);
      } else if (file->input.empty()) {
        status = Status(StatusCode::INVALID_ARGUMENT,
                        "nothing to do: give --in FILE (Q/K/V) or --demo (see sacc attention --help)");
      } else {
        status = run_on_file(*file, *options);
      }
      return status.is_ok() ? 0 : report_error(status);
    };
  });
}

}  // namespace sacc::cli
