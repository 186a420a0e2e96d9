// Transactions as data commands. The session queues a MULTI's commands and hands EXEC to the engine as
// one internal command whose arguments carry them all (and the keys WATCH saw, with their CAS values):
// it runs on the one partition that owns every key, so it is atomic there, and with a log it is one
// command of one log entry, applied alike on every replica. Layout of its arguments:
//   tx.write|tx.read ROUTE-KEY NWATCH (KEY CAS)* NCMDS (ARGC ARG...)*
#include <charconv>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool tx_parse(Argv argv, std::vector<std::pair<std::string_view, uint64_t>>* watched,
              std::vector<Argv>* commands) {
  size_t at = 2;
  uint64_t nwatch = 0, ncmds = 0;
  if (at >= argv.size() || !parse_u64(argv[at++], nwatch) || nwatch > argv.size()) return false;
  for (uint64_t i = 0; i < nwatch; ++i) {
    uint64_t cas = 0;
    if (at + 1 >= argv.size() || !parse_u64(argv[at + 1], cas)) return false;
    if (watched != nullptr) watched->emplace_back(argv[at], cas);
    at += 2;
  }
  if (at >= argv.size() || !parse_u64(argv[at++], ncmds) || ncmds > argv.size()) return false;
  for (uint64_t i = 0; i < ncmds; ++i) {
    uint64_t argc = 0;
    if (at >= argv.size() || !parse_u64(argv[at++], argc) || argc == 0 || argc > argv.size() - at) return false;
    if (commands != nullptr) commands->push_back(argv.subspan(at, argc));
    at += argc;
  }
  return at == argv.size();
}

void tx(ExecContext& ctx, Argv argv) {
  std::vector<std::pair<std::string_view, uint64_t>> watched;
  std::vector<Argv> commands;
  if (!tx_parse(argv, &watched, &commands)) return ctx.out.error("ERR malformed transaction");
  // WATCH: a watched key written since (its CAS moved, or it appeared or went) fails the EXEC.
  for (const auto& [key, cas] : watched) {
    const store::Entry* e = ctx.store.lookup(key, ctx.now_ms, store::Access::kPeek);
    if ((e == nullptr ? 0 : e->cas()) != cas) return ctx.out.null_array();
  }
  ctx.out.array(commands.size());
  for (Argv c : commands) {
    const CommandSpec* spec = find_data_command(c[0]);
    if (spec == nullptr) {  // the session queues only data commands; a replayed log has the same table
      ctx.out.error("ERR unknown command in transaction");
      continue;
    }
    spec->handler(ctx, c);
  }
}

void tx_cas(ExecContext& ctx, Argv argv) {
  ctx.out.array(argv.size() - 1);
  for (size_t i = 1; i < argv.size(); ++i) {
    const store::Entry* e = ctx.store.lookup(argv[i], ctx.now_ms, store::Access::kPeek);
    ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->cas()));
  }
}

}  // namespace tally::server::cmd
