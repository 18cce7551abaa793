#!/usr/bin/env bash
# Vet, format-check and test the whole module. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_tools

echo "== go vet ./..." >&2
go vet ./...

echo "== gofmt" >&2
unformatted="$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './flint-data/*' -print0 |
	xargs -0 -r gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "test.sh: these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go test -race ./..." >&2
go test -race -count=1 -timeout 20m ./...
