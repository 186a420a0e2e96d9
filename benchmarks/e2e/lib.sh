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

wait_resp() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server on port $1 did not answer" >&2
  return 1
}
