# Shared pieces of the end-to-end benchmark scripts: free ports, a work folder, servers that are
# stopped on exit, and waiting for a RESP server to answer. Source it; it sets `work` and `pids`.
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start_bg LOGNAME CMD...: runs CMD in the background with its output in $work/LOGNAME.log.
start_bg() {
  local log=$1
  shift
  "$@" >"$work/$log.log" 2>&1 &
  pids+=($!)
  last_pid=$!
}

# The options of the scripts that run redis-benchmark tests on tallyd and redis-server (-n REQUESTS,
# -c CLIENTS, -r ROUNDS, -t TESTS, --threads N) over the defaults the script set, then the check that
# both servers are there ($tallyd names tallyd's binary).
redis_bench_options() {
  while (($#)); do
    case $1 in
      -n) requests=$2; shift 2 ;;
      -c) clients=$2; shift 2 ;;
      -r) rounds=$2; shift 2 ;;
      -t) tests=$2; shift 2 ;;
      --threads) threads=$2; shift 2 ;;
      *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
  done
  command -v redis-server >/dev/null || { echo "redis-server is not installed (make deps)" >&2; exit 2; }
  [[ -x $tallyd ]] || { echo "no tallyd at $tallyd (make build)" >&2; exit 2; }
}

wait_resp() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server on port $1 did not answer" >&2
  return 1
}

# Server CPU time (user + system ticks of the given pids, summed) and the ticks per second, for
# us/request figures.
tck=$(getconf CLK_TCK)
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }

# ratio_table CSV: the median of each (pipeline, test, server) over rounds from lines
# "pipe,target,round,test,rps,p50,us" (target redis or tally), printed with tally/redis.
ratio_table() {
  /usr/bin/python3 - "$1" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    pipe, target, rnd, test, rps, p50, us = line.strip().split(",")
    rows[(int(pipe), test, target)].append((float(rps), float(p50), float(us)))
print(f"{'P':>3} {'test':<11} {'redis rps':>11} {'p50':>6} {'us/req':>7} {'tally rps':>11} {'p50':>6} {'us/req':>7} {'ratio':>6}")
for pipe in (1, 16):
    for test in dict.fromkeys(k[1] for k in rows if k[0] == pipe):
        r, t = rows[(pipe, test, "redis")], rows[(pipe, test, "tally")]
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        print(f"{pipe:>3} {test:<11} {med(r,0):>11.0f} {med(r,1):>6.3f} {med(r,2):>7.2f} "
              f"{med(t,0):>11.0f} {med(t,1):>6.3f} {med(t,2):>7.2f} {med(t,0) / med(r,0):>6.2f}")
PY
}
