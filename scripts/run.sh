#!/usr/bin/env bash
# Build Flint, start it, deploy the examples (go-echo, python-hello, node-hello) and keep serving
# until Ctrl-C. Environment: FLINT_LISTEN (default 127.0.0.1:9000), FLINT_DATA (./flint-data).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
ensure_tools

listen="${FLINT_LISTEN:-127.0.0.1:9000}"
data="${FLINT_DATA:-./flint-data}"
host="${listen%:*}"
port="${listen##*:}"
case "$host" in
"" | 0.0.0.0 | "[::]") host=127.0.0.1 ;;
esac
export FLINT_ENDPOINT="http://$host:$port"

if curl -s -o /dev/null --max-time 2 "$FLINT_ENDPOINT/2016-08-19/account-settings"; then
	echo "run.sh: something already answers at $FLINT_ENDPOINT; stop it or set FLINT_LISTEN" >&2
	exit 1
fi

echo "run.sh: building bin/flint and the Go example" >&2
# The version flint version prints: the nearest tag and commit (GOFLAGS may turn VCS stamping off).
# Static (no cgo): each linux sandbox's init is this binary re-executed, and a dynamically linked
# one spends ~3 ms of CPU in the dynamic loader and libc before Go starts (docs/PERFORMANCE.md).
CGO_ENABLED=0 go build -ldflags "-X github.com/flint-run/flint/internal/cli.version=$(git describe --tags --always --dirty 2>/dev/null || true)" -o bin/flint ./cmd/flint
build="$(mktemp -d)"
server=""
cleanup() {
	if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
		kill -TERM "$server" 2>/dev/null || true
		wait "$server" || true
	fi
	rm -rf "$build"
}
trap cleanup EXIT
mkdir "$build/go-echo"
CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -o "$build/go-echo/bootstrap" ./examples/go-echo

# The server gets its own session when it can, so Ctrl-C reaches only this script, which then
# stops the server once with SIGTERM. Without setsid the terminal's SIGINT reaches it directly.
own_session=0
if command -v setsid >/dev/null 2>&1; then
	setsid bin/flint serve --listen "$listen" --data "$data" &
	own_session=1
else
	bin/flint serve --listen "$listen" --data "$data" &
fi
server=$!

stop() {
	trap - INT TERM
	if ((own_session)) || [[ "$1" == TERM ]]; then
		kill -TERM "$server" 2>/dev/null || true
	fi
	local rc=0
	wait "$server" || rc=$?
	server=""
	exit "$rc"
}
trap 'stop INT' INT
trap 'stop TERM' TERM

ready=0
for _ in $(seq 1 60); do
	if curl -s -o /dev/null --max-time 1 "$FLINT_ENDPOINT/2016-08-19/account-settings"; then
		ready=1
		break
	fi
	if ! kill -0 "$server" 2>/dev/null; then
		echo "run.sh: flint serve exited during startup" >&2
		wait "$server" || true
		server=""
		exit 1
	fi
	sleep 0.5
done
if ((!ready)); then
	echo "run.sh: flint did not answer at $FLINT_ENDPOINT within 30 s" >&2
	exit 1
fi

bin/flint deploy "$build/go-echo" --name go-echo --runtime provided.al2023
bin/flint deploy examples/python-hello --name python-hello --runtime python3.12 --handler app.handler
bin/flint deploy examples/node-hello --name node-hello --runtime nodejs20.x --handler index.handler

flint="bin/flint"
if [[ "$FLINT_ENDPOINT" != http://127.0.0.1:9000 ]]; then
	flint="bin/flint --endpoint $FLINT_ENDPOINT"
fi
cat <<MSG

Flint is serving the Lambda API at $FLINT_ENDPOINT with go-echo, python-hello and node-hello.
Invoke them with flint:
  $flint invoke go-echo '{"hi":1}'
  $flint invoke python-hello '{"hi":1}' --tail
  $flint logs node-hello --follow
or with the AWS CLI:
  aws --endpoint-url $FLINT_ENDPOINT lambda invoke --function-name go-echo --cli-binary-format raw-in-base64-out --payload '{"hi":1}' out.json
Ctrl-C stops Flint.

MSG

rc=0
wait "$server" || rc=$?
server=""
exit "$rc"
