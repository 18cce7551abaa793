package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/flint-run/flint/internal/config"
)

// slowInitZip is a Python function whose INIT takes about a second (a sleep at module level) and
// that answers with the configuration it runs on: its variable CONF and the code's own mark.
func slowInitZip(t testing.TB, code string) []byte {
	return mustZip(t, map[string]zipEntry{"app.py": {body: "" +
		"import os, time\n" +
		"time.sleep(1)\n" +
		"CONF = os.environ.get('CONF', '')\n" +
		"def handler(event, context):\n" +
		"    return {'conf': CONF, 'code': '" + code + "', 'n': event.get('n')}\n"}})
}

// confOf is what slowInitZip's handler answers.
type confOf struct {
	Conf string `json:"conf"`
	Code string `json:"code"`
	N    int    `json:"n"`
}

// TestInvokesRaceConfigurationChanges is issue 14: invokes waiting on environments still in
// INIT while UpdateFunctionConfiguration, UpdateFunctionCode and DeleteFunction land. The
// platform retiring a configuration is never the function's error: every invoke finishes on the
// configuration it started with (200, no FunctionError, a configuration that existed), and an
// invoke of a function deleted under it either finishes or gets a platform error.
func TestInvokesRaceConfigurationChanges(t *testing.T) {
	for _, sb := range []string{"process", "linux"} {
		t.Run(sb, func(t *testing.T) {
			if sb == "linux" && os.Geteuid() != 0 {
				t.Skip("the linux sandbox needs root (CI runs as root)")
			}
			s := startServer(t, t.TempDir(), func(c *config.Config) { c.Sandbox = sb })
			c := newClient(s.URL())
			ctx := context.Background()
			const fn = "slow-init"
			createFunction(t, c, fn, "python3.12", "app.handler", slowInitZip(t, "c0"), func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"CONF": "e0"}}
			})
			// Every configuration the function has had: an answer must come from one of them.
			valid := map[confOf]bool{{Conf: "e0", Code: "c0"}: true}
			conf, code := "e0", "c0"

			const rounds, perRound = 2, 4
			var (
				mu       sync.Mutex
				problems []string
				n        int
			)
			// burst starts perRound invokes at once (each a cold start: the envs of the last
			// configuration were retired), runs change while they are in INIT, and waits for them.
			burst := func(change func(), deleted bool) {
				var wg sync.WaitGroup
				for range perRound {
					n++
					i := n
					wg.Add(1)
					go func() {
						defer wg.Done()
						out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: fmt.Appendf(nil, `{"n":%d}`, i)})
						mu.Lock()
						defer mu.Unlock()
						if p := raceProblem(out, err, i, valid, deleted); p != "" {
							problems = append(problems, p)
						}
					}()
				}
				time.Sleep(600 * time.Millisecond) // the environments are in INIT (1 s)
				change()
				wg.Wait()
			}
			for r := 1; r <= rounds; r++ {
				burst(func() {
					conf = fmt.Sprintf("e%d", r)
					mu.Lock()
					valid[confOf{Conf: conf, Code: code}] = true
					mu.Unlock()
					if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn),
						Environment: &types.Environment{Variables: map[string]string{"CONF": conf}}}); err != nil {
						t.Fatalf("UpdateFunctionConfiguration: %v", err)
					}
				}, false)
				burst(func() {
					code = fmt.Sprintf("c%d", r)
					mu.Lock()
					valid[confOf{Conf: conf, Code: code}] = true
					mu.Unlock()
					if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(fn),
						ZipFile: slowInitZip(t, code)}); err != nil {
						t.Fatalf("UpdateFunctionCode: %v", err)
					}
				}, false)
			}
			burst(func() {
				if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)}); err != nil {
					t.Fatalf("DeleteFunction: %v", err)
				}
			}, true)
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("%d invokes raced %d configuration and %d code updates and a delete; %d problems", n, rounds, rounds, len(problems))
		})
	}
}

// raceProblem describes what is wrong with invoke i's outcome, "" if nothing. After a delete
// a platform error (never a function error) is allowed.
func raceProblem(out *lambda.InvokeOutput, err error, i int, valid map[confOf]bool, deleted bool) string {
	if err != nil {
		var ae smithy.APIError
		if deleted && errors.As(err, &ae) && (ae.ErrorCode() == "ResourceNotFoundException" || ae.ErrorCode() == "ServiceException") {
			return ""
		}
		return fmt.Sprintf("invoke %d: %v", i, err)
	}
	if out.FunctionError != nil {
		return fmt.Sprintf("invoke %d: FunctionError %s: %s", i, aws.ToString(out.FunctionError), out.Payload)
	}
	var got confOf
	if err := json.Unmarshal(out.Payload, &got); err != nil || got.N != i {
		return fmt.Sprintf("invoke %d: payload %s", i, out.Payload)
	}
	got.N = 0
	if !valid[got] {
		return fmt.Sprintf("invoke %d ran on code %s with CONF=%s, a configuration the function never had", i, got.Code, got.Conf)
	}
	return ""
}
