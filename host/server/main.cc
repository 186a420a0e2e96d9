// tallyd: the Tally node daemon. Reads the config, starts one shard per core and serves until
// SIGINT, SIGTERM or SHUTDOWN.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/log.h"
#include "host/server/config.h"
#include "host/server/server.h"

int main(int argc, char** argv) {
  using namespace tally;
  server::Config cfg;
  std::vector<std::string> args(argv + 1, argv + argc);
  Status st = server::parse_command_line(args, cfg);
  if (st.code() == Code::kNotFound) {
    std::fputs(st.message().c_str(), stdout);
    return 0;
  }
  if (st.is_ok()) st = server::validate(cfg);
  if (!st.is_ok()) {
    std::fprintf(stderr, "tallyd: %s\n", st.message().c_str());
    return 2;
  }
  log::set_level(cfg.loglevel);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");

  // Signals are taken by sigwait on this thread only: block them before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Server srv(cfg, Env::posix());
  st = srv.start();
  if (!st.is_ok()) {
    TALLY_LOG_ERROR("tallyd failed to start: {}", st.to_string());
    srv.stop();
    return 1;
  }
  srv.wait_for_shutdown();
  srv.stop();
  return 0;
}
