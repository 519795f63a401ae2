// `sacc serve`'s HTTP front (cpp-httplib): routes, API-key check, request validation before any work, and the
// plain and server-sent-event responses. Generation itself runs on the Scheduler's worker.
#pragma once

#include <memory>

#include "tools/sacc/engine_setup.h"
#include "tools/sacc/serve_metrics.h"
#include "tools/sacc/serve_options.h"
#include "tools/sacc/serve_scheduler.h"

namespace httplib {
class Server;
}

namespace sacc::cli {

class CompletionRoutes;

class ServeServer {
 public:
  ServeServer(const ServeArgs& args, const EngineSetup& setup, Scheduler& scheduler, ServeMetrics& metrics);
  ~ServeServer();
  // Serves until stop(); false when the address cannot be bound.
  bool listen();
  // Answers new completion requests with 503, waits for those in flight to be answered, then stops listening
  // so that listen() returns. Safe from another thread; blocks until the drain is over.
  void stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  const ServeArgs& args_;
  std::shared_ptr<CompletionRoutes> routes_;
  int listen_socket_ = -1;  // the bound socket, from httplib's socket-options hook
};

}  // namespace sacc::cli
