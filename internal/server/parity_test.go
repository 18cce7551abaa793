package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A parityCase replays one request whose answer from real AWS was recorded, against a real
// Flint, and compares the answers. Placeholders in strings: <fn> and <fn2> (function names
// unique to the case), <layer> (a layer name unique to the case), <account>, <region>, <role>,
// <zip> (a Python handler's zip, base64), <sha> (its CodeSha256), <a*N> (N letters a), and
// <setupN:Path> (a field of setup step N's answer, dotted paths reaching inside: an id or a
// RevisionId AWS made, which a later step names).
type parityCase struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Setup runs before the request; every step must succeed. A CreateFunction step gets a
	// Python function's defaults for the fields it leaves out.
	Setup []parityStep    `json:"setup,omitempty"`
	Op    string          `json:"op"`
	Input json.RawMessage `json:"input"`
	Want  parityWant      `json:"want"`
	// Deliberate says why Flint answers differently on purpose (no IAM, one account, ...): its
	// status and error code must still be AWS's; the message and fields are not compared.
	Deliberate string `json:"deliberate,omitempty"`
	// KnownDifference says what still differs and is to be fixed; the goal is none.
	KnownDifference string `json:"known_difference,omitempty"`
}

type parityStep struct {
	Op    string          `json:"op"`
	Input json.RawMessage `json:"input"`
}

type parityWant struct {
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Errors are the "Value ... failed to satisfy constraint" parts of a ValidationException's
	// message, sorted (how the recordings keep them, since AWS's order is not stable).
	Errors []string `json:"errors,omitempty"`
	// Fields are top-level fields of a successful answer (dotted paths reach inside).
	Fields map[string]any `json:"fields,omitempty"`
}

// paritySummary is the tally the suite prints.
type paritySummary struct{ cases, matching, deliberate, known, differing int }

// TestParity replays every recorded AWS answer in testdata/parity against one Flint server.
func TestParity(t *testing.T) {
	files, err := filepath.Glob("testdata/parity/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no parity cases: %v", err)
	}
	var cases []parityCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []parityCase
		if err := json.Unmarshal(b, &cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range cs {
			cs[i].Name = strings.TrimSuffix(filepath.Base(f), ".json") + "/" + cs[i].Name
		}
		cases = append(cases, cs...)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Fatalf("duplicate case name %s", c.Name)
		}
		seen[c.Name] = true
		if c.Source == "" {
			t.Errorf("%s: no source", c.Name)
		}
	}

	s := startServer(t, t.TempDir())
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	sum256 := sha256.Sum256(zip)
	r := &parityRunner{c: newClient(s.URL()), url: s.URL(), zip: base64.StdEncoding.EncodeToString(zip),
		sha: base64.StdEncoding.EncodeToString(sum256[:])}

	var sum paritySummary
	var differing []string
	for i, c := range cases {
		sum.cases++
		vars := r.vars(i)
		diff, err := r.run(c, vars)
		switch {
		case err != nil && c.KnownDifference != "":
			// The setup itself meets the known difference (an operation Flint lacks).
			sum.known++
			t.Logf("known difference %s (%s): %v", c.Name, c.KnownDifference, err)
		case err != nil:
			t.Errorf("%s: %v", c.Name, err)
			sum.differing++
		case c.Deliberate != "" && diff == "":
			sum.deliberate++
		case diff == "" && c.KnownDifference != "":
			t.Errorf("%s: now matches AWS; drop its known_difference", c.Name)
			sum.matching++
		case diff == "":
			sum.matching++
		case c.KnownDifference != "":
			sum.known++
			t.Logf("known difference %s (%s): %s", c.Name, c.KnownDifference, diff)
		default:
			sum.differing++
			differing = append(differing, c.Name+": "+diff)
		}
	}
	for _, d := range differing {
		t.Error(d)
	}
	t.Logf("parity: %d cases, %d matching, %d deliberate, %d known differences, %d differing",
		sum.cases, sum.matching, sum.deliberate, sum.known, sum.differing)
}

type parityRunner struct {
	c   *lambda.Client
	url string
	zip string // the Python function's zip, base64
	sha string // its CodeSha256
}

var (
	aRun     = regexp.MustCompile(`<a\*(\d+)>`)
	setupRef = regexp.MustCompile(`<setup(\d+):([A-Za-z0-9.]+)>`)
)

// fill replaces the <setupN:Path> placeholders in s with what the setup steps answered.
func fill(s string, outs []map[string]any) string {
	return setupRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := setupRef.FindStringSubmatch(m)
		var n int
		fmt.Sscanf(sub[1], "%d", &n)
		if n >= len(outs) {
			return m
		}
		v, _ := lookup(outs[n], sub[2]).(string)
		return v
	})
}

func (r *parityRunner) vars(i int) *strings.Replacer {
	return strings.NewReplacer(
		"<fn>", fmt.Sprintf("parity-%d", i),
		"<fn2>", fmt.Sprintf("parity-%d-b", i),
		"<layer>", fmt.Sprintf("parity-layer-%d", i),
		"<account>", "000000000000",
		"<region>", "us-east-1",
		"<role>", role,
		"<zip>", r.zip,
		"<sha>", r.sha,
	)
}

func expand(s string, vars *strings.Replacer) string {
	s = aRun.ReplaceAllStringFunc(s, func(m string) string {
		var n int
		fmt.Sscanf(m, "<a*%d>", &n)
		return strings.Repeat("a", n)
	})
	return vars.Replace(s)
}

// run returns "" when Flint's answer matches the recorded one, else what differs.
func (r *parityRunner) run(c parityCase, vars *strings.Replacer) (string, error) {
	var outs []map[string]any
	for _, st := range c.Setup {
		in := st.Input
		if st.Op == "CreateFunction" {
			in = withFunctionDefaults(in)
		}
		out, status, err := r.call(st.Op, []byte(fill(expand(string(in), vars), outs)))
		if err != nil {
			return "", fmt.Errorf("setup %s (%d): %w", st.Op, status, err)
		}
		b, _ := json.Marshal(out)
		var doc map[string]any
		json.Unmarshal(b, &doc)
		outs = append(outs, doc)
	}
	out, status, err := r.call(c.Op, []byte(fill(expand(string(c.Input), vars), outs)))
	got := parityWant{Status: status}
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		got.Code, got.Message = ae.ErrorCode(), ae.ErrorMessage()
		if got.Message == "UnknownError" {
			got.Message = "" // the SDK's stand-in for AWS's "Message": null
		}
	case err != nil:
		return "", fmt.Errorf("%s: %w", c.Op, err)
	}
	want := c.Want
	if c.Deliberate != "" {
		// Flint differs on purpose in what the answer says, not in what kind of answer it is.
		want = parityWant{Status: want.Status, Code: want.Code}
	}
	var diffs []string
	if want.Status != 0 && want.Status != got.Status {
		diffs = append(diffs, fmt.Sprintf("status %d, AWS %d", got.Status, want.Status))
	}
	if want.Code != got.Code {
		diffs = append(diffs, fmt.Sprintf("code %q, AWS %q", got.Code, want.Code))
	}
	if want.Code != "" && want.Errors == nil && c.Deliberate == "" {
		if w := fill(expand(want.Message, vars), outs); w != normaliseMessage(got.Message) {
			diffs = append(diffs, fmt.Sprintf("message %q, AWS %q", got.Message, w))
		}
	}
	if want.Errors != nil {
		parts := validationParts(got.Message)
		var w []string
		for _, e := range want.Errors {
			w = append(w, expand(e, vars))
		}
		sort.Strings(w)
		if !reflect.DeepEqual(parts, w) {
			diffs = append(diffs, fmt.Sprintf("message %q, AWS's parts %q", got.Message, w))
		}
	}
	if err == nil && len(want.Fields) > 0 {
		b, _ := json.Marshal(out)
		var doc map[string]any
		json.Unmarshal(b, &doc)
		delete(doc, "ResultMetadata")
		keys := make([]string, 0, len(want.Fields))
		for k := range want.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv := expandAny(want.Fields[k], vars, outs)
			gv := lookup(doc, k)
			if !reflect.DeepEqual(normaliseAny(gv), wv) {
				gb, _ := json.Marshal(gv)
				wb, _ := json.Marshal(wv)
				diffs = append(diffs, fmt.Sprintf("%s %s, AWS %s", k, gb, wb))
			}
		}
	}
	return strings.Join(diffs, "; "), nil
}

var (
	validationPart = regexp.MustCompile(`(Value '.*?' at '.*?' failed to satisfy constraint: .+?(?:;|$))`)
	uuidRE         = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

// validationParts are the constraint parts of a message, sorted, as the recordings keep them.
func validationParts(msg string) []string {
	var parts []string
	for _, m := range validationPart.FindAllString(msg, -1) {
		parts = append(parts, strings.TrimSuffix(m, ";"))
	}
	sort.Strings(parts)
	return parts
}

// normaliseMessage replaces what differs run to run (ids) as the recordings do.
func normaliseMessage(s string) string { return uuidRE.ReplaceAllString(s, "<uuid>") }

func normaliseAny(v any) any {
	switch v := v.(type) {
	case string:
		return normaliseMessage(v)
	case []any:
		for i := range v {
			v[i] = normaliseAny(v[i])
		}
	case map[string]any:
		// The SDK's output structs render an absent member as null; AWS leaves it out.
		for k := range v {
			if v[k] == nil {
				delete(v, k)
				continue
			}
			v[k] = normaliseAny(v[k])
		}
	}
	return v
}

func expandAny(v any, vars *strings.Replacer, outs []map[string]any) any {
	switch v := v.(type) {
	case string:
		return fill(expand(v, vars), outs)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = expandAny(v[i], vars, outs)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k := range v {
			out[k] = expandAny(v[k], vars, outs)
		}
		return out
	}
	return v
}

func lookup(doc map[string]any, path string) any {
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func withFunctionDefaults(in json.RawMessage) json.RawMessage {
	m := map[string]any{}
	json.Unmarshal(in, &m)
	def := map[string]any{"Runtime": "python3.12", "Handler": "index.handler", "Role": "<role>",
		"Code": map[string]any{"ZipFile": "<zip>"}}
	for k, v := range def {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep the <placeholders>
	enc.Encode(m)
	return b.Bytes()
}

// call runs op through the real SDK client with its client-side validation removed (AWS
// validates on the server, and the recordings are the server's answers), or, for op "HTTP",
// sends {"method","path","body"} as is.
func (r *parityRunner) call(op string, input []byte) (any, int, error) {
	ctx := context.Background()
	if op == "HTTP" {
		return r.raw(ctx, input)
	}
	m := reflect.ValueOf(r.c).MethodByName(op)
	if !m.IsValid() {
		return nil, 0, fmt.Errorf("no operation %s", op)
	}
	in := reflect.New(m.Type().In(1).Elem())
	if len(input) > 0 {
		dec := json.NewDecoder(bytes.NewReader(input))
		dec.DisallowUnknownFields()
		if err := dec.Decode(in.Interface()); err != nil {
			return nil, 0, fmt.Errorf("input of %s: %w", op, err)
		}
	}
	var status int
	opt := func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			st.Initialize.Remove("OperationInputValidation")
			return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("parityStatus",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
						status = resp.StatusCode
					}
					return out, md, err
				}), middleware.After)
		})
	}
	res := m.Call([]reflect.Value{reflect.ValueOf(ctx), in, reflect.ValueOf(opt)})
	if e := res[1].Interface(); e != nil {
		err := e.(error)
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
		}
		return nil, status, err
	}
	return res[0].Interface(), status, nil
}

type rawError struct{ code, msg string }

func (e *rawError) Error() string                 { return e.code + ": " + e.msg }
func (e *rawError) ErrorCode() string             { return e.code }
func (e *rawError) ErrorMessage() string          { return e.msg }
func (e *rawError) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

func (r *parityRunner) raw(ctx context.Context, input []byte) (any, int, error) {
	var req struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, 0, err
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, r.url+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		return nil, 0, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(b, &doc)
	if resp.StatusCode >= 300 {
		code := resp.Header.Get("X-Amzn-ErrorType")
		if i := strings.IndexByte(code, ':'); i >= 0 {
			code = code[:i]
		}
		msg, _ := doc["message"].(string)
		if msg == "" {
			msg, _ = doc["Message"].(string)
		}
		return nil, resp.StatusCode, &rawError{code, msg}
	}
	return doc, resp.StatusCode, nil
}
