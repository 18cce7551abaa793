package server_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/config"
)

const versionedPy = "import os\ndef handler(e, c):\n    return os.environ['MARK']\n"

func setMark(t *testing.T, c *lambda.Client, fn, mark string) {
	t.Helper()
	if _, err := c.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(fn), Environment: &types.Environment{Variables: map[string]string{"MARK": mark}}}); err != nil {
		t.Fatal(err)
	}
}

func TestVersionsAndAliases(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "ver", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: versionedPy}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"MARK": "one"}}
		})
	publish := func() string {
		t.Helper()
		out, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("ver")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Version)
	}
	if v := publish(); v != "1" {
		t.Fatalf("first version = %s", v)
	}
	if v := publish(); v != "1" {
		t.Errorf("publishing without changes made version %s, want 1 again", v)
	}
	setMark(t, c, "ver", "two")
	if v := publish(); v != "2" {
		t.Fatalf("second version = %s", v)
	}
	setMark(t, c, "ver", "latest")

	call := func(qualifier string) (payload, executed string) {
		t.Helper()
		out := invoke(t, c, "ver", `{}`, func(in *lambda.InvokeInput) {
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
		})
		return string(out.Payload), aws.ToString(out.ExecutedVersion)
	}
	for _, tt := range []struct{ q, payload, executed string }{
		{"", `"latest"`, "$LATEST"}, {"$LATEST", `"latest"`, "$LATEST"}, {"1", `"one"`, "1"}, {"2", `"two"`, "2"},
	} {
		if p, e := call(tt.q); p != tt.payload || e != tt.executed {
			t.Errorf("invoke qualifier %q = %s (version %s), want %s (%s)", tt.q, p, e, tt.payload, tt.executed)
		}
	}
	// name:qualifier in the function name works too.
	if out := invoke(t, c, "ver:1", `{}`); string(out.Payload) != `"one"` {
		t.Errorf("invoke ver:1 = %s", out.Payload)
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")})
	if err != nil || aws.ToString(cfg.Version) != "1" || !strings.HasSuffix(aws.ToString(cfg.FunctionArn), ":ver:1") || cfg.Environment.Variables["MARK"] != "one" {
		t.Errorf("GetFunctionConfiguration :1 = %+v, %v", cfg, err)
	}
	vs, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("ver")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs.Versions {
		got = append(got, aws.ToString(v.Version))
	}
	if strings.Join(got, ",") != "$LATEST,1,2" {
		t.Errorf("versions = %v", got)
	}

	// Aliases.
	al, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(al.AliasArn), ":function:ver:live") {
		t.Errorf("AliasArn = %s", aws.ToString(al.AliasArn))
	}
	if p, e := call("live"); p != `"one"` || e != "1" {
		t.Errorf("invoke alias live = %s (%s)", p, e)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); apiErrorCode(err) != "ResourceConflictException" {
		t.Errorf("duplicate alias: %v", err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("bad"), FunctionVersion: aws.String("9")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("alias to a missing version: %v", err)
	}
	// Weighted: half of the invokes go to version 1.
	if _, err := c.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live"), FunctionVersion: aws.String("2"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range 200 {
		p, e := call("live")
		counts[e]++
		if (e == "1") != (p == `"one"`) {
			t.Fatalf("executed version %s returned %s", e, p)
		}
	}
	if counts["1"] < 50 || counts["2"] < 50 || counts["1"]+counts["2"] != 200 {
		t.Errorf("weighted alias 50/50 ran versions %v", counts)
	}
	// A version an alias uses cannot be deleted.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")}); apiErrorCode(err) != "ResourceConflictException" {
		t.Errorf("deleting a version in use: %v", err)
	}
	if _, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String("ver"), Name: aws.String("live")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetAlias after delete: %v", err)
	}
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ver"), Qualifier: aws.String("1")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("invoke of a deleted version: %v", err)
	}
	setMark(t, c, "ver", "three")
	if v := publish(); v != "3" {
		t.Errorf("version after deleting 1 = %s, want 3 (numbers are not reused)", v)
	}
	// Deleting the function takes its versions and aliases along.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("ver")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ver"), Qualifier: aws.String("2")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("invoke of a version of a deleted function: %v", err)
	}
}

func TestReservedConcurrency(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "limited", "provided.al2023", "bootstrap", goEchoZip)
	put := func(n int32) error {
		_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("limited"), Payload: []byte(`{}`)})
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded || aws.ToString(tm.RetryAfterSeconds) == "" {
		t.Errorf("invoke with 0 reserved: %v (%+v)", err, tm)
	}
	got, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("limited")})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != 0 || got.ReservedConcurrentExecutions == nil {
		t.Errorf("GetFunctionConcurrency = %+v, %v", got, err)
	}
	if err := put(950); apiErrorCode(err) != "InvalidParameterValueException" {
		t.Errorf("reserving 950 of 1000: %v, want InvalidParameterValueException", err)
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	settings, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || settings.AccountLimit.UnreservedConcurrentExecutions == nil || *settings.AccountLimit.UnreservedConcurrentExecutions != 999 {
		t.Errorf("account settings = %+v, %v", settings.AccountLimit, err)
	}
	// With one reserved, of two overlapping invokes one is throttled.
	throttled := concurrentInvokes(t, c, "limited", 2)
	if throttled != 1 {
		t.Errorf("%d of 2 overlapping invokes throttled with 1 reserved, want 1", throttled)
	}
	if _, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("limited")}); err != nil {
		t.Fatal(err)
	}
	if throttled := concurrentInvokes(t, c, "limited", 2); throttled != 0 {
		t.Errorf("%d invokes throttled without a reservation", throttled)
	}
}

// concurrentInvokes starts n invokes that each sleep 1.5 s, and counts the throttled ones.
func concurrentInvokes(t *testing.T, c *lambda.Client, fn string, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	throttled := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"sleep_ms":1500}`)})
			mu.Lock()
			defer mu.Unlock()
			switch apiErrorCode(err) {
			case "":
			case "TooManyRequestsException":
				throttled++
			default:
				t.Errorf("invoke: %v", err)
			}
		}()
	}
	wg.Wait()
	return throttled
}

func TestAccountConcurrencyLimit(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.AccountConcurrency = 2 })
	c := newClient(s.URL())
	createFunction(t, c, "busy", "provided.al2023", "bootstrap", goEchoZip)
	if throttled := concurrentInvokes(t, c, "busy", 3); throttled != 1 {
		t.Errorf("%d of 3 overlapping invokes throttled with an account limit of 2, want 1", throttled)
	}
}

func TestMemoryBudgetEvictsIdleThenThrottles(t *testing.T) {
	s := startServer(t, t.TempDir(), func(c *config.Config) { c.MemoryBudgetMB = 256 })
	c := newClient(s.URL())
	for _, fn := range []string{"a", "b", "c"} {
		createFunction(t, c, fn, "provided.al2023", "bootstrap", goEchoZip) // 128 MB each
	}
	invoke(t, c, "a", `{}`)
	invoke(t, c, "b", `{}`)
	// The budget holds two environments; c's cold start evicts a's, the least recently used.
	invoke(t, c, "c", `{}`)
	if st := s.Workers().Stats(); st.Idle != 2 {
		t.Errorf("environments after eviction: %+v, want 2 idle", st)
	}
	if tail := decodeTail(t, invoke(t, c, "b", `{}`, withTail)); strings.Contains(tail, "Init Duration") {
		t.Errorf("b was evicted instead of a:\n%s", tail)
	}
	// Three overlapping invokes of one function: two environments fit, the third is throttled.
	if throttled := concurrentInvokes(t, c, "a", 3); throttled != 1 {
		t.Errorf("%d of 3 overlapping invokes throttled with room for 2 environments, want 1", throttled)
	}
}

func TestProvisionedConcurrency(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	createFunction(t, c, "pc", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: `import os, time
def handler(e, c):
    time.sleep(e.get("sleep", 0))
    return os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]
`}}), func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("pc"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ q, want string }{{"$LATEST", "InvalidParameterValueException"}, {"9", "ResourceNotFoundException"}, {"nope", "ResourceNotFoundException"}} {
		_, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String(tt.q), ProvisionedConcurrentExecutions: aws.Int32(1)})
		if apiErrorCode(err) != tt.want {
			t.Errorf("put provisioned on %s: %v, want %s", tt.q, err, tt.want)
		}
	}
	if _, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live")}); apiErrorCode(err) != "ProvisionedConcurrencyConfigNotFoundException" {
		t.Errorf("get before put: %v", err)
	}
	put, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 2 {
		t.Errorf("put = %+v", put)
	}
	ready := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == types.ProvisionedConcurrencyStatusEnumReady {
			ready = aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) == 2
			break
		}
	}
	if !ready {
		t.Fatal("provisioned concurrency never became READY with 2 available")
	}
	if st := s.Workers().Stats(); st.Idle != 2 {
		t.Errorf("environments = %+v, want 2 idle provisioned", st)
	}
	out := invoke(t, c, "pc", `{}`, withTail, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("live") })
	if string(out.Payload) != `"provisioned-concurrency"` || strings.Contains(decodeTail(t, out), "Init Duration") {
		t.Errorf("invoke of a provisioned alias = %s, tail:\n%s", out.Payload, decodeTail(t, out))
	}
	// Keep-alive does not reap provisioned environments.
	if n := s.Workers().Reap(time.Now().Add(24 * time.Hour)); n != 0 {
		t.Errorf("Reap destroyed %d provisioned environments", n)
	}
	// Three at once: two on provisioned environments, the spill-over on demand.
	var mu sync.Mutex
	kinds := map[string]int{}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := invoke(t, c, "pc", `{"sleep":1}`, func(in *lambda.InvokeInput) { in.Qualifier = aws.String("live") })
			mu.Lock()
			kinds[string(out.Payload)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if kinds[`"provisioned-concurrency"`] != 2 || kinds[`"on-demand"`] != 1 {
		t.Errorf("3 concurrent invokes ran on %v, want 2 provisioned and 1 on-demand", kinds)
	}
	list, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("pc")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || !strings.HasSuffix(aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn), ":pc:live") {
		t.Errorf("list = %+v, %v", list, err)
	}
	if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st := s.Workers().Stats(); st.Idle == 1 { // the on-demand one stays for its keep-alive
			return
		}
	}
	t.Errorf("provisioned environments not released after delete: %+v", s.Workers().Stats())
}
