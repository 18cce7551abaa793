#!/usr/bin/env bash
# Vet, format-check and test the whole module. Exits non-zero on any failure.
# The first run downloads the Go modules of go.mod (into $(go env GOMODCACHE)) and builds the
# packages with the race detector: several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_tools

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

# progress passes go test's output through untouched (its per-package ok/FAIL lines are what
# CI reads) and, whenever it has been silent for 30 s, says on stderr how far it got.
progress() {
	local total=$1 done=0 start=$SECONDS buf="" line rc
	while :; do
		if IFS= read -r -t 30 line; then
			line="$buf$line"
			buf=""
			printf '%s\n' "$line"
			if [[ $line =~ ^(ok|FAIL|\?)[[:space:]] ]]; then
				done=$((done + 1))
			fi
		else
			rc=$?
			if ((rc > 128)); then # timed out: keep what came of the line, report, go on
				buf+="$line"
				printf 'test.sh: %d of %d packages done after %dm%02ds\n' "$done" "$total" \
					$(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) >&2
			else
				if [[ -n "$buf$line" ]]; then printf '%s\n' "$buf$line"; fi
				break
			fi
		fi
	done
}

total="$(go list ./... | wc -l)"
echo "== go test -race ./... ($total packages; progress every 30 s of silence)" >&2
go test -race -count=1 -timeout 20m ./... 2>&1 | progress "$total"
