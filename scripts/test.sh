#!/usr/bin/env bash
# Vet, format-check and test the whole module. Exits non-zero on any failure.
# The first run downloads the Go modules of go.mod (into $(go env GOMODCACHE)) and builds the
# packages with the race detector: several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_tools test

echo "== go vet ./..." >&2
go vet ./...

# The process backend is for developers' laptops: Flint must build (and vet) for macOS, with
# the linux sandbox stubbed out there. A few seconds once the darwin standard library is cached.
echo "== GOOS=darwin go build ./cmd/flint; GOOS=darwin go vet ./..." >&2
GOOS=darwin go build -o /dev/null ./cmd/flint
GOOS=darwin go vet ./...

echo "== gofmt" >&2
unformatted="$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './flint-data/*' -print0 |
	xargs -0 -r gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "test.sh: these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

# internal/server's end-to-end tests take most of the suite's time and little of its CPU (they
# wait on cold starts, timeouts and servers): its tests run in FLINT_SERVER_SHARDS processes of
# their own (round robin over `go test -list`), beside the other packages.
server=github.com/flint-run/flint/internal/server
shards=${FLINT_SERVER_SHARDS:-3}
mapfile -t others < <(go list ./... | grep -vx "$server")
mapfile -t tests < <(go test -race -list '^Test' ./internal/server | grep '^Test')
runs=()
for ((i = 0; i < shards; i++)); do runs[i]=""; done
for j in "${!tests[@]}"; do
	k=$((j % shards))
	runs[k]+="${runs[k]:+|}${tests[j]}"
done
total=$((${#others[@]} + shards))
echo "== go test -race ./... ($total runs: ${#others[@]} packages, internal/server in $shards; progress every 30 s of silence)" >&2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pids=() files=()
run() { # run FILE ARGS...: go test ARGS in the background, its output to FILE
	local f=$1
	shift
	go test -race -count=1 -timeout 20m "$@" >"$f" 2>&1 &
	pids+=($!) files+=("$f")
}
run "$out/others" "${others[@]}"
for ((i = 0; i < shards; i++)); do
	if [[ -n "${runs[i]}" ]]; then
		run "$out/server.$i" -run "^(${runs[i]})\$" ./internal/server
	fi
done
# Each run's output is printed whole when it ends, never interleaved with another's; every 30 s
# of silence, how many are still going.
rc=0 start=$SECONDS last=$SECONDS
done_=()
while ((${#done_[@]} < ${#pids[@]})); do
	for k in "${!pids[@]}"; do
		[[ -n "${done_[k]:-}" ]] && continue
		kill -0 "${pids[k]}" 2>/dev/null && continue
		wait "${pids[k]}" || rc=1
		cat "${files[k]}"
		done_[k]=1 last=$SECONDS
	done
	if ((SECONDS - last >= 30)); then
		printf 'test.sh: %d of %d runs done after %dm%02ds\n' "${#done_[@]}" "${#pids[@]}" \
			$(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) >&2
		last=$SECONDS
	fi
	sleep 1
done
exit "$rc"
