// The attention benchmark (issue 3 item 7): verifies, then times one layer of causal GQA attention on the GPU
// for the dense baselines (eager, cuDNN), our dense flash kernel and the sparse patterns, side by side in one
// run.
//
//   attention_bench --minference ../shared/data/minference/Llama_3.1_8B_Instruct_128k_heads.json
//       --lengths 4096,8192,16384 --out bench/results/attention_h200
//
// Method (../shared/BENCH.md): CUDA events around plan + run, one warm-up, L2 flushed and inputs regenerated
// before every repetition, median of >= 5 repetitions (>= 3 above 64K). Host code lives in .cpp files because
// nvcc cannot compile fmt's compile-time format strings; the device helpers are in attention_bench_fill.cu.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "attention/cost_model.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention_bench.h"
#include "attention_bench_fill.h"
#include "attention_bench_inputs.h"
#include "attention_bench_methods.h"
#include "attention_bench_report.h"
#include "attention_bench_sweep.h"
#include "attention_bench_verify.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/tensor.h"

namespace sacc::bench {

const char* method_name(Method method) {
  switch (method) {
    case Method::EAGER:
      return "eager";
    case Method::DENSE:
      return "dense";
    case Method::CUDNN:
      return "cudnn";
    case Method::TRIANGULAR:
      return "triangular";
    case Method::INTERVAL_SLASH:
      return "interval-slash";
    case Method::BLOCK_CLUSTER:
      return "block-cluster";
    case Method::ADAPTIVE:
      return "adaptive";
  }
  return "unknown";
}

bool is_sparse(Method method) {
  return method == Method::TRIANGULAR || method == Method::INTERVAL_SLASH ||
         method == Method::BLOCK_CLUSTER || method == Method::ADAPTIVE;
}

namespace {

constexpr size_t kL2FlushBytes = 256ull << 20;  // > 4x the H200's 60 MB L2
constexpr int64_t kLongLength = 65536;          // above this, 3 repetitions are enough (BENCH.md)
constexpr uint64_t kCheckSeed = 0x5acc;

struct Options {
  std::vector<std::string> shapes = {"llama-3.1-8b", "d64"};
  std::vector<int64_t> lengths = {4096, 8192, 16384, 32768, 65536, 131072, 262144};
  std::vector<std::string> methods = {"eager",          "dense",         "cudnn",   "triangular",
                                      "interval-slash", "block-cluster", "adaptive"};
  int reps = 5, reps_long = 3;
  std::string minference = "../shared/data/minference/Llama_3.1_8B_Instruct_128k_heads.json";
  std::string out = "bench/results/attention_h200";
  std::string inputs =
      "structured";  // or "random" (uniform: near-uniform attention, see attention_bench_inputs.h)
  std::string driver, commit = "unknown";
  double max_seconds = 0.0;  // 0: no limit; else lengths not started within it are reported as not run
  int device = 0;
  double density = 0.0;  // > 0: triangular / block-cluster rows at this predicted density (else equal cost)
};

Result<BenchShape> shape_named(const std::string& name) {
  if (name == "llama-3.1-8b") return BenchShape{name, 32, 8, 128};
  if (name == "d64") return BenchShape{name, 32, 8, 64};
  return make_error(StatusCode::INVALID_ARGUMENT, "unknown shape '{}' (llama-3.1-8b, d64)", name);
}

Result<Method> method_named(const std::string& name) {
  for (Method m : {Method::EAGER, Method::DENSE, Method::CUDNN, Method::TRIANGULAR, Method::INTERVAL_SLASH,
                   Method::BLOCK_CLUSTER, Method::ADAPTIVE}) {
    if (name == method_name(m)) return m;
  }
  return make_error(StatusCode::INVALID_ARGUMENT, "unknown method '{}'", name);
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Device tensors of one (shape, L): inputs, output, the cuDNN output kept as the large-shape reference, LSE.
struct Tensors {
  DeviceBuffer q, k, v, o, o_cudnn, lse, flush;
  int64_t q_count = 0, kv_count = 0;
  AttentionShape shape;
  std::optional<StructuredInput> structured;  // absent: uniform random inputs

  static Result<Tensors> create(const AttentionShape& s, bool structured, int device) {
    Tensors t;
    t.shape = s;
    if (structured) {
      SACC_ASSIGN_OR_RETURN(t.structured,
                            StructuredInput::create(s, static_cast<uint64_t>(s.seq_len), device));
    }
    t.q_count = s.seq_len * s.num_q_heads * s.head_dim;
    t.kv_count = s.seq_len * s.num_kv_heads * s.head_dim;
    SACC_ASSIGN_OR_RETURN(t.q, DeviceBuffer::create(device, t.q_count * 2, "bench Q"));
    SACC_ASSIGN_OR_RETURN(t.k, DeviceBuffer::create(device, t.kv_count * 2, "bench K"));
    SACC_ASSIGN_OR_RETURN(t.v, DeviceBuffer::create(device, t.kv_count * 2, "bench V"));
    SACC_ASSIGN_OR_RETURN(t.o, DeviceBuffer::create(device, t.q_count * 2, "bench O"));
    SACC_ASSIGN_OR_RETURN(t.o_cudnn, DeviceBuffer::create(device, t.q_count * 2, "bench cuDNN O"));
    SACC_ASSIGN_OR_RETURN(t.lse, DeviceBuffer::create(device, s.num_q_heads * s.seq_len * 4, "bench LSE"));
    SACC_ASSIGN_OR_RETURN(t.flush, DeviceBuffer::create(device, kL2FlushBytes, "L2 flush buffer"));
    return t;
  }

  AttentionParams params(const AttentionShape& s, void* o_target) const {
    AttentionParams p;
    p.shape = s;
    p.q = q.data();
    p.k = k.data();
    p.v = v.data();
    p.o = o_target;
    p.maybe_lse = lse.as<float>();
    return p;
  }

  Status fill(uint64_t seed, cudaStream_t stream) const {
    if (structured) {
      SACC_CUDA_TRY(fill_structured_qkv(q.data(), k.data(), v.data(), shape.seq_len, shape.num_q_heads,
                                        shape.num_kv_heads, shape.head_dim, structured->tables(), seed,
                                        stream));
      return Status::ok();
    }
    SACC_CUDA_TRY(fill_random_bf16(q.data(), q_count, seed * 3 + 0, 1.0f, stream));
    SACC_CUDA_TRY(fill_random_bf16(k.data(), kv_count, seed * 3 + 1, 1.0f, stream));
    SACC_CUDA_TRY(fill_random_bf16(v.data(), kv_count, seed * 3 + 2, 1.0f, stream));
    return Status::ok();
  }
};

struct Events {
  cudaEvent_t start = nullptr, after_plan = nullptr, stop = nullptr;
  Events() {
    cudaEventCreate(&start);
    cudaEventCreate(&after_plan);
    cudaEventCreate(&stop);
  }
  ~Events() {
    cudaEventDestroy(start);
    cudaEventDestroy(after_plan);
    cudaEventDestroy(stop);
  }
};

// Warm-up, then `reps` timed repetitions, each on fresh inputs with the L2 flushed first.
Status time_method(MethodRunner& runner, const Tensors& t, const AttentionShape& s, int reps, uint64_t seed,
                   cudaStream_t stream, Row& row) {
  Events ev;
  const AttentionParams params = t.params(s, t.o.data());
  for (int rep = -1; rep < reps; ++rep) {
    SACC_RETURN_IF_ERROR(t.fill(seed + static_cast<uint64_t>(rep + 1), stream));
    SACC_CUDA_TRY(cudaMemsetAsync(t.flush.data(), rep & 0xff, kL2FlushBytes, stream));
    SACC_CUDA_TRY(cudaEventRecord(ev.start, stream));
    SACC_RETURN_IF_ERROR(runner.enqueue(params, ev.after_plan, stream));
    SACC_CUDA_TRY(cudaEventRecord(ev.stop, stream));
    SACC_CUDA_TRY(cudaEventSynchronize(ev.stop));
    if (rep < 0) continue;
    float total = 0.0f, plan = 0.0f;
    SACC_CUDA_TRY(cudaEventElapsedTime(&total, ev.start, ev.stop));
    SACC_CUDA_TRY(cudaEventElapsedTime(&plan, ev.start, ev.after_plan));
    row.total_ms.push_back(total);
    row.plan_ms.push_back(plan);
  }
  row.median_ms = median(row.total_ms);
  row.median_plan_ms = median(row.plan_ms);
  return Status::ok();
}

// Runs the method once on the check input into `o_target` (the cuDNN reference, or O to compare with it).
Status run_check_input(MethodRunner& runner, const Tensors& t, const AttentionShape& s, void* o_target,
                       cudaStream_t stream) {
  Events ev;
  SACC_RETURN_IF_ERROR(t.fill(kCheckSeed, stream));
  SACC_RETURN_IF_ERROR(runner.enqueue(t.params(s, o_target), ev.after_plan, stream));
  SACC_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::ok();
}

// One method at one (shape, L): set up, check against cuDNN where that applies, time, fill the row.
Row bench_method(Method method, const BenchShape& shape, int64_t L, const LayerBudgets& budgets,
                 const Tensors& t, bool have_cudnn_reference, const Options& opt, cudaStream_t stream) {
  const AttentionShape s = shape.at(L);
  Row row;
  row.shape = shape.name;
  row.seq_len = L;
  row.method = method;
  auto fail = [&](const Status& status) {
    row.status = status.code() == StatusCode::OUT_OF_MEMORY ? "OOM: " + status.message()
                 : status.code() == StatusCode::UNSUPPORTED ? "unsupported: " + status.message()
                                                            : "error: " + status.to_string();
    std::replace(row.status.begin(), row.status.end(), '\n', ' ');
    return row;
  };
  Result<MethodSetup> setup = setup_method(method, s, budgets, opt.density);
  if (!setup.is_ok()) return fail(setup.status());
  row.pattern = setup->pattern;
  DeviceAllocator::reset_peak(opt.device);
  const uint64_t in_use_before = DeviceAllocator::stats(opt.device).in_use;
  Result<MethodRunner> runner = MethodRunner::create(*setup, s, opt.device);
  if (!runner.is_ok()) return fail(runner.status());

  if (method == Method::CUDNN) {
    if (Status st = run_check_input(*runner, t, s, t.o_cudnn.data(), stream); !st.is_ok()) return fail(st);
  } else if ((method == Method::DENSE || method == Method::EAGER) && have_cudnn_reference) {
    if (Status st = run_check_input(*runner, t, s, t.o.data(), stream); !st.is_ok()) return fail(st);
    double error = 0.0;
    if (Status st =
            cuda_status(relative_l2_error_bf16(t.o.data(), t.o_cudnn.data(), t.q_count, &error, stream),
                        "comparing with cuDNN");
        !st.is_ok()) {
      return fail(st);
    }
    row.check_error = error;
    if (!(error <= kLargeShapeTolerance)) {
      row.status =
          fmt::format("FAILED check: rel. L2 error {:.3e} vs cuDNN > {}", error, kLargeShapeTolerance);
      return row;
    }
  }

  const int reps = L > kLongLength ? opt.reps_long : opt.reps;
  const uint64_t seed = static_cast<uint64_t>(L) * 1000 + static_cast<uint64_t>(method) * 100;
  if (Status st = time_method(*runner, t, s, reps, seed, stream, row); !st.is_ok()) return fail(st);
  // cuDNN's own workspace goes through DeviceBuffer too; its library-internal allocations are not seen here.
  row.workspace_mib =
      static_cast<double>(DeviceAllocator::stats(opt.device).peak - in_use_before) / (1 << 20);
  const double flops = causal_flops(s);
  row.tflops = flops / (row.median_ms * 1e-3) / 1e12;
  if (is_sparse(method)) {
    Result<SparseIndex> index = runner->last_index(stream);
    if (!index.is_ok()) return fail(index.status());
    const AttentionCost cost = index_cost(*index, s.head_dim);
    row.density = cost.density();
    row.estimation_share = row.median_ms > 0.0 ? row.median_plan_ms / row.median_ms : 0.0;
    const double run_ms = row.median_ms - row.median_plan_ms;
    row.visited_tflops = run_ms > 0.0 ? cost.kernel_flops / (run_ms * 1e-3) / 1e12 : 0.0;
  }
  return row;
}

Row blank_row(const std::string& shape, int64_t L, Method method) {
  Row row;
  row.shape = shape;
  row.seq_len = L;
  row.method = method;
  return row;
}

std::string join_command(int argc, char** argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  return command;
}

int run(const Options& opt, const std::string& command) {
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "attention_bench: no CUDA device visible; run it on the GPU machine\n");
    return 2;
  }
  std::vector<BenchShape> shapes;
  for (const std::string& name : opt.shapes) {
    Result<BenchShape> s = shape_named(name);
    if (!s.is_ok()) return std::fprintf(stderr, "%s\n", s.status().to_string().c_str()), 2;
    shapes.push_back(*s);
  }
  std::vector<Method> methods;
  for (const std::string& name : opt.methods) {
    Result<Method> m = method_named(name);
    if (!m.is_ok()) return std::fprintf(stderr, "%s\n", m.status().to_string().c_str()), 2;
    methods.push_back(*m);
  }
  // cuDNN first: it is the reference every later row is checked and compared against.
  std::stable_sort(methods.begin(), methods.end(),
                   [](Method a, Method b) { return (a == Method::CUDNN) > (b == Method::CUDNN); });
  Result<std::vector<LayerBudgets>> layers = load_minference_budgets(opt.minference);
  if (!layers.is_ok()) return std::fprintf(stderr, "%s\n", layers.status().to_string().c_str()), 2;
  const LayerBudgets& budgets = typical_layer(*layers);
  if (cudaSetDevice(opt.device) != cudaSuccess)
    return std::fprintf(stderr, "cannot use cuda:%d\n", opt.device), 2;

  RunInfo info;
  Result<GpuInfo> gpu = query_gpu(opt.device);
  info.gpu = gpu.is_ok() ? fmt::format("{} ({} SMs, {})", gpu->name, gpu->multiprocessors,
                                       format_bytes(gpu->total_memory))
                         : "unknown";
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  info.driver =
      opt.driver.empty() ? fmt::format("CUDA {}.{}", driver / 1000, driver % 1000 / 10) : opt.driver;
  info.cuda_runtime = fmt::format("{}.{}", runtime / 1000, runtime % 1000 / 10);
  const Status cudnn = cudnn_sdpa_available();
  info.cudnn = cudnn.is_ok() ? fmt::format("{} ({})", cudnn_loaded_version(), cudnn_loaded_path())
                             : "not available: " + cudnn.message();
  info.commit = opt.commit;
  info.date = fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(std::time(nullptr)));
  info.command = command;
  if (opt.inputs != "structured" && opt.inputs != "random") {
    return std::fprintf(stderr, "--inputs must be structured or random\n"), 2;
  }
  const bool structured = opt.inputs == "structured";
  info.inputs = fmt::format(
      "{}, regenerated on the device before every repetition; sparse rows use layer {}'s budgets (the median "
      "total "
      "budget of {} layers)",
      structured
          ? "structured bf16 (planted sinks, 16 vertical columns and 4 slashes per KV head, local attention "
            "decaying with distance; fresh noise every repetition: bench/attention_bench_inputs.h)"
          : "uniform random bf16 in [-1, 1]",
      budgets.layer, layers->size());

  std::printf("attention_bench: %s, cuDNN %s, commit %s\n", info.gpu.c_str(), info.cudnn.c_str(),
              info.commit.c_str());
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<Row> rows;
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) return 1;

  for (const BenchShape& shape : shapes) {
    const SmallShapeCheck check = check_small_shape(shape, budgets, methods, opt.device);
    for (const std::string& line : check.lines) std::printf("check: %s\n", line.c_str());
    info.verification.insert(info.verification.end(), check.lines.begin(), check.lines.end());
    for (int64_t L : opt.lengths) {
      const bool out_of_time = opt.max_seconds > 0.0 && elapsed() > opt.max_seconds;
      Result<Tensors> tensors = out_of_time ? Result<Tensors>(Status(StatusCode::UNSUPPORTED, "time"))
                                            : Tensors::create(shape.at(L), structured, opt.device);
      bool have_cudnn_reference = false;
      double cudnn_ms = 0.0;
      for (Method method : methods) {
        Row row;
        if (check.failed.count(method)) {
          row = blank_row(shape.name, L, method);
          row.status = "FAILED the small-shape oracle check (see above): not timed";
        } else if (out_of_time || !tensors.is_ok()) {
          row = blank_row(shape.name, L, method);
          row.status = out_of_time ? fmt::format("not run: over the {} s time budget", opt.max_seconds)
                                   : "error: " + tensors.status().to_string();
        } else {
          row = bench_method(method, shape, L, budgets, *tensors, have_cudnn_reference, opt, stream);
        }
        if (method == Method::CUDNN && row.status == "ok") {
          have_cudnn_reference = true;
          cudnn_ms = row.median_ms;
        }
        if (cudnn_ms > 0.0 && row.status == "ok") row.speedup_vs_cudnn = cudnn_ms / row.median_ms;
        std::printf("%s L=%lld %-14s %s\n", shape.name.c_str(), static_cast<long long>(L),
                    method_name(method),
                    row.status == "ok" ? fmt::format("{:.3f} ms ({:.1f} TFLOP/s, density {:.3f})",
                                                     row.median_ms, row.tflops, row.density)
                                             .c_str()
                                       : row.status.c_str());
        std::fflush(stdout);
        rows.push_back(std::move(row));
      }
    }
  }
  cudaStreamDestroy(stream);

  for (const BenchShape& shape : shapes) {
    std::printf("\n%s (%d q heads, %d kv heads, d %d):\n%s", shape.name.c_str(), shape.num_q_heads,
                shape.num_kv_heads, shape.head_dim, markdown_table(rows, shape.name).c_str());
  }
  if (Status st = write_results(opt.out, info, shapes, rows); !st.is_ok()) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("\nwrote %s.md and %s.json (%.0f s)\n", opt.out.c_str(), opt.out.c_str(), elapsed());
  return 0;
}

// --density-sweep: the shared options (shapes, repetitions, device, commit; lengths and output path when
// given) carried into the sweep's own.
int run_sweep(const Options& opt, SweepOptions sweep, bool lengths_given, bool out_given,
              const std::string& command) {
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "attention_bench: no CUDA device visible; run it on the GPU machine\n");
    return 2;
  }
  std::vector<BenchShape> shapes;
  for (const std::string& name : opt.shapes) {
    Result<BenchShape> s = shape_named(name);
    if (!s.is_ok()) return std::fprintf(stderr, "%s\n", s.status().to_string().c_str()), 2;
    shapes.push_back(*s);
  }
  if (lengths_given) sweep.lengths = opt.lengths;
  if (out_given) sweep.out = opt.out;
  sweep.reps = opt.reps;
  sweep.reps_long = opt.reps_long;
  sweep.commit = opt.commit;
  sweep.device = opt.device;
  return run_density_sweep(sweep, shapes, command);
}

}  // namespace
}  // namespace sacc::bench

int main(int argc, char** argv) {
  sacc::bench::Options opt;
  CLI::App app{
      "Verifies, then times one layer of causal GQA attention: eager, cuDNN, our dense and sparse kernels"};
  app.add_option("--shapes", opt.shapes, "llama-3.1-8b (32/8 heads, d 128), d64 (32/8 heads, d 64)")
      ->delimiter(',');
  app.add_option("--lengths", opt.lengths, "sequence lengths")->delimiter(',');
  app.add_option("--methods", opt.methods,
                 "eager,dense,cudnn,triangular,interval-slash,block-cluster,adaptive")
      ->delimiter(',');
  app.add_option("--reps", opt.reps, "timed repetitions up to 64K (>= 5)")->check(CLI::Range(5, 1000));
  app.add_option("--reps-long", opt.reps_long, "timed repetitions above 64K (>= 3)")
      ->check(CLI::Range(3, 1000));
  app.add_option("--minference", opt.minference, "MInference per-head config (Interval-Slash budgets)");
  app.add_option("--inputs", opt.inputs, "structured (default) or random");
  app.add_option("--out", opt.out, "results path without extension (.md and .json are written)");
  app.add_option("--driver", opt.driver, "driver version to record (e.g. from nvidia-smi)");
  app.add_option("--commit", opt.commit, "source commit to record");
  app.add_option("--max-seconds", opt.max_seconds,
                 "lengths not started within this many seconds are skipped");
  app.add_option("--device", opt.device, "CUDA device ordinal");
  app.add_option("--density", opt.density,
                 "triangular and block-cluster rows at this predicted density of the causal tiles (e.g. "
                 "0.05), plan included as always; default: equal predicted cost to the MInference layer")
      ->check(CLI::Range(0.001, 1.0));
  bool density_sweep = false;
  sacc::bench::SweepOptions sweep;
  app.add_flag(
      "--density-sweep", density_sweep,
      "instead: our kernels on fixed-density indices of each pattern (time, visited-tile TFLOP/s, ratio "
      "to our dense rate); lengths default to 32768,131072, output to bench/results/density_sweep_h200");
  app.add_option("--densities", sweep.densities, "--density-sweep: densities (default 0.02 ... 1.0)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  const std::string command = sacc::bench::join_command(argc, argv);
  if (density_sweep) {
    return sacc::bench::run_sweep(opt, sweep, app.count("--lengths") > 0, app.count("--out") > 0, command);
  }
  return sacc::bench::run(opt, command);
}
