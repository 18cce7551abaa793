package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/flint-run/flint/internal/logs"
)

// The JSON log format's functions: each logs below, at and above its level, prints a plain line,
// and returns the logging variables it saw.
const loggingPy = `import json, logging, os

log = logging.getLogger()


def handler(event, context):
    log.debug("not shown")
    log.info("hello %s", "json", extra={"order": 42})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    print("a plain line")
    return {k: os.environ.get(k) for k in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_GROUP_NAME")}
`

const loggingNode = `exports.handler = async () => {
  console.info('not shown at WARN');
  console.warn('careful', { n: 1 });
  console.error(new TypeError('bad type'));
  console.log({ not: 'shown either' });
  return { format: process.env.AWS_LAMBDA_LOG_FORMAT, level: process.env.AWS_LAMBDA_LOG_LEVEL };
};
`

// TestLoggingConfig checks LoggingConfig as Lambda applies it: the JSON format's application
// records from both managed runtimes with their levels, platform.start/platform.report events in
// place of START/END/REPORT (none above INFO), a custom log group, the configuration's defaults
// and replacement on update, and every rejection with nothing changed.
func TestLoggingConfig(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()

	createFunction(t, c, "py-json", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: loggingPy}}),
		func(in *lambda.CreateFunctionInput) {
			in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, LogGroup: aws.String("/custom/group")}
		})
	createFunction(t, c, "node-json", "nodejs20.x", "index.handler", mustZip(t, map[string]zipEntry{"index.js": {body: loggingNode}}),
		func(in *lambda.CreateFunctionInput) {
			in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelWarn,
				SystemLogLevel: types.SystemLogLevelWarn}
		})

	got, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("py-json")})
	if err != nil {
		t.Fatal(err)
	}
	if lc := got.LoggingConfig; lc == nil || lc.LogFormat != types.LogFormatJson || lc.ApplicationLogLevel != types.ApplicationLogLevelInfo ||
		lc.SystemLogLevel != types.SystemLogLevelInfo || aws.ToString(lc.LogGroup) != "/custom/group" {
		t.Errorf("py-json LoggingConfig = %+v, want JSON, INFO, INFO, /custom/group", lc)
	}

	t.Run("python", func(t *testing.T) {
		out := invoke(t, c, "py-json", `{}`, withTail)
		var vars map[string]string
		if err := json.Unmarshal(out.Payload, &vars); err != nil {
			t.Fatalf("payload %s: %v", out.Payload, err)
		}
		if vars["AWS_LAMBDA_LOG_FORMAT"] != "JSON" || vars["AWS_LAMBDA_LOG_LEVEL"] != "INFO" || vars["AWS_LAMBDA_LOG_GROUP_NAME"] != "/custom/group" {
			t.Errorf("the function saw %v", vars)
		}
		lines := strings.Split(strings.TrimSuffix(decodeTail(t, out), "\n"), "\n")
		var records []map[string]any
		for _, l := range lines {
			if l == "a plain line" {
				continue
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("log line %q is neither JSON nor the print: %v\n%s", l, err, strings.Join(lines, "\n"))
			}
			records = append(records, r)
		}
		if len(lines) != 7 || len(records) != 6 {
			t.Fatalf("log: %d lines, want platform.initStart, platform.initReport, platform.start, 2 records, the print, platform.report:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		initStart, initReport := records[0], records[1]
		if r, _ := initStart["record"].(map[string]any); initStart["type"] != "platform.initStart" || r["initializationType"] != "on-demand" ||
			r["phase"] != "init" || r["runtimeVersion"] != "python3.11" || r["functionName"] != "py-json" || r["functionVersion"] != "$LATEST" {
			t.Errorf("first line of a cold start %v, want platform.initStart", initStart)
		}
		r, _ := initReport["record"].(map[string]any)
		m, _ := r["metrics"].(map[string]any)
		if initReport["type"] != "platform.initReport" || r["status"] != "success" || r["phase"] != "init" || m["durationMs"] == nil {
			t.Errorf("second line of a cold start %v, want platform.initReport with its duration", initReport)
		}
		start, info, exc, report := records[2], records[3], records[4], records[5]
		reqID := aws.ToString(startRequestID(start))
		if start["type"] != "platform.start" || reqID == "" || start["record"].(map[string]any)["version"] != "$LATEST" {
			t.Errorf("first line %v, want platform.start with the request and $LATEST", start)
		}
		if info["level"] != "INFO" || info["message"] != "hello json" || info["logger"] != "root" || info["requestId"] != reqID ||
			info["order"] != float64(42) || info["timestamp"] == nil {
			t.Errorf("info record %v", info)
		}
		if exc["level"] != "ERROR" || exc["message"] != "failed" || exc["errorType"] != "ValueError" || exc["errorMessage"] != "boom" || exc["stackTrace"] == nil {
			t.Errorf("exception record %v", exc)
		}
		rec, _ := report["record"].(map[string]any)
		metrics, _ := rec["metrics"].(map[string]any)
		if report["type"] != "platform.report" || rec["requestId"] != reqID || rec["status"] != "success" ||
			metrics["memorySizeMB"] != float64(128) || metrics["durationMs"] == nil || metrics["billedDurationMs"] == nil || metrics["initDurationMs"] == nil {
			t.Errorf("last line %v, want platform.report with the metrics of a cold invoke", report)
		}
		// The report is still read from the record, init events and all (console, flint bench).
		if rr, ok := logs.ParseReport([]byte(decodeTail(t, out))); !ok || rr.RequestID != reqID || !rr.Cold || rr.Status != "success" || rr.Version != "$LATEST" {
			t.Errorf("ParseReport of a cold JSON record = %+v, %v", rr, ok)
		}
		if it, st := initReport["time"].(string), start["time"].(string); it == "" || it > st {
			t.Errorf("platform.initReport at %v after platform.start at %v", initReport["time"], start["time"])
		}

		// A warm invoke has no INIT, so no init events.
		warm := strings.Split(strings.TrimSuffix(decodeTail(t, invoke(t, c, "py-json", `{}`, withTail)), "\n"), "\n")
		if len(warm) != 5 || !strings.Contains(warm[0], `"type":"platform.start"`) || strings.Contains(strings.Join(warm, "\n"), "platform.init") {
			t.Errorf("warm invoke's log, want platform.start first and no init events:\n%s", strings.Join(warm, "\n"))
		}
	})

	t.Run("node at WARN, no platform events", func(t *testing.T) {
		out := invoke(t, c, "node-json", `{}`, withTail)
		if string(out.Payload) != `{"format":"JSON","level":"WARN"}` {
			t.Errorf("payload %s", out.Payload)
		}
		lines := strings.Split(strings.TrimSuffix(decodeTail(t, out), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("log of a cold start: want the warning and the error only (no platform events, init's neither):\n%s", strings.Join(lines, "\n"))
		}
		var warn, bad map[string]any
		if json.Unmarshal([]byte(lines[0]), &warn) != nil || json.Unmarshal([]byte(lines[1]), &bad) != nil {
			t.Fatalf("not JSON:\n%s", strings.Join(lines, "\n"))
		}
		if warn["level"] != "WARN" || warn["message"] != "careful { n: 1 }" || warn["requestId"] == nil {
			t.Errorf("warning record %v", warn)
		}
		msg, _ := bad["message"].(map[string]any)
		if bad["level"] != "ERROR" || msg["errorType"] != "TypeError" || msg["errorMessage"] != "bad type" || msg["stackTrace"] == nil {
			t.Errorf("error record %v", bad)
		}
	})

	t.Run("update replaces the config", func(t *testing.T) {
		upd, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("py-json"),
			LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatText}})
		if err != nil {
			t.Fatal(err)
		}
		if lc := upd.LoggingConfig; lc.LogFormat != types.LogFormatText || lc.ApplicationLogLevel != "" || lc.SystemLogLevel != "" ||
			aws.ToString(lc.LogGroup) != "/aws/lambda/py-json" {
			t.Errorf("after switching to Text: %+v, want Text, no levels, the default group", lc)
		}
		tail := decodeTail(t, invoke(t, c, "py-json", `{}`, withTail))
		// Text has no levels: the root logger stays at WARNING, as on Lambda.
		if !strings.Contains(tail, "START RequestId: ") || strings.Contains(tail, "hello json") || !strings.Contains(tail, "ValueError: boom\na plain line\n") ||
			!strings.Contains(tail, "REPORT RequestId: ") {
			t.Errorf("Text format log:\n%s", tail)
		}
	})

	t.Run("rejections", func(t *testing.T) {
		for _, tc := range []struct {
			name, code, msg string
			lc              types.LoggingConfig
		}{
			{"levels with Text", "InvalidParameterValueException",
				`LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change the LogFormat to "JSON" and try again.`,
				types.LoggingConfig{LogFormat: types.LogFormatText, SystemLogLevel: types.SystemLogLevelDebug}},
			{"levels without a format", "InvalidParameterValueException", "LogLevel is not supported",
				types.LoggingConfig{ApplicationLogLevel: types.ApplicationLogLevelDebug}},
			{"application level", "ValidationException", "at 'loggingConfig.applicationLogLevel' failed to satisfy constraint",
				types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: "LOUD"}},
			{"system level", "ValidationException", "at 'loggingConfig.systemLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [DEBUG, INFO, WARN]",
				types.LoggingConfig{LogFormat: types.LogFormatJson, SystemLogLevel: types.SystemLogLevel("ERROR")}},
			{"format", "ValidationException", "at 'loggingConfig.logFormat'", types.LoggingConfig{LogFormat: "XML"}},
			{"group", "ValidationException", "at 'loggingConfig.logGroup'", types.LoggingConfig{LogGroup: aws.String("no spaces here")}},
		} {
			_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("node-json"), LoggingConfig: &tc.lc})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || !strings.Contains(ae.ErrorMessage(), tc.msg) {
				t.Errorf("%s: %v, want %s containing %q", tc.name, err, tc.code, tc.msg)
			}
			_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("refused"), Runtime: types.RuntimePython311,
				Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: mustZip(t, map[string]zipEntry{"app.py": {body: loggingPy}})},
				LoggingConfig: &tc.lc})
			if apiErrorCode(err) != tc.code {
				t.Errorf("%s: CreateFunction %v, want %s", tc.name, err, tc.code)
			}
		}
		cur, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("node-json")})
		if err != nil {
			t.Fatal(err)
		}
		if lc := cur.LoggingConfig; lc.LogFormat != types.LogFormatJson || lc.ApplicationLogLevel != types.ApplicationLogLevelWarn || lc.SystemLogLevel != types.SystemLogLevelWarn {
			t.Errorf("after refused updates: %+v, want the JSON/WARN/WARN it had", lc)
		}
		if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("refused")}); apiErrorCode(err) != "ResourceNotFoundException" {
			t.Errorf("a refused CreateFunction left a function: %v", err)
		}
	})
}

// startRequestID is a platform event's record.requestId.
func startRequestID(event map[string]any) *string {
	rec, _ := event["record"].(map[string]any)
	id, _ := rec["requestId"].(string)
	return &id
}
