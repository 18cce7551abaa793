"""Flint's Python runtime interface client.

Runs a Lambda handler against the Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API and
behaves for user code like AWS's awslambdaric: handler resolution, context object, error
shapes, log format. Standard library only; Python 3.9 or newer.

Started as: python3 /var/runtime/python/bootstrap.py, with _HANDLER, LAMBDA_TASK_ROOT and the
usual AWS_LAMBDA_* variables set by the platform.
"""

import decimal
import importlib
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback

_API_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_ERROR_LOG_LINE_TERMINATE = "\r"
_ERROR_LOG_INDENT = "\u00a0"  # AWS indents traceback lines in logs with NO-BREAK SPACE

# The current invocation's request id, read by the logging filter.
_request_id = None


class FaultException(Exception):
    """A runtime-detected fault with a Lambda error type (Runtime.*)."""

    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------------------------------------
# Runtime API client: one keep-alive HTTP/1.1 connection, reopened once if it fails. A small
# hand-written client: http.client parses every response's headers with the email package,
# which costs more than the rest of an invocation's overhead together.


class RuntimeAPIError(Exception):
    pass


class RuntimeClient(object):
    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.host_header = address.encode("latin-1")
        try:
            # A str host goes through the idna codec in getaddrinfo, whose first use imports
            # encodings.idna and stringprep: a millisecond or two of every cold start.
            host = host.encode("ascii")
        except UnicodeEncodeError:
            pass
        self.endpoint = (host, int(port))
        self.sock = None
        self.rfile = None

    def _connect(self):
        sock = socket.create_connection(self.endpoint)  # no timeout: /next blocks
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.rfile = None

    def _do(self, method, path, body=None, headers=None):
        head = [method, b" ", path.encode("utf-8"), b" HTTP/1.1\r\nHost: ", self.host_header, b"\r\n"]
        if headers:
            for name, value in headers.items():
                head += [name.encode("latin-1"), b": ", value.encode("utf-8"), b"\r\n"]
        if body is not None:
            head += [b"Content-Length: ", str(len(body)).encode("ascii"), b"\r\n\r\n", body]
        else:
            head.append(b"\r\n")
        request = b"".join(head)
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(request)
                return self._read_response()
            except (OSError, RuntimeAPIError, ValueError):
                self.close()
                if attempt:
                    raise

    def _read_response(self):
        readline = self.rfile.readline
        line = readline(65537)
        if not line:
            raise RuntimeAPIError("Runtime API closed the connection")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise RuntimeAPIError("bad status line %r" % line[:100])
        status = int(parts[1])
        headers = {}
        while True:
            line = readline(65537)
            if line == b"\r\n" or line == b"\n":
                break
            if not line:
                raise RuntimeAPIError("Runtime API closed the connection")
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode(
                    "utf-8", "replace"
                )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body = self.rfile.read(n)
            if len(body) != n:
                raise RuntimeAPIError("Runtime API closed the connection")
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = self.rfile.read()
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_chunked(self):
        readline, read = self.rfile.readline, self.rfile.read
        chunks = []
        while True:
            line = readline(65537)
            if not line:
                raise RuntimeAPIError("Runtime API closed the connection")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers
                    line = readline(65537)
                    if line in (b"\r\n", b"\n"):
                        return b"".join(chunks)
                    if not line:
                        raise RuntimeAPIError("Runtime API closed the connection")
            chunk = read(size)
            if len(chunk) != size:
                raise RuntimeAPIError("Runtime API closed the connection")
            chunks.append(chunk)
            readline(65537)  # CRLF after the chunk

    def next(self):
        status, headers, body = self._do(b"GET", _API_PREFIX + "/invocation/next")
        if status != 200:
            raise RuntimeAPIError("Runtime API /next returned %d: %r" % (status, body[:512]))
        return headers, body

    def post_response(self, request_id, payload, content_type):
        self._do(
            b"POST",
            _API_PREFIX + "/invocation/" + request_id + "/response",
            payload,
            {"Content-Type": content_type},
        )

    def post_error(self, request_id, error):
        self._post_error(_API_PREFIX + "/invocation/" + request_id + "/error", error)

    def post_init_error(self, error):
        self._post_error(_API_PREFIX + "/init/error", error)

    def _post_error(self, path, error):
        self._do(
            b"POST",
            path,
            _dumps(error).encode("utf-8"),
            {
                "Content-Type": "application/json",
                _ERROR_TYPE_HEADER: _header_safe(error.get("errorType") or "Runtime.Unknown"),
            },
        )


def _header_safe(value):
    return "".join(c for c in value if " " <= c <= "~") or "Runtime.Unknown"


# ---------------------------------------------------------------------------------------------
# Handler loading.


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
        )


# ---------------------------------------------------------------------------------------------
# Errors: the body posted to the Runtime API and the line written to the log.


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _str(value):
    try:
        return str(value)
    except Exception:
        return "<unprintable %s object>" % type(value).__name__


def build_fault_result(exc_info, request_id=None):
    etype, value, tb = exc_info
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    # Drop this client's own frames from the top of the stack, as AWS does.
    for i in range(len(frames)):
        if "/bootstrap.py" not in frames[i][0]:
            frames = frames[i:]
            break
    return make_error(_str(value), etype.__name__, traceback.format_list(frames), request_id)


def _fault_result(e, request_id=None):
    return make_error(e.msg, e.exception_type, e.trace, request_id)


def log_error(error):
    if _json_logs():
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), "level": "ERROR"}
        record.update(error)
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(_ERROR_LOG_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(_ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Marshalling.


def _json_default(obj):
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# AWS's python3.12 runtime (only) emits non-ASCII characters unescaped.
_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"


def _dumps(obj):
    return json.dumps(obj, default=_json_default, ensure_ascii=_ENSURE_ASCII)


def _unmarshal(body, content_type):
    if content_type and content_type.split(";", 1)[0].strip() != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e))
        )


def _marshal(result):
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return _dumps(result).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e))
        )


# ---------------------------------------------------------------------------------------------
# Context object.


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field))
    return obj


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
        )


class LambdaContext(object):
    def __init__(
        self, request_id, client_context, cognito_identity, deadline_ms, invoked_function_arn
    ):
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None

        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)

        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},"
            "function_name={},memory_limit_in_mb={},function_version={},"
            "invoked_function_arn={},client_context={},identity={}])"
        ).format(
            self.aws_request_id,
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
            self.invoked_function_arn,
            self.client_context,
            self.identity,
        )


# ---------------------------------------------------------------------------------------------
# Logging: the root logger writes AWS's text format to stdout, or with AWS_LAMBDA_LOG_FORMAT=JSON
# one JSON object per record (print() output stays as it is, as on Lambda). As on Lambda, the
# root level is left at WARNING unless AWS_LAMBDA_LOG_LEVEL is set.


class LambdaLoggerHandler(logging.Handler):
    def emit(self, record):
        try:
            msg = self.format(record)
            # A record with a traceback ends without one: what is written next starts a line.
            sys.stdout.write(msg if msg.endswith("\n") else msg + "\n")
        except Exception:
            self.handleError(record)


def _json_logs():
    return (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


# The LogRecord attributes logging itself sets: any other is the caller's (extra=...) and goes
# into the JSON record as a field of its own.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "aws_request_id"}


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log format: one object per record, with the level rounded to logging's."""

    def format(self, record):
        level = logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10)
        out = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % record.msecs,
            "level": level,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info:
            out["stackTrace"] = traceback.format_tb(record.exc_info[2])
            out["errorType"] = record.exc_info[0].__name__
            out["errorMessage"] = str(record.exc_info[1])
            out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        out["requestId"] = getattr(record, "aws_request_id", None)
        for k, v in record.__dict__.items():
            if k not in _RECORD_FIELDS and k not in out:
                out[k] = v
        return json.dumps({k: v for k, v in out.items() if v is not None}, ensure_ascii=False, default=str) + "\n"


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        return True


def _setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if _json_logs():
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level == "WARN":
        level = "WARNING"
    if level in ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel({"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level, level))
    root.addHandler(handler)


def _flush():
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass


def _on_sigterm(signum, frame):
    _flush()
    sys.exit(0)


# ---------------------------------------------------------------------------------------------


def _pythonpath(environ):
    """The entries the interpreter adds to sys.path for PYTHONPATH in environ, as site does."""
    return [os.path.abspath(p) for p in (environ.get("PYTHONPATH") or "").split(os.pathsep) if p]


def _warm():
    """Does, while a pre-initialized runtime waits, what costs a cold start extra the first time.

    The compiler's first use in a process costs about 0.7 ms more than its next ones, and the
    handler's module is compiled on every cold start (its directory is read-only: no .pyc).
    """
    compile(
        '"""d"""\nimport json\n\n\ndef f(event, context):\n'
        '    print(f"x: {json.dumps(event)}")\n'
        '    if isinstance(event, dict) and event.get("k"):\n'
        '        raise ValueError("v")\n'
        '    return {"a": event, "b": context.aws_request_id, "c": [1, 2.0, None, True]}\n',
        "<warm>",
        "exec",
    )


def _bind():
    """A pre-initialized runtime, started before its function was known, waits here for it.

    Flint starts such runtimes with the runtime's own variables only, and _FLINT_BIND_FD naming a
    socket on which the runtime says it waits (one byte) and, once the function's code and layers
    are mounted and its limits apply, the function's whole environment arrives: JSON
    {"cwd": DIR, "env": ["KEY=VALUE", ...]}. From then on everything is as if the interpreter had
    started with that environment: os.environ, sys.path (for PYTHONPATH), the working directory,
    the time zone. Variables only an interpreter's start reads (other PYTHON* ones, LD_*) are
    never bound this way: Flint starts such functions' runtimes afresh.
    """
    fd = os.environ.get("_FLINT_BIND_FD")
    if fd is None:
        return
    _warm()
    fd = int(fd)
    try:
        os.write(fd, b"w")  # waiting: Flint starts the next spare once this one waits
    except OSError:
        pass  # Flint went away; the read below says so
    # To the socket's end. Flint may close its end with the byte above unread (it took this
    # spare before reading it): the socket then reports a reset once the binding, written whole
    # before the close, has been read, and that is its end too.
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    data = b"".join(chunks)
    if not data:
        sys.exit(0)  # the spare was discarded
    binding = json.loads(data)
    old = set(_pythonpath(os.environ))
    os.environ.clear()
    for kv in binding["env"]:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    head = sys.path[:1]  # the script's directory
    rest = [p for p in sys.path[1:] if p not in old]
    new = [p for p in _pythonpath(os.environ) if p not in head]
    sys.path[:] = head + [p for i, p in enumerate(new) if p not in new[:i]] + [p for p in rest if p not in new]
    os.chdir(binding["cwd"])
    time.tzset()
    # Directories looked at before the function's code was mounted over them.
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def main():
    global _request_id

    _bind()
    signal.signal(signal.SIGTERM, _on_sigterm)
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    sys.path.insert(0, task_root)

    try:
        _setup_logging()
        handler = _get_handler(os.environ.get("_HANDLER") or "")
    except FaultException as e:
        error = _fault_result(e)
    except Exception:
        error = build_fault_result(sys.exc_info())
    else:
        error = None
    if error is not None:
        log_error(error)
        _flush()
        client.post_init_error(error)
        sys.exit(1)

    environ = os.environ
    while True:
        headers, body = client.next()
        request_id = headers.get("lambda-runtime-aws-request-id") or ""
        _request_id = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id is not None:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]

        error = None
        try:
            try:
                deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
            except ValueError:
                deadline_ms = 0
            client_context = headers.get("lambda-runtime-client-context")
            if client_context:
                client_context = _parse_json_header(client_context, "Client Context")
            else:
                client_context = None
            cognito_identity = headers.get("lambda-runtime-cognito-identity")
            if cognito_identity:
                cognito_identity = _parse_json_header(cognito_identity, "Cognito Identity")
            else:
                cognito_identity = None
            context = LambdaContext(
                request_id,
                client_context,
                cognito_identity,
                deadline_ms,
                headers.get("lambda-runtime-invoked-function-arn"),
            )
            event = _unmarshal(body, headers.get("content-type"))
            payload, content_type = _marshal(handler(event, context))
        except FaultException as e:
            error = _fault_result(e, request_id)
        except Exception:
            error = build_fault_result(sys.exc_info(), request_id)

        if error is None:
            _flush()
            client.post_response(request_id, payload, content_type)
        else:
            log_error(error)
            _flush()
            client.post_error(request_id, error)


if __name__ == "__main__":
    main()
