#include "tools/sacc/serve_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "core/log.h"
#include "tools/sacc/openai_protocol.h"

namespace sacc::cli {
namespace {

// Requests waiting in the Scheduler's queue each hold an HTTP thread, so the pool is the queue plus a few for
// /health, /metrics and requests being refused.
constexpr int64_t kSpareHttpThreads = 4;
constexpr const char* kRetryAfterSeconds = "1";
constexpr std::chrono::milliseconds kDrainPoll{50};
constexpr int64_t kCompletionsDefaultMaxTokens = 16;  // OpenAI's default for /v1/completions
// Connections the kernel queues before they are accepted. Debian's compiled cpp-httplib listens with a
// backlog of 5: a burst of clients connecting at once then overflows it, and some of them lose their
// connection (seen with 32 concurrent streaming clients). listen() is called again on the bound socket with
// this value (the kernel caps it at net.core.somaxconn).
constexpr int kListenBacklog = 1024;

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.http_status;
  res.set_content(error_json(error), "application/json");
}

ApiError api_error(int http_status, std::string message, std::string type, std::string param = "",
                   std::string code = "") {
  return {http_status, std::move(message), std::move(type), std::move(param), std::move(code)};
}

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// A run that failed after it was admitted. Out of memory is 503 with code "out_of_memory" and the run's
// memory plan (the server stays up and a smaller request may fit); anything else is 500.
ApiError run_failure(const Status& status) {
  if (status.code() == StatusCode::OUT_OF_MEMORY)
    return api_error(503, status.to_string(), "server_error", "", "out_of_memory");
  return api_error(500, status.to_string(), "server_error");
}

// What one streamed response needs between calls of httplib's content provider.
struct StreamState {
  std::shared_ptr<void> in_flight;  // released with the response (see CompletionRoutes::enter)
  std::shared_ptr<GenerationJob> job;
  Endpoint endpoint;
  ResponseIdentity identity;
  std::function<Status(const Status&)> explain;  // attaches the run's memory plan to an out-of-memory status
  bool first = true;
};

bool write_event(httplib::DataSink& sink, const std::string& event) {
  return sink.write(event.data(), event.size());
}

// One call: the next text delta, or the final chunk and [DONE]. False (and the job cancelled) when the client
// has gone.
bool stream_next(StreamState& s, httplib::DataSink& sink) {
  std::string text;
  if (s.job->next(text)) {
    StreamDelta delta{text, s.first, std::nullopt, std::nullopt};
    s.first = false;
    if (!write_event(sink, sse_event(chunk_json(s.endpoint, s.identity, delta)))) {
      s.job->cancel();
      return false;
    }
    return true;
  }
  const JobOutcome& outcome = s.job->outcome();
  std::string event;
  if (!outcome.status) {
    event = sse_event(error_json(run_failure(s.explain(outcome.status))));
  } else {
    StreamDelta last{"", s.first, outcome.finish_reason, outcome.usage};
    event = sse_event(chunk_json(s.endpoint, s.identity, last));
  }
  event += kSseDone;
  if (!write_event(sink, event)) return false;
  sink.done();
  return true;
}

}  // namespace

class CompletionRoutes {
 public:
  CompletionRoutes(const ServeArgs& args, const EngineSetup& setup, Scheduler& scheduler)
      : args_(args),
        setup_(setup),
        scheduler_(scheduler),
        model_id_(served_model_id(args)),
        server_attention_(server_attention(args.engine, setup)) {}

  // Refuses new requests, then waits until those in flight have been answered.
  void drain() {
    draining_ = true;
    while (in_flight_ > 0) std::this_thread::sleep_for(kDrainPoll);
  }

  void handle(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    const ServeClock::time_point arrival = ServeClock::now();
    PhaseClock phases(arrival);
    std::shared_ptr<void> in_flight = enter();
    if (!in_flight) return send_error(res, api_error(503, "the server is shutting down", "server_error"));
    ParsedRequest parsed = parse_completion_request(req.body, endpoint);
    if (!parsed.request) return send_error(res, parsed.error);
    const CompletionRequest& r = *parsed.request;
    if (r.model != model_id_)
      return send_error(res, api_error(404,
                                       fmt::format("The model '{}' does not exist; this server serves '{}'",
                                                   r.model, model_id_),
                                       "invalid_request_error", "model", "model_not_found"));
    std::shared_ptr<const ServeAttention> attention = server_attention_;
    if (r.attention) {
      std::string param;
      Result<std::shared_ptr<const ServeAttention>> own =
          request_attention(args_.engine, setup_, server_attention_, *r.attention, param);
      if (!own)
        return send_error(res, api_error(400, own.status().message(), "invalid_request_error", param));
      attention = std::move(own).value();
    }
    phases.lap(RequestPhase::PARSE);
    Result<std::vector<int32_t>> prompt = prompt_ids(r);
    phases.lap(RequestPhase::TOKENIZE);
    if (!prompt)
      return send_error(res, api_error(400, prompt.status().message(), "invalid_request_error",
                                       endpoint == Endpoint::CHAT_COMPLETIONS ? "messages" : "prompt"));
    const int64_t prompt_tokens = static_cast<int64_t>(prompt->size());
    const int64_t context = setup_.model.weights.config.max_context;
    const int64_t max_tokens = r.max_tokens.value_or(endpoint == Endpoint::COMPLETIONS
                                                         ? kCompletionsDefaultMaxTokens
                                                         : std::max<int64_t>(1, context - prompt_tokens));
    // A prompt that can never fit is refused before it waits in the queue.
    // The prefix cache is evicted first when the request needs its room: it never causes a refusal.
    if (Status fits = check_run_fits(args_.engine, setup_, prompt_tokens, max_tokens, nullptr,
                                     scheduler_.reclaimable_bytes(), &attention->options);
        !fits)
      return send_error(res, api_error(400,
                                       fmt::format("{} prompt tokens + max_tokens {} do not fit: {}",
                                                   prompt_tokens, max_tokens, fits.message()),
                                       "invalid_request_error", "max_tokens", "context_length_exceeded"));
    GenerateOptions gen;
    gen.max_new_tokens = max_tokens;
    gen.sampling = {r.temperature, r.top_p, r.seed.value_or(random_seed())};
    if (Status s = gen.sampling.validate(); !s)
      return send_error(res, api_error(400, s.message(), "invalid_request_error"));

    auto job = std::make_shared<GenerationJob>(std::move(*prompt), gen, r.stop, std::move(attention), arrival,
                                               phases);
    switch (scheduler_.submit(job)) {
      case Scheduler::Admission::QUEUED:
        break;
      case Scheduler::Admission::FULL:
        res.set_header("Retry-After", kRetryAfterSeconds);
        return send_error(res, api_error(429, "the request queue is full; retry later", "rate_limit_exceeded",
                                         "", "rate_limit_exceeded"));
      case Scheduler::Admission::STOPPING:
        return send_error(res, api_error(503, "the server is shutting down", "server_error"));
    }
    ResponseIdentity identity{next_id(endpoint), unix_now(), model_id_};
    if (r.stream) {
      auto explain = [this, prompt_tokens, max_tokens](const Status& status) {
        return with_run_plan(status, args_.engine, setup_, prompt_tokens, max_tokens);
      };
      return stream(res, endpoint, std::move(job), std::move(identity), std::move(explain),
                    std::move(in_flight));
    }

    CompletionResult result;
    std::string text;
    while (job->next(text)) result.text += text;
    const JobOutcome& outcome = job->outcome();
    if (!outcome.status)
      return send_error(
          res, run_failure(with_run_plan(outcome.status, args_.engine, setup_, prompt_tokens, max_tokens)));
    result.finish_reason = outcome.finish_reason;
    result.usage = outcome.usage;
    res.set_content(completion_json(endpoint, identity, result), "application/json");
  }

 private:
  // A token held while a completion request is in flight (for a stream, until its last byte is written); null
  // once draining. Counted before draining_ is read, so drain() never misses a request that got in.
  std::shared_ptr<void> enter() {
    ++in_flight_;
    std::shared_ptr<void> token(static_cast<void*>(this), [this](void*) { --in_flight_; });
    if (draining_) return nullptr;
    return token;
  }

  Result<std::vector<int32_t>> prompt_ids(const CompletionRequest& r) const {
    const LoadedModel& model = setup_.model;
    if (!model.maybe_tokenizer) {
      if (r.endpoint == Endpoint::CHAT_COMPLETIONS)
        return make_error(StatusCode::INVALID_ARGUMENT, "this model has no tokenizer, so no chat template");
      // As `sacc generate` does for random: models: the text's bytes as ids.
      const ModelConfig& config = model.weights.config;
      std::vector<int32_t> ids;
      if (config.bos_token >= 0) ids.push_back(config.bos_token);
      for (unsigned char c : r.prompt) ids.push_back(static_cast<int32_t>(c % config.vocab));
      return ids;
    }
    const Tokenizer& tok = *model.maybe_tokenizer;
    // The last prompt's encoding: a repeated document with a new question re-encodes only the question.
    // Taken out under the lock and put back after, so concurrent requests never share one.
    EncodeMemo memo;
    {
      std::lock_guard lock(memo_mutex_);
      memo = std::exchange(last_prompt_, EncodeMemo{});
    }
    Result<std::vector<int32_t>> ids = r.endpoint == Endpoint::CHAT_COMPLETIONS
                                           ? tok.encode_chat(r.messages, true, memo)
                                           : tok.encode(r.prompt, tok.adds_bos(), memo);
    {
      std::lock_guard lock(memo_mutex_);
      last_prompt_ = std::move(memo);
    }
    if (ids && ids->empty()) return make_error(StatusCode::INVALID_ARGUMENT, "the prompt has no tokens");
    return ids;
  }

  void stream(httplib::Response& res, Endpoint endpoint, std::shared_ptr<GenerationJob> job,
              ResponseIdentity identity, std::function<Status(const Status&)> explain,
              std::shared_ptr<void> in_flight) {
    auto state = std::make_shared<StreamState>(
        StreamState{std::move(in_flight), std::move(job), endpoint, std::move(identity), std::move(explain)});
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [state](size_t, httplib::DataSink& sink) { return stream_next(*state, sink); },
        [state](bool success) {
          if (!success) state->job->cancel();
        });
  }

  uint64_t random_seed() {
    std::lock_guard lock(rng_mutex_);
    return rng_();
  }

  std::string next_id(Endpoint endpoint) {
    return fmt::format("{}-{:x}{:06d}", endpoint == Endpoint::CHAT_COMPLETIONS ? "chatcmpl" : "cmpl", start_,
                       ++counter_);
  }

  const ServeArgs& args_;
  const EngineSetup& setup_;
  Scheduler& scheduler_;
  const std::string model_id_;
  const std::shared_ptr<const ServeAttention> server_attention_;  // its flags'; requests may override them
  std::mutex rng_mutex_;
  mutable std::mutex memo_mutex_;
  mutable EncodeMemo last_prompt_;  // prompt_ids(): the last prompt's encoding
  std::mt19937_64 rng_{std::random_device{}()};
  const int64_t start_ = unix_now();
  std::atomic<uint64_t> counter_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> draining_{false};
};

ServeServer::ServeServer(const ServeArgs& args, const EngineSetup& setup, Scheduler& scheduler,
                         ServeMetrics& metrics)
    : server_(std::make_unique<httplib::Server>()), args_(args) {
  const size_t threads = static_cast<size_t>(args.max_queue + kSpareHttpThreads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR in place of httplib's default SO_REUSEPORT (with which a second server on the same port
  // shared it instead of failing); the listening socket is remembered for listen().
  server_->set_socket_options([this](int socket) {
    const int on = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    listen_socket_ = socket;
  });
  routes_ = std::make_shared<CompletionRoutes>(args, setup, scheduler);
  auto routes = routes_;
  const std::string model_id = served_model_id(args);
  const int64_t created = unix_now();

  server_->set_pre_routing_handler([&args](const httplib::Request& req, httplib::Response& res) {
    if (args.api_key.empty() || req.path.rfind("/v1/", 0) != 0)
      return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + args.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, api_error(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                              "invalid_request_error", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // ours, already in OpenAI's shape
    std::string why = "no such route here";
    if (res.status == 413) {  // the HTTP library caps form-encoded bodies (curl -d's default type) at 8 KiB
      why = "request body too large for its Content-Type '" + req.get_header_value("Content-Type") +
            "'; send the JSON body with 'Content-Type: application/json'";
    } else if (res.status != 404) {
      why = "the request could not be handled";
    }
    send_error(
        res, api_error(res.status, fmt::format("{} {}: {} (HTTP {})", req.method, req.path, why, res.status),
                       "invalid_request_error"));
  });
  server_->set_logger([&metrics](const httplib::Request&, const httplib::Response& res) {
    metrics.count_request(res.status);
  });

  server_->Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  server_->Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
  server_->Get("/v1/models", [model_id, created](const httplib::Request&, httplib::Response& res) {
    res.set_content(models_json(model_id, created), "application/json");
  });
  server_->Post("/v1/completions", [routes](const httplib::Request& req, httplib::Response& res) {
    routes->handle(req, res, Endpoint::COMPLETIONS);
  });
  server_->Post("/v1/chat/completions", [routes](const httplib::Request& req, httplib::Response& res) {
    routes->handle(req, res, Endpoint::CHAT_COMPLETIONS);
  });
}

ServeServer::~ServeServer() = default;

bool ServeServer::listen() {
  if (!server_->bind_to_port(args_.host, args_.port)) return false;
  if (listen_socket_ < 0 || ::listen(listen_socket_, kListenBacklog) != 0)
    SACC_LOG_WARN("serve: could not raise the listen backlog to {}; bursts of connections may be refused",
                  kListenBacklog);
  return server_->listen_after_bind();
}

void ServeServer::stop() {
  // httplib's stop() cuts streams being written (its chunked writer checks for shutdown), so the requests in
  // flight are finished first.
  routes_->drain();
  server_->stop();
}

}  // namespace sacc::cli
