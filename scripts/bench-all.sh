#!/usr/bin/env bash
# Every yardstick of issue 15 in one sitting, for both sandboxes, as one table:
#   figure | sandbox | Flint | yardstick | ratio | target | met?
# - warm p50 at c=1: Flint vs the least-work relay (bench/relay, one runtime);
# - c=16 throughput and p99: Flint vs the relay with 16 runtimes (bench/relay -n 16);
# - cold-start p50 through the API (flint bench --cold): Python hello vs a bare
#   `/usr/bin/python3 -c pass`, Node hello vs a bare `node -e 0` (medians of several runs), the Go
#   echo bootstrap vs exec'ing it bare until its first /next (bench/relay -startup); the cold
#   starts are 250 ms apart (flint bench's --pause) and so are the bare starts: on this VM a
#   process that slept starts about 1.5× slower than one started right after another, so both
#   sides are measured after the same idle time (docs/PERFORMANCE.md);
# - burst: 50 invokes at once of a 200 ms Python function, all cold (flint bench --burst 50):
#   the wall time until all answered, vs the 200 ms the function itself sleeps; twice (the first
#   sizes the pre-initialized runtimes' pool), then a third under warm invokes of the Go echo,
#   whose p99 is compared with a quiet one's; then 64 invokes at once of the Go echo, vs 300 ms,
#   twice too (the first sizes the pool of spare inits).
# Compare ratios, not absolute times: these machines swing threefold between idle and busy.
# Run it on an otherwise idle machine; it takes a few minutes.
#   bash scripts/bench-all.sh            (FLINT_SHARED=DIR: where bench/loadgen is, default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/tools.sh
ensure_tools
node=$(command -v node)
python=/usr/bin/python3
# The shared bench tools sit beside the checkout (../shared); a git worktree's main checkout may
# be elsewhere, so look beside that too.
if [[ -n "${FLINT_SHARED:-}" ]]; then
	candidates=("$FLINT_SHARED")
else
	common=$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
	candidates=("$root/../shared" "$root/../../shared")
	[[ -n "$common" ]] && candidates+=("$(dirname "$common")/../shared")
fi
shared=
for c in "${candidates[@]}"; do
	[[ -f "$c/bench/loadgen/main.go" ]] && shared=$c && break
done
if [[ -z "$shared" ]]; then
	echo "$0: the load generator is missing: no bench/loadgen/main.go in ${candidates[*]} (set FLINT_SHARED to the directory holding bench/loadgen)" >&2
	exit 1
fi
loadgen_src=$(cd "$shared/bench/loadgen" && pwd)
n=${BENCH_N:-5000} # warm invokes per c=1 measurement; c=16 sends 2n

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
started=$(date +%s)

echo "building…" >&2
CGO_ENABLED=0 go build -o bin/flint ./cmd/flint
(cd "$loadgen_src" && go build -o "$tmp/loadgen" .)
go build -o "$tmp/relay" ./bench/relay
mkdir -p "$tmp/go-echo" "$tmp/sleeper" "$tmp/r"
CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -o "$tmp/go-echo/bootstrap" ./examples/go-echo
cat >"$tmp/sleeper/app.py" <<'PY'
import time


def handler(event, context):
    time.sleep(0.2)
    return {"slept_ms": 200}
PY
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# put NAME: keep stdin's last line (one JSON object) as result NAME.
put() { tail -1 >"$tmp/r/$1"; }

echo "bare starts…" >&2
"$python" - "$python" "$node" >"$tmp/r/bare" <<'PY'
import json, statistics, subprocess, sys, time
# A clean environment, as Flint gives its runtimes: the caller's NODE_EXTRA_CA_CERTS, for one,
# has node read a certificate bundle and triples its start.
env = {"PATH": "/usr/bin:/bin"}
def median_us(argv, k=15):
    subprocess.run(argv, check=True, env=env)  # once unmeasured: page cache
    took = []
    for _ in range(k):
        time.sleep(0.25)  # as flint bench --cold's pause between cold starts (not timed)
        t = time.perf_counter()
        subprocess.run(argv, check=True, env=env)
        took.append((time.perf_counter() - t) * 1e6)
    return statistics.median(took)
print(json.dumps({"python_us": median_us([sys.argv[1], "-c", "pass"]), "node_us": median_us([sys.argv[2], "-e", "0"])}))
PY
"$tmp/relay" -startup 21 -pause 250ms "$tmp/go-echo/bootstrap" | put go_bare

echo "relay, c=1 and c=16…" >&2
for rc in 1 16; do
	port=$(free)
	"$tmp/relay" -listen "127.0.0.1:$port" -n "$rc" "$tmp/go-echo/bootstrap" >/dev/null &
	pids+=($!)
	for _ in $(seq 1 100); do curl -s -o /dev/null -d '{}' "http://127.0.0.1:$port/" && break; sleep 0.1; done
	if ((rc == 1)); then
		"$tmp/loadgen" -url "http://127.0.0.1:$port/" -c 1 -n "$n" | put relay.1
	else
		"$tmp/loadgen" -url "http://127.0.0.1:$port/" -c 16 -n 320 -warmup 0 >/dev/null # every connection once
		"$tmp/loadgen" -url "http://127.0.0.1:$port/" -c 16 -n $((2 * n)) | put relay.16
	fi
	kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

for sandbox in process linux; do
	echo "flint, $sandbox sandbox…" >&2
	port=$(free)
	ep="http://127.0.0.1:$port"
	bin/flint serve --listen "127.0.0.1:$port" --data "$tmp/data.$sandbox" --sandbox "$sandbox" --memory-budget 1000000 \
		--log-level warn >"$tmp/flint.$sandbox.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do curl -s -o /dev/null "$ep/2016-08-19/account-settings" && break; sleep 0.1; done
	flint() { bin/flint --endpoint "$ep" "$@"; }
	flint deploy "$tmp/go-echo" --name echo --runtime provided.al2023 --memory 1769 >/dev/null
	flint deploy examples/python-hello --name python-hello --runtime python3.11 --handler app.handler >/dev/null
	flint deploy examples/node-hello --name node-hello --runtime nodejs20.x --handler index.handler >/dev/null
	flint deploy "$tmp/sleeper" --name sleeper --runtime python3.11 --handler app.handler --memory 128 >/dev/null
	url="$ep/2015-03-31/functions/echo/invocations"
	"$tmp/loadgen" -url "$url" -c 1 -n "$n" | put "$sandbox.1"
	"$tmp/loadgen" -url "$url" -c 16 -n 320 -warmup 0 >/dev/null # 16 warm environments before measuring
	"$tmp/loadgen" -url "$url" -c 16 -n $((2 * n)) | put "$sandbox.16"
	# A cold or burst run that fails still prints its figures; the table shows what is missing.
	for fn in echo python-hello node-hello; do
		flint bench "$fn" --cold -n 21 --json | put "$sandbox.cold.$fn" || true
	done
	# The first burst meets no pre-initialized runtimes: the pool is sized from demand, and this
	# burst is the demand. The second, once the pool has refilled, is the figure the target is for.
	flint bench sleeper --burst 50 --json | put "$sandbox.burst.first" || true
	sleep 5
	flint bench sleeper --burst 50 --json | put "$sandbox.burst" || true
	sleep 5
	# Warm invokes of the Go echo while a third burst runs and the pool refills after it:
	# refilling must not starve them.
	"$tmp/loadgen" -url "$url" -c 1 -n "$n" -warmup 0 >"$tmp/r/$sandbox.during.raw" &
	during=$!
	sleep 0.2
	flint bench sleeper --burst 50 --json >/dev/null || true
	wait "$during" || true
	tail -1 "$tmp/r/$sandbox.during.raw" >"$tmp/r/$sandbox.during"
	# The Go echo's bursts as the Python's: the first sizes the pool of spare inits, the second
	# (once it has refilled, and the Python bursts' refill is over) is the figure.
	sleep 5
	flint bench echo --burst 64 --json | put "$sandbox.burst.go.first" || true
	sleep 5
	flint bench echo --burst 64 --json | put "$sandbox.burst.go" || true
	kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

python3 - "$tmp/r" "$(($(date +%s) - started))" <<'PY'
import json, os, sys
d, secs = sys.argv[1], sys.argv[2]
def get(name, key):
    try:
        with open(os.path.join(d, name)) as f:
            v = json.loads(f.read().strip() or "null")
    except (OSError, ValueError):
        return None
    if isinstance(v, (int, float)):
        return v
    return v.get(key) if isinstance(v, dict) else None
go_bare = get("go_bare", None)
rows = []
def row(fig, sandbox, flint, yard, unit, cmp, target):
    if flint is None or yard is None or not yard:
        rows.append((fig, sandbox, "n/a" if flint is None else f"{num(flint)} {unit}", "n/a" if yard is None else f"{num(yard)} {unit}", "n/a", f"{cmp} {target}×", "n/a"))
        return
    ratio = flint / yard
    met = ratio <= target if cmp == "≤" else ratio >= target
    rows.append((fig, sandbox, f"{num(flint)} {unit}", f"{num(yard)} {unit}", f"{ratio:.2f}×", f"{cmp} {target}×", "yes" if met else "NO"))
ms = lambda us: None if us is None else us / 1000
def burst_row(fig, sandbox, name, yard, target):
    # A burst whose invokes did not all start an environment (some reached the server after
    # another's environment answered, and reused it) did not measure N environments at once.
    row(fig, sandbox, ms(get(name, "all_answered_us")), yard, "ms", "≤", target)
    cold, n = get(name, "cold"), get(name, "burst")
    if cold is not None and n and cold < n:
        rows[-1] = rows[-1][:6] + (f"n/a: {cold}/{n} cold",)
num = lambda x: f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"
for sb in ("process", "linux"):
    row("warm p50, c=1 (vs relay)", sb, get(f"{sb}.1", "p50_us"), get("relay.1", "p50_us"), "µs", "≤", 1.2 if sb == "process" else 1.3)
    row("throughput, c=16 (vs relay-16)", sb, get(f"{sb}.16", "rps"), get("relay.16", "rps"), "/s", "≥", 0.8)
    row("p99, c=16 (vs relay-16)", sb, get(f"{sb}.16", "p99_us"), get("relay.16", "p99_us"), "µs", "≤", 1.5)
    row("cold p50, Python hello (vs python3 -c pass)", sb, ms(get(f"{sb}.cold.python-hello", "p50_us")), ms(get("bare", "python_us")), "ms", "≤", 0.4)
    row("cold p50, Node hello (vs node -e 0)", sb, ms(get(f"{sb}.cold.node-hello", "p50_us")), ms(get("bare", "node_us")), "ms", "≤", 0.2)
    row("cold p50, Go echo (vs bare exec to /next)", sb, ms(get(f"{sb}.cold.echo", "p50_us")), ms(go_bare), "ms", "≤", 2)
    burst_row("burst 50×200 ms Python, all answered (vs the 200 ms sleep; ≤ 3× = 0.6 s)", sb, f"{sb}.burst", 200, 3)
    burst_row("  the same, first burst (no spares yet: it sizes the pool)", sb, f"{sb}.burst.first", 200, 3)
    burst_row("burst 0→64 Go echo, all answered (vs 300 ms)", sb, f"{sb}.burst.go", 300, 1)
    burst_row("  the same, first burst (no spare inits yet: it sizes the pool)", sb, f"{sb}.burst.go.first", 300, 1)
    row("warm p99, c=1, during the burst and refill (vs quiet)", sb, get(f"{sb}.during", "p99_us"), get(f"{sb}.1", "p99_us"), "µs", "≤", 3)
cold = {sb: [(fn, get(f"{sb}.cold.{fn}", "cold"), get(f"{sb}.cold.{fn}", "not_cold"), get(f"{sb}.cold.{fn}", "init_p50_us")) for fn in ("echo", "python-hello", "node-hello")] for sb in ("process", "linux")}
head = ("figure", "sandbox", "Flint", "yardstick", "ratio", "target", "met?")
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
for r in [head, tuple("-" * x for x in w)] + rows:
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
print()
for sb in ("process", "linux"):
    b = lambda k: get(f"{sb}.burst", k)
    g = lambda k: get(f"{sb}.burst.go", k)
    g1 = lambda k: get(f"{sb}.burst.go.first", k)
    # A burst's invokes that reach the server after an environment answered reuse it: the cold
    # counts say how many environments each burst really started.
    print(f"{sb}: burst cold {b('cold')}/{b('burst')}, throttled {b('throttled')}, failed {b('failed')}; " +
          f"Go burst cold {g('cold')}/{g('burst')} (first {g1('cold')}/{g1('burst')}); " +
          ", ".join(f"{fn} cold {c}/{(c or 0) + (nc or 0)} Init p50 {'n/a' if i is None else f'{i / 1000:.1f} ms'}" for fn, c, nc, i in cold[sb]))
print(f"bench-all took {secs} s")
PY

# Density and growth (issue 15, deliverable 4): bench/scale deploys 1, 100 and 1,000 functions
# and provisions 1, 100 and 1,000 idle environments on real servers of both sandboxes and
# prints its own table (figure | sandbox | 1 | 100 | 1000 | growth; docs/PERFORMANCE.md says how
# memory per idle environment is measured); then the rows against the targets: memory per idle
# environment outside the runtime ≤ 1 MiB, per-request figures flat (≤ 1.5× from the small
# size to 1,000), totals at most linear (≤ 10× from 100 to 1,000). About two minutes.
echo "scale: 1, 100 and 1,000 functions and idle environments…" >&2
scale_started=$(date +%s)
go build -o "$tmp/scale" ./bench/scale
"$tmp/scale" -flint bin/flint -bootstrap "$tmp/go-echo/bootstrap" -json >"$tmp/r/scale" || true
python3 - "$tmp/r/scale" "$(($(date +%s) - scale_started))" "$(($(date +%s) - started))" <<'PY'
import json, sys
out, secs, total = open(sys.argv[1]).read().splitlines(), sys.argv[2], sys.argv[3]
fig = {}
if out and out[-1].startswith("{"):
    fig = json.loads(out.pop())
print()
print("\n".join(out))
print()
def val(sb, name, i):
    v = fig.get(sb, {}).get(name)
    return None if v is None else v[i]
num = lambda x: f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"
rows = []
def row(figure, sb, flint, yard, unit, target):
    if flint is None or not yard:
        rows.append((figure, sb, "n/a", "n/a", "n/a", f"≤ {target}×", "n/a"))
        return
    r = flint / yard
    rows.append((figure, sb, f"{num(flint)} {unit}", f"{num(yard)} {unit}", f"{r:.2f}×", f"≤ {target}×", "yes" if r <= target else "NO"))
mem = "idle envs: memory per env outside the runtime (KiB)"
for sb in ("process", "linux"):
    v = val(sb, mem, 2)
    row("memory per idle env outside the runtime, 1,000 envs (vs the 1 MiB target)", sb, None if v is None else v / 1024, 1, "MiB", 1)
    row("ListFunctions page p50, 1,000 functions (vs 100)", sb, val(sb, "ListFunctions p50, a page (µs)", 2), val(sb, "ListFunctions p50, a page (µs)", 1), "µs", 1.5)
    row("warm invoke p50, 1,000 functions (vs 1)", sb, val(sb, "warm invoke p50 (µs)", 2), val(sb, "warm invoke p50 (µs)", 0), "µs", 1.5)
    row("warm invoke p50, 1,000 idle envs (vs 1)", sb, val(sb, "idle envs: warm invoke p50 (µs)", 2), val(sb, "idle envs: warm invoke p50 (µs)", 0), "µs", 1.5)
    row("thawed invoke p50, 1,000 idle envs (vs 1)", sb, val(sb, "idle envs: thawed invoke p50 (µs)", 2), val(sb, "idle envs: thawed invoke p50 (µs)", 0), "µs", 1.5)
    row("restart to first answer, 1,000 functions (vs 100)", sb, val(sb, "restart to first answer (ms)", 2), val(sb, "restart to first answer (ms)", 1), "ms", 10)
    row("server RSS, 1,000 functions (vs 100)", sb, val(sb, "server RSS (MiB)", 2), val(sb, "server RSS (MiB)", 1), "MiB", 10)
    row("server RSS, 1,000 idle envs (vs 100)", sb, val(sb, "idle envs: server RSS (MiB)", 2), val(sb, "idle envs: server RSS (MiB)", 1), "MiB", 10)
head = ("figure", "sandbox", "Flint", "yardstick", "ratio", "target", "met?")
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
for r in [head, tuple("-" * x for x in w)] + rows:
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
bare = val("bare", mem, 2)
if bare is not None:
    print(f"\nthe runtime exec'd bare 1,000 times: {num(bare)} KiB per process outside its own pages (the kernel's side of a process)")
print(f"density section took {secs} s; bench-all in all {total} s")
PY
