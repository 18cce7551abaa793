# Sourced by run.sh and test.sh: make sure Go, python3 and node are there, and with
# `ensure_tools test` what the tests need too (chromium, awscli, python3-boto3).
# python3 and node run the Python and Node.js examples (Flint runs functions on the host's
# interpreters); chromium runs the web console's browser test (internal/console); when one is
# missing and we are root with apt-get, install it.

ensure_tools() {
	export PATH="$PATH:/usr/local/go/bin"
	if ! command -v go >/dev/null 2>&1; then
		echo "$0: go not found (looked in PATH and /usr/local/go/bin); install Go 1.26 or later" >&2
		exit 1
	fi
	local missing=()
	command -v python3 >/dev/null 2>&1 || missing+=(python3)
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	if [[ "${1:-}" == test ]]; then
		command -v chromium >/dev/null 2>&1 || missing+=(chromium)
		# AWS CLI v2 (Debian's awscli is v2): the Logs API tests run /usr/bin/aws, never a shim on PATH.
		[[ -x /usr/bin/aws ]] || missing+=(awscli)
		# boto3 1.26 (Debian's, on /usr/bin/python3): the SQS/SNS/Kinesis client test (query protocol).
		[[ -f /usr/lib/python3/dist-packages/boto3/__init__.py ]] || missing+=(python3-boto3)
	fi
	if ((${#missing[@]} == 0)); then
		return
	fi
	if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
		echo "$0: installing ${missing[*]}" >&2
		apt-get update
		apt-get install -y "${missing[@]}"
	else
		echo "$0: missing ${missing[*]}; install them (e.g. apt-get install ${missing[*]})" >&2
		exit 1
	fi
}
