// Micro-benchmark of the flash kernel family: verifies first (fp64 oracle on a small shape, sampled fp64 rows
// at every timed length), then times dense causal and a mixed-budget sparse index with CUDA events, warm-up,
// an L2 flush before every repetition and the median. Prints a markdown table; --json writes the same rows.
//   flash_bench [--lens 4096,8192,...] [--heads 32] [--kv-heads 8] [--dim 128] [--reps 7] [--json out.json]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attention/attention.h"
#include "core/dtype.h"
#include "reference/dense_attention.h"
#include "reference/sparse_attention.h"
#include "runtime/attention_selector.h"

namespace sacc {
namespace {

#define BENCH_CHECK(expr)                                                           \
  do {                                                                              \
    cudaError_t e_ = (expr);                                                        \
    if (e_ != cudaSuccess) {                                                        \
      std::fprintf(stderr, "flash_bench: %s: %s\n", #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

void check_status(const Status& s, const char* what) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "flash_bench: %s: %s\n", what, s.to_string().c_str());
    std::exit(1);
  }
}

struct Options {
  std::vector<int64_t> lens{4096, 8192, 16384, 32768, 65536, 131072};
  int heads = 32, kv_heads = 8, dim = 128, reps = 7;
  std::string json;
};

// Host bf16 values, N(0, 1) * scale, generated in parallel (splitmix64 per element; 1 GiB in about a second).
std::vector<uint16_t> random_bf16(int64_t count, uint64_t seed, float scale) {
  std::vector<uint16_t> out(count);
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int64_t i = t; i < count; i += threads) {
        uint64_t z = seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(i + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        // Sum of four uniforms: close enough to normal for attention logits, cheap.
        float u = 0;
        for (int k = 0; k < 4; ++k) u += static_cast<float>((z >> (16 * k)) & 0xffff) / 65535.0f;
        out[i] = float_to_bf16((u - 2.0f) * 1.7320508f * scale);
      }
    });
  }
  for (auto& th : pool) th.join();
  return out;
}

// Mixed budgets, as real layers have: head h keeps the first key block, a local window of w(h) blocks and
// r(h) random blocks, plus c(h) single columns outside them. Budgets differ by ~20x across heads.
// shared: one index per KV group (heads = Hkv), so the group's query heads read the same K/V blocks.
SparseIndex mixed_budget_index(int64_t seq_len, int heads, uint64_t seed, bool shared) {
  SparseIndex index;
  IndexGeometry& g = index.geometry;
  g.seq_len = seq_len;
  g.num_heads = heads;
  g.shared_per_kv_group = shared;
  std::mt19937_64 rng(seed);
  index.block_offsets.push_back(0);
  index.column_offsets.push_back(0);
  for (int h = 0; h < heads; ++h) {
    const int window = 2 + 2 * (h % 4);
    const int random_blocks = (h % 8) * 4;
    const int columns = 64 * (h % 3);
    for (int64_t qb = 0; qb < g.num_q_blocks(); ++qb) {
      const int64_t last = g.last_causal_k_block(qb);
      std::vector<char> kept(last + 1, 0);
      kept[0] = 1;
      for (int64_t kb = std::max<int64_t>(0, last - window + 1); kb <= last; ++kb) kept[kb] = 1;
      for (int r = 0; r < random_blocks; ++r) kept[rng() % (last + 1)] = 1;
      for (int64_t kb = 0; kb <= last; ++kb)
        if (kept[kb]) index.block_ids.push_back(static_cast<int32_t>(kb));
      index.block_offsets.push_back(static_cast<int32_t>(index.block_ids.size()));
      const int64_t last_key = std::min(seq_len, (qb + 1) * g.block_q) - 1;
      std::vector<int32_t> picked;
      for (int c = 0; c < columns; ++c) {
        const int32_t key = static_cast<int32_t>(rng() % (last_key + 1));
        if (!kept[key / g.block_k]) picked.push_back(key);
      }
      std::sort(picked.begin(), picked.end());
      picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
      index.column_ids.insert(index.column_ids.end(), picked.begin(), picked.end());
      index.column_offsets.push_back(static_cast<int32_t>(index.column_ids.size()));
    }
  }
  return index;
}

// Tiles (query tile x key tile) the kernel visits for an index (gathered columns count in tiles of Bk).
int64_t visited_tiles(const SparseIndex& index, int heads_per_index_head) {
  int64_t tiles = 0;
  for (int64_t s = 0; s + 1 < static_cast<int64_t>(index.block_offsets.size()); ++s) {
    const int64_t columns = index.column_offsets[s + 1] - index.column_offsets[s];
    tiles += index.block_offsets[s + 1] - index.block_offsets[s] +
             (columns + index.geometry.block_k - 1) / index.geometry.block_k;
  }
  return tiles * heads_per_index_head;
}

template <typename T>
T* upload(const std::vector<T>& host) {
  T* device = nullptr;
  BENCH_CHECK(cudaMalloc(&device, std::max<size_t>(1, host.size() * sizeof(T))));
  if (!host.empty())
    BENCH_CHECK(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return device;
}

struct DeviceIndex {
  SparseIndexView view;
  std::vector<int32_t*> owned;
  explicit DeviceIndex(const SparseIndex& index) {
    view.geometry = index.geometry;
    for (const auto* a : {&index.block_offsets, &index.block_ids, &index.column_offsets, &index.column_ids})
      owned.push_back(upload(*a));
    view.block_offsets = owned[0];
    view.block_ids = owned[1];
    view.column_offsets = owned[2];
    view.column_ids = owned[3];
  }
  ~DeviceIndex() {
    for (auto* p : owned) cudaFree(p);
  }
};

// The attention selector's kernel for this device (SACC_FLASH_BODY / SACC_FLASH_GQA_PACK apply).
FlashKernelChoice kernel_for(const AttentionShape& s, const IndexGeometry* maybe_geometry) {
  int device = 0;
  BENCH_CHECK(cudaGetDevice(&device));
  Result<FlashKernelChoice> choice = flash_kernel_for_device(device, maybe_geometry, s.group_size());
  check_status(choice.status(), "attention selector");
  return *choice;
}

struct Run {
  AttentionParams params;
  const SparseIndexView* maybe_index = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  FlashKernelChoice kernel;
};

void run_once(const Run& run) {
  check_status(attention_run_cuda(run.params, run.maybe_index, run.kernel, run.workspace, run.workspace_bytes,
                                  nullptr),
               "attention_run_cuda");
}

// Median milliseconds over `reps` timed runs after 2 warm-ups; the L2 (50 MB on H200) is flushed before each.
double time_median_ms(const Run& run, int reps, void* flush, size_t flush_bytes) {
  cudaEvent_t start, stop;
  BENCH_CHECK(cudaEventCreate(&start));
  BENCH_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 2; ++i) run_once(run);
  std::vector<float> times;
  for (int i = 0; i < reps; ++i) {
    BENCH_CHECK(cudaMemsetAsync(flush, i & 0xff, flush_bytes));
    BENCH_CHECK(cudaEventRecord(start));
    run_once(run);
    BENCH_CHECK(cudaEventRecord(stop));
    BENCH_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// fp64 check of `rows` sampled rows per head (always the last row) of a GPU output against an index.
double sampled_row_error(const AttentionShape& s, const std::vector<uint16_t>& q,
                         const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                         const SparseIndex& index, const std::vector<uint16_t>& o, int rows) {
  const IndexGeometry& g = index.geometry;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::mt19937_64 rng(5);
  double worst = 0;
  for (int h = 0; h < s.num_q_heads; ++h) {
    const int kvh = h / s.group_size();
    for (int r = 0; r < rows; ++r) {
      const int64_t i = r == 0 ? s.seq_len - 1 : static_cast<int64_t>(rng() % s.seq_len);
      const int index_head = g.shared_per_kv_group ? h / s.group_size() : h;
      const int64_t slot = index_head * g.num_q_blocks() + i / g.block_q;
      std::vector<int64_t> keys;
      for (int32_t at = index.block_offsets[slot]; at < index.block_offsets[slot + 1]; ++at)
        for (int64_t j = int64_t{index.block_ids[at]} * g.block_k;
             j < (index.block_ids[at] + 1) * int64_t{g.block_k} && j <= i; ++j)
          keys.push_back(j);
      for (int32_t at = index.column_offsets[slot]; at < index.column_offsets[slot + 1]; ++at)
        if (index.column_ids[at] <= i) keys.push_back(index.column_ids[at]);
      std::vector<double> logit(keys.size());
      double mx = -INFINITY;
      for (size_t n = 0; n < keys.size(); ++n) {
        double dot = 0;
        for (int c = 0; c < s.head_dim; ++c)
          dot += double{bf16_to_float(q[(i * s.num_q_heads + h) * s.head_dim + c])} *
                 bf16_to_float(k[(keys[n] * s.num_kv_heads + kvh) * s.head_dim + c]);
        logit[n] = dot * scale;
        mx = std::max(mx, logit[n]);
      }
      std::vector<double> acc(s.head_dim, 0.0);
      double sum = 0;
      for (size_t n = 0; n < keys.size(); ++n) {
        const double p = std::exp(logit[n] - mx);
        sum += p;
        for (int c = 0; c < s.head_dim; ++c)
          acc[c] += p * bf16_to_float(v[(keys[n] * s.num_kv_heads + kvh) * s.head_dim + c]);
      }
      double err = 0, norm = 0;
      for (int c = 0; c < s.head_dim; ++c) {
        const double want = acc[c] / sum;
        const double got = bf16_to_float(o[(i * s.num_q_heads + h) * s.head_dim + c]);
        err += (got - want) * (got - want);
        norm += want * want;
      }
      const double rel = std::sqrt(err / std::max(norm, 1e-30));
      worst = std::isnan(rel) ? INFINITY : std::max(worst, rel);
    }
  }
  return worst;
}

// Small-shape check against the full fp64 oracle, dense and sparse; exits on failure.
void verify_small(const Options& opt) {
  const AttentionShape s{1000, opt.heads, opt.kv_heads, opt.dim};
  const auto q = random_bf16(s.seq_len * s.num_q_heads * s.head_dim, 1, 2.0f);
  const auto k = random_bf16(s.seq_len * s.num_kv_heads * s.head_dim, 2, 1.0f);
  const auto v = random_bf16(s.seq_len * s.num_kv_heads * s.head_dim, 3, 1.0f);
  auto widen = [](const std::vector<uint16_t>& b) {
    std::vector<float> f(b.size());
    for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_to_float(b[i]);
    return f;
  };
  const auto qf = widen(q), kf = widen(k), vf = widen(v);
  const ref::QkvView view{s, qf.data(), kf.data(), vf.data(), 0.0};
  const SparseIndex index = mixed_budget_index(s.seq_len, s.num_q_heads, 9, false);
  for (const SparseIndex* maybe_index : {static_cast<const SparseIndex*>(nullptr), &index}) {
    auto want = maybe_index ? ref::sparse_attention(view, *maybe_index) : ref::dense_attention(view);
    check_status(want.status(), "oracle");
    uint16_t *dq = upload(q), *dk = upload(k), *dv = upload(v), *dout = nullptr;
    BENCH_CHECK(cudaMalloc(&dout, q.size() * 2));
    BENCH_CHECK(cudaMemset(dout, 0xff, q.size() * 2));
    auto sel = attention_select_cuda(s, maybe_index ? &maybe_index->geometry : nullptr);
    check_status(sel.status(), "select");
    void* ws = nullptr;
    BENCH_CHECK(cudaMalloc(&ws, std::max<size_t>(1, sel->workspace_bytes)));
    std::unique_ptr<DeviceIndex> dindex;
    if (maybe_index) dindex = std::make_unique<DeviceIndex>(*maybe_index);
    Run run{{s, dq, dk, dv, dout},
            dindex ? &dindex->view : nullptr,
            ws,
            sel->workspace_bytes,
            kernel_for(s, maybe_index ? &maybe_index->geometry : nullptr)};
    run_once(run);
    std::vector<uint16_t> o(q.size());
    BENCH_CHECK(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost));
    double err = 0, norm = 0;
    for (size_t i = 0; i < o.size(); ++i) {
      const double d = bf16_to_float(o[i]) - want->o[i];
      err += d * d;
      norm += want->o[i] * want->o[i];
    }
    const double rel = std::sqrt(err / norm);
    std::printf("verify L=%lld %s vs fp64 oracle: relative L2 error %.2e\n",
                static_cast<long long>(s.seq_len), maybe_index ? "sparse" : "dense", rel);
    if (!(rel < 1e-2)) {
      std::fprintf(stderr, "flash_bench: verification failed, no timings\n");
      std::exit(1);
    }
    for (void* p : {static_cast<void*>(dq), static_cast<void*>(dk), static_cast<void*>(dv),
                    static_cast<void*>(dout), ws})
      cudaFree(p);
  }
}

std::vector<int64_t> parse_list(const char* text) {
  std::vector<int64_t> out;
  for (const char* p = text; *p;) {
    out.push_back(std::strtoll(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  return out;
}

int main_impl(int argc, char** argv) {
  Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--lens")
      opt.lens = parse_list(argv[i + 1]);
    else if (flag == "--heads")
      opt.heads = std::atoi(argv[i + 1]);
    else if (flag == "--kv-heads")
      opt.kv_heads = std::atoi(argv[i + 1]);
    else if (flag == "--dim")
      opt.dim = std::atoi(argv[i + 1]);
    else if (flag == "--reps")
      opt.reps = std::atoi(argv[i + 1]);
    else if (flag == "--json")
      opt.json = argv[i + 1];
    else {
      std::fprintf(stderr, "flash_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  cudaDeviceProp prop{};
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("GPU %s, %d SMs; Hq=%d Hkv=%d d=%d\n", prop.name, prop.multiProcessorCount, opt.heads,
              opt.kv_heads, opt.dim);
  verify_small(opt);

  const int64_t max_len = *std::max_element(opt.lens.begin(), opt.lens.end());
  const auto q = random_bf16(max_len * opt.heads * opt.dim, 11, 2.0f);
  const auto k = random_bf16(max_len * opt.kv_heads * opt.dim, 12, 1.0f);
  const auto v = random_bf16(max_len * opt.kv_heads * opt.dim, 13, 1.0f);
  uint16_t *dq = upload(q), *dk = upload(k), *dv = upload(v), *dout = nullptr;
  BENCH_CHECK(cudaMalloc(&dout, q.size() * 2));
  const size_t flush_bytes = 256ull << 20;
  void* flush = nullptr;
  BENCH_CHECK(cudaMalloc(&flush, flush_bytes));

  std::string rows_json;
  std::printf(
      "\n| L | dense ms | dense TFLOP/s (causal) | dense TFLOP/s (visited tiles) | sparse ms | density | "
      "sparse TFLOP/s (visited tiles) | sparse/dense tile rate | shared-per-group sparse ms | density | "
      "TFLOP/s (visited tiles) | tile rate vs dense | max sampled-row err |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const int64_t len : opt.lens) {
    const AttentionShape s{len, opt.heads, opt.kv_heads, opt.dim};
    AttentionParams params{s, dq, dk, dv, dout};
    // The first L tokens of the max-length contiguous tensors are a contiguous L-token input.
    IndexGeometry dense_geometry;
    dense_geometry.seq_len = len;
    dense_geometry.num_heads = opt.heads;
    const SparseIndex dense_index = SparseIndex::dense(dense_geometry);
    const SparseIndex sparse_index = mixed_budget_index(len, opt.heads, 17, false);
    const SparseIndex shared_index = mixed_budget_index(len, opt.kv_heads, 19, true);
    DeviceIndex d_sparse(sparse_index);
    DeviceIndex d_shared(shared_index);
    auto sel = attention_select_cuda(s, &sparse_index.geometry);
    check_status(sel.status(), "select");
    auto sel_shared = attention_select_cuda(s, &shared_index.geometry);
    check_status(sel_shared.status(), "select");
    void* ws = nullptr;
    const size_t ws_bytes = std::max(sel->workspace_bytes, sel_shared->workspace_bytes);
    BENCH_CHECK(cudaMalloc(&ws, ws_bytes));

    const Run dense_run{params, nullptr, nullptr, 0, kernel_for(s, nullptr)};
    const Run sparse_run{params, &d_sparse.view, ws, ws_bytes, kernel_for(s, &sparse_index.geometry)};
    const Run shared_run{params, &d_shared.view, ws, ws_bytes, kernel_for(s, &shared_index.geometry)};
    std::vector<uint16_t> o(len * opt.heads * opt.dim);
    const int rows = len > 32768 ? 2 : 4;
    // Verify this length before timing it: sampled rows in fp64 for dense and sparse.
    run_once(dense_run);
    BENCH_CHECK(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost));
    const double dense_err = sampled_row_error(s, q, k, v, dense_index, o, rows);
    run_once(sparse_run);
    BENCH_CHECK(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost));
    const double sparse_err = sampled_row_error(s, q, k, v, sparse_index, o, rows);
    run_once(shared_run);
    BENCH_CHECK(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost));
    const double shared_err = sampled_row_error(s, q, k, v, shared_index, o, rows);
    const double worst = std::max({dense_err, sparse_err, shared_err});
    if (!(worst < 2e-2)) {
      std::fprintf(stderr, "flash_bench: L=%lld verification failed (error %.3e), no timings\n",
                   static_cast<long long>(len), worst);
      return 1;
    }
    const int reps = len > 65536 ? std::max(3, opt.reps / 2) : opt.reps;
    const double dense_ms = time_median_ms(dense_run, reps, flush, flush_bytes);
    const double sparse_ms = time_median_ms(sparse_run, reps, flush, flush_bytes);
    const double shared_ms = time_median_ms(shared_run, reps, flush, flush_bytes);
    const double tile_flops = 4.0 * kTileBlockQ * kTileBlockK * opt.dim;
    const double causal_flops = 4.0 * opt.heads * opt.dim * (static_cast<double>(len) * (len + 1) / 2);
    const int64_t dense_tiles = visited_tiles(dense_index, 1);
    const int64_t sparse_tiles = visited_tiles(sparse_index, 1);
    const double dense_tflops = causal_flops / dense_ms / 1e9;
    const double dense_tile_tflops = dense_tiles * tile_flops / dense_ms / 1e9;
    const double sparse_tile_tflops = sparse_tiles * tile_flops / sparse_ms / 1e9;
    const double density = static_cast<double>(sparse_tiles) / dense_tiles;
    const int64_t shared_tiles = visited_tiles(shared_index, s.group_size());
    const double shared_tile_tflops = shared_tiles * tile_flops / shared_ms / 1e9;
    const double shared_density = static_cast<double>(shared_tiles) / dense_tiles;
    std::printf(
        "| %lld | %.3f | %.1f | %.1f | %.3f | %.3f | %.1f | %.2f | %.3f | %.3f | %.1f | %.2f | %.1e |\n",
        static_cast<long long>(len), dense_ms, dense_tflops, dense_tile_tflops, sparse_ms, density,
        sparse_tile_tflops, sparse_tile_tflops / dense_tile_tflops, shared_ms, shared_density,
        shared_tile_tflops, shared_tile_tflops / dense_tile_tflops, worst);
    std::fflush(stdout);
    char row[512];
    std::snprintf(
        row, sizeof row,
        "%s{\"L\":%lld,\"dense_ms\":%.4f,\"dense_tflops_causal\":%.2f,\"dense_tflops_tiles\":%.2f,"
        "\"sparse_ms\":%.4f,\"sparse_density\":%.4f,\"sparse_tflops_tiles\":%.2f,"
        "\"shared_sparse_ms\":%.4f,\"shared_sparse_density\":%.4f,\"shared_sparse_tflops_tiles\":%.2f,"
        "\"max_err\":%.3e}",
        rows_json.empty() ? "" : ",", static_cast<long long>(len), dense_ms, dense_tflops, dense_tile_tflops,
        sparse_ms, density, sparse_tile_tflops, shared_ms, shared_density, shared_tile_tflops, worst);
    rows_json += row;
    cudaFree(ws);
  }
  if (!opt.json.empty()) {
    std::ofstream out(opt.json);
    out << "{\"gpu\":\"" << prop.name << "\",\"heads\":" << opt.heads << ",\"kv_heads\":" << opt.kv_heads
        << ",\"dim\":" << opt.dim << ",\"rows\":[" << rows_json << "]}\n";
  }
  for (void* p : {static_cast<void*>(dq), static_cast<void*>(dk), static_cast<void*>(dv),
                  static_cast<void*>(dout), flush})
    cudaFree(p);
  return 0;
}

}  // namespace
}  // namespace sacc

int main(int argc, char** argv) {
  return sacc::main_impl(argc, argv);
}
