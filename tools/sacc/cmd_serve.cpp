// `sacc serve`: an OpenAI-compatible HTTP server over one loaded model (serve_server.h), up to --max-batch
// requests at once from a bounded queue (serve_scheduler.h). SIGTERM or SIGINT: stop accepting, finish what
// was accepted, exit 0.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "core/log.h"
#include "runtime/backend_warmup.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/serve_memory.h"
#include "tools/sacc/serve_options.h"
#include "tools/sacc/serve_prefix_cache.h"
#include "tools/sacc/serve_server.h"

namespace sacc::cli {
namespace {

constexpr std::chrono::milliseconds kSignalPoll{100};
constexpr int64_t kMaxBatchLimit = 256;
volatile std::sig_atomic_t g_stop_requested = 0;

std::string strip_suffix(std::string text, std::string_view suffix) {
  if (text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0)
    text.resize(text.size() - suffix.size());
  return text;
}

int run_serve(const ServeArgs& a) {
  if (a.max_queue < 1)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--max-queue {} must be >= 1", a.max_queue));
  if (a.port < 0 || a.port > 65535)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--port {} is not a TCP port", a.port));
  if (a.max_batch < 0 || a.max_batch > kMaxBatchLimit)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--max-batch {} must be in [1, {}]",
                                   a.max_batch, kMaxBatchLimit));
  if (a.prefill_chunk < kPrefillChunkAlign || a.prefill_chunk % kPrefillChunkAlign != 0)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT,
                                   "--prefill-chunk {} must be a positive multiple of {}", a.prefill_chunk,
                                   kPrefillChunkAlign));
  if (Result<uint64_t> capacity = prefix_cache_capacity(a.prefix_cache, Device::cpu()); !capacity)
    return report_error(capacity.status());
  // A handler, not a blocked mask and sigwait: OpenBLAS starts its threads before main, and a
  // process-directed signal may land on any thread that does not block it.
  struct sigaction action {};
  action.sa_handler = [](int) { g_stop_requested = 1; };
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not the end of the server

  Result<EngineSetup> setup = load_engine(a.engine, false);
  if (!setup) return report_error(setup.status());
  const int64_t context = setup->model.weights.config.max_context;
  if (setup->options.gpus.size() > 1) {
    // The layer placement is made once, for the whole context.
    std::string placement;
    if (Status fits = check_run_fits(a.engine, *setup, 1, context, &placement); !fits)
      return report_error(fits);
    setup->options.max_tokens = context;
    std::fputs(placement.c_str(), stderr);
  } else if (Status fits = check_run_fits(a.engine, *setup, 1, 1); !fits) {
    return report_error(fits);
  }
  setup->options.show_progress = false;
  setup->options.prefill_workspace_tokens = a.prefill_chunk;
  Result<std::unique_ptr<Backend>> backend = make_backend(*setup);
  if (!backend) return report_error(with_run_plan(backend.status(), a.engine, *setup, 1, 1));

  Result<ServePrefixCacheSetup> prefix =
      make_serve_prefix_cache(a.engine, *setup, a.prefix_cache, a.prefix_cache_sparse, served_model_id(a));
  if (!prefix) return report_error(prefix.status());

  ServeBatching batching;
  batching.max_batch = static_cast<int>(a.max_batch > 0          ? a.max_batch
                                        : setup->device.is_cpu() ? kDefaultMaxBatchCpu
                                                                 : kDefaultMaxBatchCuda);
  batching.prefill_chunk = a.prefill_chunk;
  batching.kv_bytes_per_token = kv_cache_bytes(setup->model.weights.config, 1);
  // Slots first: the batch steps' workspace they size is then not counted as room.
  if (Status s = (*backend)->set_slot_count(batching.max_batch); !s) return report_error(s);
  if (!setup->device.is_cpu()) {
    // A GPU's one-time costs per row bucket, paid now rather than by the streams running beside the first
    // chunked prompts (a CPU has none worth a start-up pass). A chunk and its extend must fit the context.
    // Failing it only costs speed: the server still starts.
    const int64_t rows = std::min<int64_t>(batching.prefill_chunk, context / 2);
    const auto start = std::chrono::steady_clock::now();
    if (Status s = warm_row_buckets(**backend, rows); !s) {
      SACC_LOG_WARN("serve: warm-up skipped ({}); the first chunk of each size may be slower", s.to_string());
      for (int slot = 0; slot < batching.max_batch; ++slot) (void)(*backend)->release_slot(slot);
    } else {
      SACC_LOG_INFO(
          "serve: warmed up for 1 to {} rows in {:.0f} ms", rows,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }
  batching.maybe_room_beside = make_room_beside(a.engine, *setup);

  ServeMetrics metrics;
  Scheduler scheduler(**backend, setup->model.maybe_tokenizer, setup->model.stop_tokens,
                      static_cast<size_t>(a.max_queue), metrics, batching, prefix->worker);
  ServeServer server(a, *setup, scheduler, metrics);

  std::atomic<bool> finished{false};
  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    while (!finished) {
      // Repeated until listen() returns: a stop() that comes before listen() has started is not remembered.
      if (g_stop_requested) {
        if (!signalled) SACC_LOG_INFO("serve: signal received; finishing the requests in flight");
        signalled = true;
        server.stop();
      }
      std::this_thread::sleep_for(kSignalPoll);
    }
  });
  SACC_LOG_INFO("serve: '{}' on http://{}:{} (context {} tokens, queue {}, batch {}, prefill chunk {})",
                served_model_id(a), a.host, a.port, context, a.max_queue, batching.max_batch,
                batching.prefill_chunk);
  const bool listened = server.listen();
  finished = true;
  waiter.join();
  scheduler.stop();
  if (!listened && !signalled)
    return report_error(make_error(StatusCode::IO_ERROR, "cannot listen on {}:{}", a.host, a.port));
  return 0;
}

}  // namespace

std::string served_model_id(const ServeArgs& args) {
  if (!args.model_name.empty()) return args.model_name;
  std::string name = args.engine.model;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  if (const size_t slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
  return strip_suffix(name, ".gguf");
}

void add_serve_command(CLI::App& app, CommandBody& body) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd =
      app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions)");
  add_engine_options(*cmd, args->engine);
  cmd->add_option("--seed", args->engine.seed, "random-weight seed for random: models (default 0)");
  cmd->add_option("--host", args->host, "address to bind (default 127.0.0.1)");
  cmd->add_option("--port", args->port, "TCP port (default 8080)");
  cmd->add_option("--api-key", args->api_key, "require 'Authorization: Bearer KEY' on /v1/ routes");
  cmd->add_option("--max-queue", args->max_queue,
                  "requests that may wait for a sequence slot; more get 429 (default 16)");
  cmd->add_option("--model-name", args->model_name, "model id for clients (default: the model file's name)");
  cmd->add_option("--prefix-cache", args->prefix_cache,
                  "memory for reusable prompt-prefix KV, e.g. 8GiB; 0 turns it off (default 4GiB on a GPU, "
                  "1GiB on the CPU)");
  cmd->add_option("--max-batch", args->max_batch,
                  fmt::format("requests generated at once, their decode steps batched; each holds its own KV "
                              "cache, sized for its prompt + max_tokens (default {} on a GPU, {} on the CPU)",
                              kDefaultMaxBatchCuda, kDefaultMaxBatchCpu));
  cmd->add_option(
      "--prefill-chunk", args->prefill_chunk,
      fmt::format("while other requests decode, new prompts are prefilled at most this many tokens per "
                  "step between their decode steps, fewer (down to {}) where more would take over {} decode "
                  "steps' time (a multiple of {}; default {}). A prompt prefilled alone runs whole; of a "
                  "chunked one only the first chunk may run sparse, the rest run dense attention",
                  kPrefillChunkAlign, kChunkDecodeSteps, kPrefillChunkAlign, ServeArgs{}.prefill_chunk));
  cmd->add_flag("--prefix-cache-sparse", args->prefix_cache_sparse,
                "also reuse the KV of sparse prefills (approximate: a sparse index depends on the prompt's "
                "last tokens)");
  cmd->callback([&body, args] { body = [args] { return run_serve(*args); }; });
}

}  // namespace sacc::cli
