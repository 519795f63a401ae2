#include "attention_bench_sweep.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <random>

#include "attention/attention.h"
#include "attention/cost_model.h"
#include "attention/cuda/flash_attention_host.h"
#include "attention_bench_fill.h"
#include "attention_bench_verify.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_memory.h"
#include "core/device_info.h"
#include "core/dtype.h"
#include "reference/sparse_attention.h"
#include "runtime/attention_selector.h"

namespace sacc::bench {
namespace {

constexpr size_t kL2FlushBytes = 256ull << 20;  // > 4x the H200's 60 MB L2
constexpr int64_t kLongLength = 65536;          // above this, the long repetition count
constexpr int64_t kCheckLength = 1000;          // oracle check: not a tile multiple, several query blocks
constexpr double kCheckDensity = 0.3;
constexpr SweepPattern kPatterns[] = {SweepPattern::TRIANGULAR, SweepPattern::INTERVAL_SLASH,
                                      SweepPattern::BLOCK_CLUSTER};

// One slot's kept key blocks (ascending) and gathered columns (ascending, outside the kept blocks).
struct Slot {
  std::vector<int32_t> blocks, columns;
};

Slot fixed_density_slot(const IndexGeometry& g, int64_t q_block, SweepPattern pattern, double density,
                        std::mt19937_64& rng) {
  const int32_t last = static_cast<int32_t>(g.last_causal_k_block(q_block));  // the diagonal block
  const int32_t causal = last + 1;
  Slot slot;
  if (density >= 1.0) {
    for (int32_t b = 0; b < causal; ++b) slot.blocks.push_back(b);
    return slot;
  }
  const int32_t budget = std::max<int32_t>(1, static_cast<int32_t>(std::lround(density * causal)));
  std::vector<bool> kept(causal, false);
  auto keep = [&](int32_t b) {
    if (b >= 0 && b < causal) kept[b] = true;
  };
  switch (pattern) {
    case SweepPattern::TRIANGULAR:  // block 0 (sinks) + a window ending at the diagonal
      keep(0);
      for (int32_t b = last; b > last - (budget - 1); --b) keep(b);
      break;
    case SweepPattern::BLOCK_CLUSTER: {  // block 0, the diagonal, random others
      keep(0);
      keep(last);
      std::vector<int32_t> others;
      for (int32_t b = 1; b < last; ++b) others.push_back(b);
      std::shuffle(others.begin(), others.end(), rng);
      const int32_t extra = std::max<int32_t>(0, budget - 2);
      for (int32_t i = 0; i < std::min<int32_t>(extra, static_cast<int32_t>(others.size())); ++i)
        keep(others[i]);
      break;
    }
    case SweepPattern::INTERVAL_SLASH: {  // slash blocks spread from the diagonal + vertical columns
      const int32_t slash_blocks = std::max<int32_t>(1, (budget + 1) / 2);
      for (int32_t i = 0; i < slash_blocks; ++i)
        keep(last - static_cast<int32_t>(int64_t{i} * causal / slash_blocks));
      const int64_t columns = int64_t{budget - slash_blocks} * g.block_k;
      const int64_t last_key = std::min(g.seq_len, (q_block + 1) * g.block_q) - 1;
      // Evenly spaced keys over the slot's causal range, outside the kept blocks.
      const int64_t stride = std::max<int64_t>(1, (last_key + 1) / std::max<int64_t>(1, columns));
      for (int64_t key = 1; key <= last_key && static_cast<int64_t>(slot.columns.size()) < columns;
           key += stride) {
        if (!kept[key / g.block_k]) slot.columns.push_back(static_cast<int32_t>(key));
      }
      break;
    }
  }
  for (int32_t b = 0; b < causal; ++b)
    if (kept[b]) slot.blocks.push_back(b);
  return slot;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0.0 : n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Device copy of a host index, viewed as the kernels read it.
struct DeviceIndex {
  DeviceBuffer block_offsets, block_ids, column_offsets, column_ids;
  SparseIndexView view;

  static Result<DeviceIndex> upload(const SparseIndex& index, int device) {
    DeviceIndex d;
    auto put = [device](const std::vector<int32_t>& host, DeviceBuffer& buffer) -> Status {
      SACC_ASSIGN_OR_RETURN(
          buffer, DeviceBuffer::create(device, std::max<size_t>(4, host.size() * 4), "sweep index"));
      if (!host.empty())
        SACC_CUDA_TRY(cudaMemcpy(buffer.data(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
      return Status::ok();
    };
    SACC_RETURN_IF_ERROR(put(index.block_offsets, d.block_offsets));
    SACC_RETURN_IF_ERROR(put(index.block_ids, d.block_ids));
    SACC_RETURN_IF_ERROR(put(index.column_offsets, d.column_offsets));
    SACC_RETURN_IF_ERROR(put(index.column_ids, d.column_ids));
    d.view.geometry = index.geometry;
    d.view.block_offsets = d.block_offsets.as<int32_t>();
    d.view.block_ids = d.block_ids.as<int32_t>();
    d.view.column_offsets = d.column_offsets.as<int32_t>();
    d.view.column_ids = d.column_ids.as<int32_t>();
    return d;
  }
};

struct SweepRow {
  std::string shape, pattern;  // pattern "dense": our dense kernel (no index)
  int64_t seq_len = 0;
  double target = 1.0, density = 1.0;  // asked for / measured (cost model: tiles + columns / Bk)
  double ms = 0.0, visited_tflops = 0.0, ratio = 0.0;
};

// Oracle check at kCheckLength: every pattern at kCheckDensity through the selector's kernel.
Status verify_shape(const BenchShape& shape, std::vector<std::string>& lines) {
  const AttentionShape s = shape.at(kCheckLength);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  auto make = [&](int64_t count, std::vector<uint16_t>& bits, std::vector<float>& values) {
    bits.resize(count);
    values.resize(count);
    for (int64_t i = 0; i < count; ++i) {
      bits[i] = float_to_bf16(2.0f * unit(rng));
      values[i] = bf16_to_float(bits[i]);
    }
  };
  std::vector<uint16_t> q, k, v;
  std::vector<float> qf, kf, vf;
  make(s.seq_len * s.num_q_heads * s.head_dim, q, qf);
  make(s.seq_len * s.num_kv_heads * s.head_dim, k, kf);
  make(s.seq_len * s.num_kv_heads * s.head_dim, v, vf);
  const ref::QkvView view{s, qf.data(), kf.data(), vf.data(), 0.0};
  IndexGeometry g;
  g.seq_len = s.seq_len;
  g.num_heads = s.num_q_heads;
  int device = 0;
  SACC_CUDA_TRY(cudaGetDevice(&device));
  SACC_ASSIGN_OR_RETURN(const FlashKernelChoice kernel, flash_kernel_for_device(device, &g, s.group_size()));
  for (SweepPattern pattern : kPatterns) {
    const SparseIndex index = fixed_density_index(g, pattern, kCheckDensity, 11);
    SACC_RETURN_IF_ERROR(index.validate().with_context(sweep_pattern_name(pattern)));
    SACC_ASSIGN_OR_RETURN(const ref::AttentionResult want, ref::sparse_attention(view, index));
    SACC_ASSIGN_OR_RETURN(const FlashHostOutput got,
                          flash_attention_host(s, q.data(), k.data(), v.data(), &index, kernel));
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < want.o.size(); ++i) {
      const double d = bf16_to_float(got.o[i]) - want.o[i];
      err += d * d;
      norm += want.o[i] * want.o[i];
    }
    const double rel = std::sqrt(err / std::max(norm, 1e-30));
    lines.push_back(fmt::format("{} L={} {} density {}: rel. L2 error of O vs the fp64 oracle {:.2e} ({})",
                                shape.name, kCheckLength, sweep_pattern_name(pattern), kCheckDensity, rel,
                                rel <= kLargeShapeTolerance ? "ok" : "FAILED"));
    if (!(rel <= kLargeShapeTolerance)) return make_error(StatusCode::INTERNAL, "{}", lines.back());
  }
  return Status::ok();
}

// Median kernel time of `reps` runs after one warm-up, the L2 flushed before each.
Result<double> time_kernel(const AttentionParams& params, const SparseIndexView* maybe_index,
                           FlashKernelChoice kernel, const DeviceBuffer& workspace, const DeviceBuffer& flush,
                           int reps, cudaStream_t stream) {
  cudaEvent_t start = nullptr, stop = nullptr;
  SACC_CUDA_TRY(cudaEventCreate(&start));
  SACC_CUDA_TRY(cudaEventCreate(&stop));
  std::vector<double> times;
  Status status = Status::ok();
  for (int rep = -1; rep < reps && status.is_ok(); ++rep) {
    cudaMemsetAsync(flush.data(), rep & 0xff, flush.size(), stream);
    cudaEventRecord(start, stream);
    status = attention_run_cuda(params, maybe_index, kernel, workspace.data(), workspace.size(), stream);
    cudaEventRecord(stop, stream);
    if (cudaEventSynchronize(stop) != cudaSuccess)
      status = make_error(StatusCode::INTERNAL, "sweep kernel failed");
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    if (rep >= 0) times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  SACC_RETURN_IF_ERROR(status);
  return median(times);
}

// One shape's inputs at one length, its kernels and our dense kernel's rate.
struct ShapeRun {
  BenchShape shape;
  AttentionShape s;
  DeviceBuffer q, k, v, o, workspace;
  AttentionParams params;
  IndexGeometry geometry;  // one index head per query head, the kernel tile
  FlashKernelChoice dense_kernel, sparse_kernel;
  double dense_tflops = 0.0;
};

Result<ShapeRun> prepare_shape(const BenchShape& shape, int64_t L, const SweepOptions& opt,
                               cudaStream_t stream) {
  ShapeRun r;
  r.shape = shape;
  r.s = shape.at(L);
  const int64_t q_count = L * r.s.num_q_heads * r.s.head_dim, kv_count = L * r.s.num_kv_heads * r.s.head_dim;
  SACC_ASSIGN_OR_RETURN(r.q, DeviceBuffer::create(opt.device, q_count * 2, "sweep Q"));
  SACC_ASSIGN_OR_RETURN(r.k, DeviceBuffer::create(opt.device, kv_count * 2, "sweep K"));
  SACC_ASSIGN_OR_RETURN(r.v, DeviceBuffer::create(opt.device, kv_count * 2, "sweep V"));
  SACC_ASSIGN_OR_RETURN(r.o, DeviceBuffer::create(opt.device, q_count * 2, "sweep O"));
  SACC_CUDA_TRY(fill_random_bf16(r.q.data(), q_count, L * 3 + 0, 1.0f, stream));
  SACC_CUDA_TRY(fill_random_bf16(r.k.data(), kv_count, L * 3 + 1, 1.0f, stream));
  SACC_CUDA_TRY(fill_random_bf16(r.v.data(), kv_count, L * 3 + 2, 1.0f, stream));
  r.params.shape = r.s;
  r.params.q = r.q.data();
  r.params.k = r.k.data();
  r.params.v = r.v.data();
  r.params.o = r.o.data();
  r.geometry.seq_len = L;
  r.geometry.num_heads = r.s.num_q_heads;
  SACC_ASSIGN_OR_RETURN(const AttentionSelection sel, attention_select_cuda(r.s, &r.geometry));
  SACC_ASSIGN_OR_RETURN(
      r.workspace,
      DeviceBuffer::create(opt.device, std::max<size_t>(1, sel.workspace_bytes), "sweep workspace"));
  SACC_ASSIGN_OR_RETURN(r.dense_kernel, flash_kernel_for_device(opt.device, nullptr, r.s.group_size()));
  SACC_ASSIGN_OR_RETURN(r.sparse_kernel, flash_kernel_for_device(opt.device, &r.geometry, r.s.group_size()));
  return r;
}

void print_row(const SweepRow& r) {
  std::printf(
      "%s L=%lld %-14s density %.3f (asked %.2f): %.3f ms, %.1f TFLOP/s on visited tiles, %.2fx dense\n",
      r.shape.c_str(), static_cast<long long>(r.seq_len), r.pattern.c_str(), r.density, r.target, r.ms,
      r.visited_tflops, r.ratio);
  std::fflush(stdout);
}

// Every pattern and density at one length: our dense kernel first on each shape (the reference rate), then
// each fixed-density index, built once and run on every shape of its head count.
Status sweep_length(int64_t L, const std::vector<BenchShape>& shapes, const SweepOptions& opt,
                    cudaStream_t stream, std::vector<SweepRow>& rows) {
  const int reps = L > kLongLength ? opt.reps_long : opt.reps;
  SACC_ASSIGN_OR_RETURN(DeviceBuffer flush, DeviceBuffer::create(opt.device, kL2FlushBytes, "L2 flush"));
  std::vector<ShapeRun> runs;
  for (const BenchShape& shape : shapes) {
    SACC_ASSIGN_OR_RETURN(ShapeRun r, prepare_shape(shape, L, opt, stream));
    SACC_ASSIGN_OR_RETURN(const double ms,
                          time_kernel(r.params, nullptr, r.dense_kernel, r.workspace, flush, reps, stream));
    const AttentionCost cost = index_cost(SparseIndex::dense(r.geometry), r.s.head_dim);
    r.dense_tflops = cost.kernel_flops / (ms * 1e-3) / 1e12;
    rows.push_back(SweepRow{shape.name, "dense", L, 1.0, 1.0, ms, r.dense_tflops, 1.0});
    print_row(rows.back());
    runs.push_back(std::move(r));
  }
  for (SweepPattern pattern : kPatterns) {
    for (double density : opt.densities) {
      SparseIndex index;
      for (ShapeRun& r : runs) {
        if (index.geometry.num_heads != r.geometry.num_heads || index.geometry.seq_len != L)
          index = fixed_density_index(r.geometry, pattern, density, static_cast<uint64_t>(L));
        const AttentionCost cost = index_cost(index, r.s.head_dim);
        SACC_ASSIGN_OR_RETURN(DeviceIndex device_index, DeviceIndex::upload(index, opt.device));
        SACC_ASSIGN_OR_RETURN(const double ms, time_kernel(r.params, &device_index.view, r.sparse_kernel,
                                                           r.workspace, flush, reps, stream));
        const double tflops = cost.kernel_flops / (ms * 1e-3) / 1e12;
        rows.push_back(SweepRow{r.shape.name, sweep_pattern_name(pattern), L, density, cost.density(), ms,
                                tflops, tflops / r.dense_tflops});
        print_row(rows.back());
      }
    }
  }
  return Status::ok();
}

}  // namespace

const char* sweep_pattern_name(SweepPattern pattern) {
  switch (pattern) {
    case SweepPattern::TRIANGULAR:
      return "triangular";
    case SweepPattern::INTERVAL_SLASH:
      return "interval-slash";
    case SweepPattern::BLOCK_CLUSTER:
      return "block-cluster";
  }
  return "unknown";
}

SparseIndex fixed_density_index(const IndexGeometry& geometry, SweepPattern pattern, double density,
                                uint64_t seed) {
  SparseIndex index;
  index.geometry = geometry;
  index.block_offsets.push_back(0);
  index.column_offsets.push_back(0);
  std::mt19937_64 rng(seed);
  for (int h = 0; h < geometry.num_heads; ++h) {
    for (int64_t qb = 0; qb < geometry.num_q_blocks(); ++qb) {
      const Slot slot = fixed_density_slot(geometry, qb, pattern, density, rng);
      index.block_ids.insert(index.block_ids.end(), slot.blocks.begin(), slot.blocks.end());
      index.column_ids.insert(index.column_ids.end(), slot.columns.begin(), slot.columns.end());
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
      index.column_offsets.push_back(static_cast<int32_t>(index.column_ids.size()));
    }
  }
  return index;
}

int run_density_sweep(const SweepOptions& opt, const std::vector<BenchShape>& shapes,
                      const std::string& command) {
  if (cudaSetDevice(opt.device) != cudaSuccess)
    return std::fprintf(stderr, "cannot use cuda:%d\n", opt.device), 2;
  Result<GpuInfo> gpu = query_gpu(opt.device);
  const std::string gpu_name =
      gpu.is_ok() ? fmt::format("{} ({} SMs)", gpu->name, gpu->multiprocessors) : "unknown";
  const std::string date = fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(std::time(nullptr)));
  std::printf("attention_bench --density-sweep: %s, commit %s\n", gpu_name.c_str(), opt.commit.c_str());
  std::vector<std::string> checks;
  for (const BenchShape& shape : shapes) {
    const size_t first = checks.size();
    const Status st = verify_shape(shape, checks);
    for (size_t i = first; i < checks.size(); ++i) std::printf("check: %s\n", checks[i].c_str());
    if (!st.is_ok()) return std::fprintf(stderr, "%s\nno timings\n", st.to_string().c_str()), 1;
  }
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) return 1;
  std::vector<SweepRow> rows;
  for (int64_t L : opt.lengths) {
    if (Status st = sweep_length(L, shapes, opt, stream, rows); !st.is_ok()) {
      std::fprintf(stderr, "L=%lld: %s\n", static_cast<long long>(L), st.to_string().c_str());
      cudaStreamDestroy(stream);
      return 1;
    }
  }
  cudaStreamDestroy(stream);

  std::string md = fmt::format(
      "# Flash kernels on fixed-density indices ({})\n\n"
      "GPU: {}. Commit: {}. Date: {}.\n\nCommand: `{}`\n\n"
      "Kernel time alone (no plan step): median of {} runs ({} above 64K tokens) after one warm-up, L2 "
      "flushed "
      "before each; uniform random bf16 inputs; one index per query head (Hq = 32, Hkv = 8). Density = "
      "(visited "
      "tiles + gathered columns / Bk) / causal tiles; TFLOP/s = FLOPs of the visited tiles and columns / "
      "time; "
      "ratio = that rate / our dense kernel's rate on the same shape and length. Kernel body and GQA "
      "packing: "
      "the attention selector's default for this GPU.\n\nOracle checks:\n\n",
      "attention_bench --density-sweep", gpu_name, opt.commit, date, command, opt.reps, opt.reps_long);
  for (const std::string& line : checks) md += "- " + line + "\n";
  for (const BenchShape& shape : shapes) {
    for (int64_t L : opt.lengths) {
      md += fmt::format(
          "\n## {} (d {}), L = {}\n\n| pattern | density asked | density | ms | TFLOP/s (visited) "
          "| ratio to dense |\n| --- | --- | --- | --- | --- | --- |\n",
          shape.name, shape.head_dim, L);
      for (const SweepRow& r : rows) {
        if (r.shape != shape.name || r.seq_len != L) continue;
        md += fmt::format("| {} | {:.2f} | {:.3f} | {:.3f} | {:.1f} | {:.2f} |\n", r.pattern, r.target,
                          r.density, r.ms, r.visited_tflops, r.ratio);
      }
    }
  }
  std::ofstream out(opt.out + ".md");
  out << md;
  if (!out) return std::fprintf(stderr, "cannot write %s.md\n", opt.out.c_str()), 1;
  std::printf("\nwrote %s.md\n", opt.out.c_str());
  return 0;
}

}  // namespace sacc::bench
