#!/usr/bin/env bash
# The hostile tenant's sweep (issue 12): builds flint, starts it as an operator would (access
# keys, linux sandbox, functions with network, NATS on loopback) and throws hostile API inputs,
# signature attacks, NATS attacks, sandbox escapes and fork/memory/disk bombs at it. Every one
# must be refused or contained, and the server must keep serving. Needs root (the linux sandbox).
# It is also part of the test suite (TestAdversarialSweep); this runs it alone and verbosely.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_tools
go test -count=1 -timeout 10m -run 'TestAdversarialSweep' -v ./internal/server/ "$@"
