#!/usr/bin/env bash
# Checks the peers themselves, with no proxy in between: starts server-everything
# (streamableHttp and sse) and the conformance reference server on free loopback
# ports, runs both client drivers over every transport (and over stdio against
# server-everything and mcp-server-time), then the conformance suite against both
# servers. Stops everything it started. Runs scripts/peers.sh first.
# Prints one line per check and a closing 'selftest: N passed, N failed'; logs are
# kept (and named) only when a check fails.
set -uo pipefail

peers="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$peers/../.." && pwd)"
eval "$("$root/scripts/peers.sh")" || { echo "selftest: scripts/peers.sh failed" >&2; exit 1; }
cd "$peers"

logs="$(mktemp -d "${TMPDIR:-/tmp}/peers-selftest.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

free_port() {
  "$PEERS_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port -> 0 once something accepts on 127.0.0.1:port (10 s at most)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start() { # name port cmd... : start a server in the background, wait for its port
  local name=$1 port=$2; shift 2
  PORT=$port "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port" || { echo "selftest: $name did not listen on $port (log: $logs/$name.log)" >&2; exit 1; }
}

passed=0 failed=0
check() { # name cmd... : run a check, keep its output in $logs/name.out
  local name=$1; shift
  if "$@" >"$logs/$name.out" 2>"$logs/$name.err"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name (exit $?; $logs/$name.out, $logs/$name.err)"
    tail -n 3 "$logs/$name.err" | sed 's/^/     /'
  fi
}

http_port=$(free_port); start everything-http "$http_port" "$NODE22" "$SERVER_EVERYTHING" streamableHttp
sse_port=$(free_port); start everything-sse "$sse_port" "$NODE22" "$SERVER_EVERYTHING" sse

everything_stdio="$NODE22 $SERVER_EVERYTHING stdio"
time_stdio="$MCP_SERVER_TIME --local-timezone UTC"
time_args=(--steps initialize,list,call --tool get_current_time --args '{"timezone":"UTC"}' --expect UTC)

for d in ts py; do
  if [[ $d == ts ]]; then drv=("$NODE22" ts-client.mjs); else drv=("$PEERS_PYTHON" py_client.py); fi
  check "$d-everything-streamable-http" "${drv[@]}" --url "http://127.0.0.1:$http_port/mcp" --transport streamable-http
  check "$d-everything-sse" "${drv[@]}" --url "http://127.0.0.1:$sse_port/sse" --transport sse
  check "$d-everything-stdio" "${drv[@]}" --stdio "$everything_stdio"
  check "$d-time-stdio" "${drv[@]}" --stdio "$time_stdio" "${time_args[@]}"
done

conformance() { PATH="$NODE22_BIN:$PATH" "$NODE22" "$CONFORMANCE" "$@"; }
check conformance-everything-baseline conformance server --url "http://127.0.0.1:$http_port/mcp" \
  --expected-failures conformance-baseline-server-everything.yml -o "$logs/conformance-everything"

if ((failed == 0)); then rm -rf "$logs"; else echo "selftest: logs kept in $logs" >&2; fi
echo "selftest: $passed passed, $failed failed"
((failed == 0))
