#!/usr/bin/env bash
# Warm sync-invoke latency of Flint beside the yardsticks, in one sitting: the loopback floor and
# AWS's emulator (RIE) from ../shared/bench, the least-work relay (bench/relay: the lower bound
# for any platform that runs an unmodified runtime behind the Runtime API), then Flint (process
# and linux sandboxes) serving the same aws-lambda-go echo function under the same load
# generator. Compare ratios, not absolute times: these machines swing threefold between idle and
# busy.
#   bash scripts/bench-warm.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
ensure_tools
n=${1:-5000}
bench=$(cd ../shared/bench && pwd)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o bin/flint ./cmd/flint
(cd "$bench/loadgen" && go build -o "$tmp/loadgen" .)
go build -o "$tmp/relay" ./bench/relay
mkdir -p "$tmp/fn"
CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -o "$tmp/fn/bootstrap" ./examples/go-echo
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# record NAME: print stdin's last line (a loadgen result) and keep it for the ratios at the end.
record() { tail -1 | tee "$tmp/result.$1"; }

echo "floor (bare loopback HTTP echo), c=1:"; bash "$bench/floor.sh" 1 "$n" | record floor
echo "RIE (AWS's emulator), c=1:"; bash "$bench/rie-baseline.sh" "$tmp/fn" 1 "$n" | record rie
port=$(free)
"$tmp/relay" -listen "127.0.0.1:$port" "$tmp/fn/bootstrap" >/dev/null &
relay=$!
for _ in $(seq 1 100); do curl -s -o /dev/null -d '{}' "http://127.0.0.1:$port/" && break; sleep 0.1; done
echo "least-work relay (the lower bound), c=1:"; "$tmp/loadgen" -url "http://127.0.0.1:$port/" -c 1 -n "$n" | record relay
kill "$relay"; wait "$relay" 2>/dev/null || true
for sandbox in process linux; do
	port=$(free)
	rm -rf "$tmp/data"
	bin/flint serve --listen "127.0.0.1:$port" --data "$tmp/data" --sandbox "$sandbox" --memory-budget 1000000 \
		--log-level warn >"$tmp/flint.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/2016-08-19/account-settings" && break; sleep 0.1; done
	bin/flint --endpoint "http://127.0.0.1:$port" deploy "$tmp/fn" --name echo --runtime provided.al2023 --memory 1769 >/dev/null
	for c in 1 16; do
		echo "flint ($sandbox sandbox), c=$c:"
		"$tmp/loadgen" -url "http://127.0.0.1:$port/2015-03-31/functions/echo/invocations" -c "$c" -n "$n" | record "$sandbox.$c"
	done
	kill "$pid"; wait "$pid" 2>/dev/null || true
done
python3 - "$tmp" <<'PY'
import json, sys
p50 = lambda name: json.load(open(f"{sys.argv[1]}/result.{name}"))["p50_us"]
floor, rie, relay = p50("floor"), p50("rie"), p50("relay")
print(f"p50 ratios, c=1 (floor {floor:.0f} µs, RIE {rie:.0f} µs, relay {relay:.0f} µs):")
print(f"  relay:         {relay / rie:.2f}× RIE  {relay / floor:.2f}× floor")
for sandbox in ("process", "linux"):
    f = p50(f"{sandbox}.1")
    print(f"  flint {sandbox + ':':9}{f / rie:.2f}× RIE  {f / floor:.2f}× floor  {f / relay:.2f}× relay")
PY
