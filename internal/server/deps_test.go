package server_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/flint-run/flint/"

// layering is the dependency direction of docs/ARCHITECTURE.md ("What each package may import").
// Each rule names importers (a package, or a tree with "/..."), what they must not import, and
// the importers excepted. Paths are relative to the module.
var layering = []struct {
	from, to string
	except   []string
	why      string
}{
	{from: "internal/lambda", to: "...", why: "domain types import no Flint package"},
	{from: "internal/apierr", to: "...", why: "the error catalogue imports no Flint package"},
	{from: "internal/sandbox", to: "...", why: "the sandbox contract imports no Flint package"},
	{from: "internal/telemetry", to: "...", why: "metrics import no Flint package"},
	{from: "internal/sandbox/linux", to: "...", except: []string{"internal/sandbox"}, why: "a backend imports only the sandbox contract"},
	{from: "internal/sandbox/process", to: "...", except: []string{"internal/sandbox"}, why: "a backend imports only the sandbox contract"},
	{from: "...", to: "internal/sandbox/linux", except: []string{"internal/server", "cmd/flint"}, why: "only server wires backends (cmd/flint: the sandbox's re-exec'd init)"},
	{from: "...", to: "internal/sandbox/process", except: []string{"internal/server"}, why: "only server wires backends"},
	{from: "internal/api", to: "internal/worker", why: "api invokes through invoke.Service, never a pool"},
	{from: "internal/api", to: "internal/sandbox/...", why: "api knows nothing of sandboxes"},
	{from: "internal/api", to: "internal/runtimeapi", why: "api knows nothing of environments"},
	{from: "internal/api", to: "internal/store", why: "api is HTTP only: the control plane's services own the store"},
	{from: "internal/control", to: "internal/worker", why: "the control plane reaches environments only through the invocation service"},
	{from: "internal/functionurl", to: "...", except: []string{"internal/apigw"}, why: "function URL payload shapes import no Flint package but API Gateway's (payload format 2.0)"},
	{from: "internal/apigw", to: "...", why: "API Gateway's payload shapes and route tables import no Flint package"},
	{from: "internal/logs", to: "...", why: "the log store imports no Flint package"},
	{from: "internal/atomicfile", to: "...", why: "writing a file whole imports no Flint package"},
	{from: "internal/cwlogs", to: "...", except: []string{"internal/logs", "internal/apierr", "internal/awsjson"}, why: "the CloudWatch Logs API reaches logs only through the log store"},
	{from: "internal/kinesis", to: "...", except: []string{"internal/esm", "internal/asyncq", "internal/apierr", "internal/awsjson"}, why: "the Kinesis API is a facade over esm's streams"},
	{from: "...", to: "internal/worker", except: []string{"internal/invoke", "internal/server"}, why: "only invoke reaches pools (server builds the Manager)"},
	{from: "internal/worker/...", to: "internal/store", why: "the worker does not touch the store"},
	{from: "internal/worker/...", to: "internal/api", why: "the worker does not know the HTTP API"},
	{from: "internal/worker/...", to: "internal/invoke", why: "the worker does not call back up into invoke"},
	{from: "internal/invoke", to: "internal/api", why: "the invocation service knows no HTTP"},
	{from: "internal/control", to: "net/http", why: "the control plane knows no HTTP: api decodes and encodes"},
	{from: "internal/control", to: "internal/api", why: "the control plane knows no HTTP"},
	{from: "internal/control", to: "internal/sandbox/...", why: "the control plane knows no sandboxes"},
	{from: "internal/store", to: "internal/api", why: "the store knows no HTTP"},
	{from: "internal/store", to: "internal/invoke", why: "the store knows no invocations"},
	{from: "internal/store", to: "internal/worker", why: "the store knows no environments"},
	{from: "internal/store", to: "internal/sandbox/...", why: "the store knows no sandboxes"},
	{from: "internal/console", to: "internal/store", why: "the console reads through the control plane"},
	{from: "internal/console", to: "internal/sandbox/...", why: "the console knows no sandboxes"},
	{from: "...", to: "internal/api", except: []string{"internal/server"}, why: "only server wires the API"},
	{from: "...", to: "internal/server", except: []string{"internal/cli"}, why: "the composition root is used by the CLI only"},
	{from: "...", to: "internal/cli", except: []string{"cmd/flint"}, why: "the CLI is the entry point's"},
}

// match reports whether pkg (module-relative) is pattern: "..." is every Flint package,
// "a/..." is a and everything under it.
func match(pattern, pkg string) bool {
	if pattern == "..." {
		return pkg != "net/http" // every Flint package
	}
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == tree || strings.HasPrefix(pkg, tree+"/")
	}
	return pkg == pattern
}

// TestDependencyDirection checks every Flint package's imports (tests' excepted, apart from the
// backends') against the layering.
func TestDependencyDirection(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, errText(err))
	}
	imports := parseList(t, out)
	if len(imports) < 20 || imports["internal/api"] == nil {
		t.Fatalf("go list saw %d packages; want Flint's", len(imports))
	}
	var bad []string
	for pkg, deps := range imports {
		for _, dep := range deps {
			for _, r := range layering {
				if match(r.from, pkg) && match(r.to, dep) && pkg != dep && !slices.ContainsFunc(r.except, func(e string) bool {
					return match(e, pkg) || match(e, dep)
				}) {
					bad = append(bad, pkg+" imports "+dep+": "+r.why)
				}
			}
		}
	}
	// The backends' tests may use the conformance suite beside the contract, nothing else.
	cmd = exec.Command(gobin, "list", "-f", `{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
		module+"internal/sandbox/linux", module+"internal/sandbox/process")
	cmd.Dir = "../.."
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list (tests): %v\n%s", err, errText(err))
	}
	for pkg, deps := range parseList(t, out) {
		for _, dep := range deps {
			if dep != pkg && dep != "internal/sandbox" && dep != "internal/sandbox/sandboxtest" {
				bad = append(bad, pkg+" (tests) imports "+dep+": a backend's tests use only the contract and sandboxtest")
			}
		}
	}
	slices.Sort(bad)
	for _, b := range slices.Compact(bad) {
		t.Error(b)
	}
}

// parseList reads "PKG DEP DEP…" lines, keeping Flint's packages, module-relative.
func parseList(t *testing.T, out []byte) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		deps := []string{}
		for _, d := range fields[1:] {
			if rel, ok := strings.CutPrefix(d, module); ok {
				deps = append(deps, rel)
			} else if d == "net/http" { // the one standard package a layer rule names
				deps = append(deps, d)
			}
		}
		imports[pkg] = deps
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return imports
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
