// CPU attention micro-benchmark: the runtime's CPU attention (attention/cpu/cpu_attention.h), dense causal
// prefill, on each instruction set the CPU has, side by side on the same random bf16 K/V and fp32 queries.
// Before timing, every set's output is checked against fp64 on sampled (row, head) pairs: within fp32's
// reach for the fp32 sets, within bf16's for the bf16-product set (BENCH.md: verify, then time).
//
//   cpu_attention_bench --lengths 4096,8192 --heads 14 --kv-heads 2 --dim 64 --threads 2 -r 3
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention/cpu/cpu_attention.h"
#include "attention/cpu/parallel_for.h"
#include "core/dtype.h"

namespace {

using sacc::CpuAttentionArgs;
using sacc::CpuAttentionIsa;

struct Inputs {
  int64_t length = 0;
  int hq = 0, hkv = 0, d = 0;
  std::vector<float> q;     // [L, Hq, d]
  std::vector<uint16_t> k;  // [L, Hkv, d] bf16
  std::vector<uint16_t> v;  // [L, Hkv, d] bf16
};

Inputs random_inputs(int64_t length, int hq, int hkv, int d) {
  Inputs in{length, hq, hkv, d, {}, {}, {}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  in.q.resize(static_cast<size_t>(length * hq * d));
  in.k.resize(static_cast<size_t>(length * hkv * d));
  in.v.resize(in.k.size());
  for (float& x : in.q) x = 2.0f * normal(rng);  // scores of a few units: softmaxes from flat to peaked
  for (uint16_t& x : in.k) x = sacc::float_to_bf16(normal(rng));
  for (uint16_t& x : in.v) x = sacc::float_to_bf16(normal(rng));
  return in;
}

CpuAttentionArgs args_of(const Inputs& in, std::vector<float>& o) {
  o.assign(static_cast<size_t>(in.length * in.hq * in.d), 0.0f);
  CpuAttentionArgs a;
  a.num_queries = a.num_keys = in.length;
  a.num_q_heads = in.hq;
  a.num_kv_heads = in.hkv;
  a.head_dim = in.d;
  a.q = in.q.data();
  a.k = in.k.data();
  a.v = in.v.data();
  a.o = o.data();
  return a;
}

// Largest |o - fp64| over sampled (row, head) pairs, relative to the largest |v| (1 for these inputs).
double sampled_error(const Inputs& in, const std::vector<float>& o) {
  std::mt19937 rng(11);
  double worst = 0.0;
  const double scale = 1.0 / std::sqrt(double(in.d));
  std::vector<double> w(static_cast<size_t>(in.length));
  for (int s = 0; s < 48; ++s) {
    const int64_t i = s == 0 ? in.length - 1 : static_cast<int64_t>(rng() % in.length);
    const int h = static_cast<int>(rng() % in.hq), kvh = h / (in.hq / in.hkv);
    const float* q = &in.q[(i * in.hq + h) * in.d];
    double top = -1e300, sum = 0.0;
    for (int64_t j = 0; j <= i; ++j) {
      double dot = 0.0;
      for (int c = 0; c < in.d; ++c)
        dot += double(q[c]) * sacc::bf16_to_float(in.k[(j * in.hkv + kvh) * in.d + c]);
      w[j] = dot * scale;
      top = std::max(top, w[j]);
    }
    for (int64_t j = 0; j <= i; ++j) sum += (w[j] = std::exp(w[j] - top));
    for (int c = 0; c < in.d; ++c) {
      double want = 0.0;
      for (int64_t j = 0; j <= i; ++j)
        want += w[j] * sacc::bf16_to_float(in.v[(j * in.hkv + kvh) * in.d + c]);
      worst = std::max(worst, std::abs(want / sum - o[(i * in.hq + h) * in.d + c]));
    }
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU attention (dense causal prefill) per instruction set, verified against fp64 first"};
  std::vector<int64_t> lengths = {4096, 8192};
  int hq = 14, hkv = 2, d = 64, repeats = 3, threads = 0;
  std::string only;
  app.add_option("--lengths", lengths, "prompt lengths")->delimiter(',');
  app.add_option("--heads", hq, "query heads (default 14: Qwen2.5-0.5B)");
  app.add_option("--kv-heads", hkv, "KV heads (default 2)");
  app.add_option("--dim", d, "head dim (default 64)");
  app.add_option("-r,--repeats", repeats, "timed runs per set (the median is printed)")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "CPU threads (default: the hardware concurrency)");
  app.add_option("--isa", only,
                 "only this set: portable, avx2 or avx512-bf16 (default: every set the CPU has)");
  CLI11_PARSE(app, argc, argv);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0 || d <= 0) {
    std::fprintf(stderr, "cpu_attention_bench: heads %d / kv heads %d / dim %d invalid\n", hq, hkv, d);
    return 2;
  }
  if (threads > 0) sacc::set_cpu_thread_count(threads);
  std::vector<CpuAttentionIsa> isas;
  for (CpuAttentionIsa isa : {CpuAttentionIsa::PORTABLE, CpuAttentionIsa::AVX2, CpuAttentionIsa::AVX512_BF16})
    if (sacc::best_cpu_attention_isa() >= isa && (only.empty() || only == sacc::cpu_attention_isa_name(isa)))
      isas.push_back(isa);
  if (isas.empty()) {
    std::fprintf(stderr, "cpu_attention_bench: --isa %s is not available on this CPU\n", only.c_str());
    return 2;
  }
  std::printf("threads %d, Hq %d, Hkv %d, d %d, median of %d\n\n", sacc::cpu_thread_count(), hq, hkv, d,
              repeats);
  std::printf(
      "| length | isa | max error (sampled, vs fp64) | time (s) | GFLOP/s |\n| --- | --- | --- | --- | --- "
      "|\n");
  for (int64_t length : lengths) {
    if (length <= 0) {
      std::fprintf(stderr, "cpu_attention_bench: length %lld invalid\n", static_cast<long long>(length));
      return 2;
    }
    const Inputs in = random_inputs(length, hq, hkv, d);
    // Causal QK^T and PV: L (L + 1) / 2 visible pairs per head, 2 d multiply-adds each.
    const double flop = 4.0 * d * hq * (double(length) * (length + 1) / 2);
    for (CpuAttentionIsa isa : isas) {
      std::vector<float> o;
      const CpuAttentionArgs a = args_of(in, o);
      if (auto st = sacc::cpu_attention_dense(a, isa); !st.is_ok()) {
        std::fprintf(stderr, "cpu_attention_bench: %s\n", st.to_string().c_str());
        return 1;
      }
      const double err = sampled_error(in, o);
      const bool bf16 = isa == CpuAttentionIsa::AVX512_BF16 && d % 2 == 0;
      if (err > (bf16 ? 2e-2 : 1e-4)) {
        std::fprintf(stderr, "cpu_attention_bench: %s at %lld: error %.3g against fp64, not timed\n",
                     sacc::cpu_attention_isa_name(isa), static_cast<long long>(length), err);
        return 1;
      }
      std::vector<double> secs;
      for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        (void)sacc::cpu_attention_dense(a, isa);
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(secs.begin(), secs.end());
      const double median = secs[secs.size() / 2];
      std::printf("| %lld | %s | %.2e | %.3f | %.1f |\n", static_cast<long long>(length),
                  sacc::cpu_attention_isa_name(isa), err, median, flop / median / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
