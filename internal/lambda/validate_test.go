package lambda

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	a := Account{Region: "us-east-1", ID: "000000000000"}
	denied := func(action, res string) string {
		return "User: arn:aws:iam::000000000000:root is not authorized to perform: " + action + " on resource: " + res +
			" because no resource-based policy allows the " + action + " action"
	}
	tests := []struct {
		in, op          string
		name, qualifier string
		// want: "" (resolved), "region", "account:" + message ("" message: AWS's null), "invalid"
		want string
	}{
		{in: "hello", op: "GetFunction", name: "hello"},
		{in: "hello:live", op: "Invoke", name: "hello", qualifier: "live"},
		{in: "000000000000:function:hello:7", op: "Invoke", name: "hello", qualifier: "7"},
		{in: "arn:aws:lambda:us-east-1:000000000000:function:hello", op: "CreateFunction", name: "hello"},
		{in: "arn:aws:lambda:eu-west-1:000000000000:function:hello", op: "GetFunction", want: "region"},
		{in: "arn:aws:lambda:eu-west-1:000000000000:function:hello", op: "CreateFunction", want: "region"},
		{in: "arn:aws:lambda:eu-west-1:111111111111:function:hello", op: "Invoke", want: "region"},
		{in: "arn:aws:lambda:eu-west-1:111111111111:function:hello", op: "CreateFunction", want: "account:"},
		{in: "arn:aws:lambda:us-east-1:111111111111:function:hello", op: "UpdateFunctionConfiguration", want: "account:"},
		{in: "111111111111:function:hello", op: "AddPermission", want: "account:"},
		{in: "arn:aws:lambda:us-east-1:111111111111:function:hello", op: "Invoke",
			want: "account:" + denied("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111111111111:function:hello")},
		{in: "111111111111:function:hello:live", op: "GetFunction",
			want: "account:" + denied("lambda:GetFunction", "arn:aws:lambda:us-east-1:111111111111:function:hello:live")},
		{in: "bad name", op: "GetFunction", want: "invalid"},
		{in: "arn:aws:lambda:eu-west-1:000000000000:function:bad!", op: "GetFunction", want: "invalid"},
	}
	for _, tt := range tests {
		ref, err := a.Resolve(tt.in, tt.op)
		var (
			region  *ForeignRegionError
			account *ForeignAccountError
			inv     *InvalidError
			got     string
		)
		switch {
		case err == nil:
			if ref.Name != tt.name || ref.Qualifier != tt.qualifier {
				t.Errorf("Resolve(%q) = %q %q, want %q %q", tt.in, ref.Name, ref.Qualifier, tt.name, tt.qualifier)
			}
		case errors.As(err, &region):
			got = "region"
			if msg := err.Error(); msg != "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')" {
				t.Errorf("Resolve(%q): message %q", tt.in, msg)
			}
		case errors.As(err, &account):
			got = "account:" + account.Message
		case errors.As(err, &inv):
			got = "invalid"
		default:
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Resolve(%q, %s) = %q, want %q", tt.in, tt.op, got, tt.want)
		}
	}
}

func TestValidateHandlerAndEnvironment(t *testing.T) {
	for _, h := range []string{"app.handler", "bootstrap", "a/b.c", "é.ü"} {
		if err := ValidateHandler(h); err != nil {
			t.Errorf("ValidateHandler(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"app .handler", "a\tb", "a\nb", "a\vb", "a\fb", "a\rb", "a\x00b", string(make([]byte, 129))} {
		var inv *InvalidError
		if err := ValidateHandler(h); !errors.As(err, &inv) || !inv.Model {
			t.Errorf("ValidateHandler(%q) = %v, want a ValidationException", h, err)
		}
	}
	if err := ValidateEnvironment(map[string]string{"OK": "any value: ,=\n\t é"}, nil); err != nil {
		t.Errorf("ValidateEnvironment: %v", err)
	}
	for _, env := range []map[string]string{{"OK": "a\x00"}, {"A": "x"}, {"A\x00B": "x"}, {"1A": "x"}} {
		var inv *InvalidError
		if err := ValidateEnvironment(env, nil); !errors.As(err, &inv) || !inv.Model {
			t.Errorf("ValidateEnvironment(%q) = %v, want a ValidationException", env, err)
		}
	}
}

// TestEnvironmentSizeKeepsOrder: AWS's 4 KB error quotes the variables in the order the request
// sent them (recorded: LocalStack's test_large_environment_fails_multiple_keys), not by name.
func TestEnvironmentSizeKeepsOrder(t *testing.T) {
	var env Environment
	body := `{"Variables":{"SMALL_VAR":"ok","LARGE_VAR":"` + strings.Repeat("x", 4064) + `"}}`
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	err := ValidateEnvironment(env.Variables, env.Order)
	want := `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"SMALL_VAR":"ok","LARGE_VAR":"`
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Model || !strings.HasPrefix(inv.Message, want) {
		t.Fatalf("ValidateEnvironment = %v, want InvalidParameterValue starting %q", err, want)
	}
}

// TestParseTargetPlainNameAllocatesNothing: every invoke parses its FunctionName; a plain name
// and qualifier take no regular expression and no allocation.
func TestParseTargetPlainNameAllocatesNothing(t *testing.T) {
	for _, tt := range []struct{ name, qualifier string }{{"my-function", ""}, {"my_fn", "$LATEST"}, {"fn", "live"}, {"fn", "7"}} {
		var ref FunctionRef
		var err error
		if n := testing.AllocsPerRun(100, func() { ref, err = ParseTarget(tt.name, tt.qualifier) }); n != 0 {
			t.Errorf("ParseTarget(%q, %q): %v allocations", tt.name, tt.qualifier, n)
		}
		if err != nil || ref != (FunctionRef{Name: tt.name}) {
			t.Errorf("ParseTarget(%q, %q) = %+v, %v", tt.name, tt.qualifier, ref, err)
		}
	}
}
