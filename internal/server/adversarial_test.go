//go:build linux

package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vishvananda/netlink"
)

// TestAdversarialSweep is the hostile tenant's sweep (issue 12) against the built binary, run
// as an operator would run it: access keys set, the linux sandbox, functions given the network
// (--function-network host) and NATS opened on loopback. It throws hostile API inputs, attacks
// on the signature check, NATS, and escapes from inside a function at one server, and checks
// that each is refused or contained, that refused requests change no stored state and leave
// nothing on disk, and that the server keeps serving throughout. scripts/adversarial.sh runs it
// alone with -v.
//
// Functions with network change the host's firewall and forwarding, so the sweep runs in a
// child process with a network namespace of its own that plays the host.
func TestAdversarialSweep(t *testing.T) {
	if os.Getenv("FLINT_ADVERSARIAL_NETNS") == "" {
		if os.Geteuid() != 0 {
			t.Skip("the sweep runs the linux sandbox, which needs root")
		}
		cmd := exec.Command("/proc/self/exe", "-test.run=^TestAdversarialSweep$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "FLINT_ADVERSARIAL_NETNS=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		t.Logf("in a network namespace of its own:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestAdversarialSweep") {
			t.Fatalf("the sweep failed: %v", err)
		}
		return
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback up: %v", err)
	}
	bin := buildFlint(t)
	data, work := t.TempDir(), t.TempDir()

	out, err := exec.Command(bin, "keys", "create", "--data", data, "--description", "adversarial").Output()
	if err != nil {
		t.Fatalf("flint keys create: %v", err)
	}
	id, secret := parseKey(t, string(out))
	natsAddr := freeAddr(t)
	srv := startFlintProcess(t, bin, data, filepath.Join(work, "serve.log"), "--log-level", "warn", "--sandbox", "linux",
		"--function-network", "host", "--nats-listen", natsAddr)
	c := clientWith(srv.url, id, secret)
	ctx := context.Background()

	createFunction(t, c, "echo", "provided.al2023", "bootstrap", goEchoZip)
	serving := func(t *testing.T, when string) {
		t.Helper()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"alive":true}`)})
		if err != nil || out.FunctionError != nil || string(out.Payload) != `{"alive":true}` {
			srv.dumpLog(t)
			t.Fatalf("the server stopped serving %s: %v %+v", when, err, out)
		}
	}
	serving(t, "at the start")

	t.Run("api inputs", func(t *testing.T) {
		py := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return e\n"}})
		other := mustZip(t, map[string]zipEntry{"app.py": {body: "def handler(e, c):\n    return 'other'\n"}})
		createFunction(t, c, "victim", "python3.11", "app.handler", py)
		layer := func(name string, files map[string]zipEntry) string {
			out, err := c.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
				Content: &types.LayerVersionContentInput{ZipFile: mustZip(t, files)}})
			if err != nil {
				t.Fatalf("PublishLayerVersion %s: %v", name, err)
			}
			return *out.LayerVersionArn
		}
		// Each link is harmless in its own layer; merged, esc resolves to s/s/../.. = ../.. of /opt.
		splitA := layer("split-a", map[string]zipEntry{"esc": {body: "s/s/../..", symlink: true}})
		splitB := layer("split-b", map[string]zipEntry{"s": {body: ".", symlink: true}})

		create := func(name string, mut func(*lambda.CreateFunctionInput)) func() error {
			return func() error {
				in := &lambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimePython311,
					Handler: aws.String("app.handler"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: py}}
				if mut != nil {
					mut(in)
				}
				_, err := c.CreateFunction(ctx, in)
				return err
			}
		}
		invokeAs := func(name, payload string) func() error {
			return func() error {
				out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)})
				if err == nil && out.FunctionError != nil {
					return fmt.Errorf("function error %s", *out.FunctionError)
				}
				return err
			}
		}
		foreignRegion := "arn:aws:lambda:eu-west-1:000000000000:function:victim"
		foreignAccount := "arn:aws:lambda:us-east-1:111111111111:function:victim"
		tests := []struct {
			name string
			call func() error
		}{
			{"NUL in an environment value", create("nulenv", func(in *lambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"A": "x\x00y"}}
			})},
			{"NUL in the handler", create("nulhandler", func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("app.hand\x00ler") })},
			{"NUL in an environment value on update", func() error {
				_, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("victim"),
					Environment: &types.Environment{Variables: map[string]string{"A": "\x00"}}})
				return err
			}},
			{"65-character name", create(strings.Repeat("n", 65), nil)},
			{"zip slip", create("slip", func(in *lambda.CreateFunctionInput) {
				in.Code.ZipFile = mustZip(t, map[string]zipEntry{"../../evil.py": {body: "x"}, "app.py": {body: "x"}})
			})},
			{"symlink out of the package", create("linkout", func(in *lambda.CreateFunctionInput) {
				in.Code.ZipFile = mustZip(t, map[string]zipEntry{"app.py": {body: "x"}, "passwd": {body: "/etc/passwd", symlink: true}})
			})},
			{"symlinks split across layers", create("splitlayers", func(in *lambda.CreateFunctionInput) { in.Layers = []string{splitA, splitB} })},
			{"existing name (409) with other code", create("victim", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = other })},
			{"create in a foreign account", func() error { return create(foreignAccount, nil)() }},
			{"create in a foreign region", func() error { return create("arn:aws:lambda:eu-west-1:000000000000:function:elsewhere", nil)() }},
			{"get in a foreign region", func() error {
				_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(foreignRegion)})
				return err
			}},
			{"get in a foreign account", func() error {
				_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(foreignAccount)})
				return err
			}},
			{"invoke in a foreign region", invokeAs(foreignRegion, `{}`)},
			{"delete in a foreign account", func() error {
				_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(foreignAccount)})
				return err
			}},
			{"payload over 6 MB", invokeAs("victim", `"`+strings.Repeat("x", 6*1024*1024+10)+`"`)},
			{"payload not JSON", invokeAs("victim", `{"unterminated`)},
			{"qualifier $latest", func() error {
				_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("victim"), Qualifier: aws.String("$latest")})
				return err
			}},
		}
		codeBefore := listDir(filepath.Join(data, "code"))
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := snapshot(t, c)
				err := tc.call()
				if err == nil {
					t.Fatal("accepted")
				}
				if st := httpStatus(err); st < 400 || st >= 500 {
					t.Errorf("status %d (%v), want a 4xx", st, err)
				}
				if after := snapshot(t, c); !maps.Equal(before, after) {
					t.Errorf("stored state changed:\nbefore %v\nafter  %v", before, after)
				}
			})
		}
		if got := listDir(filepath.Join(data, "code")); !slices.Equal(got, codeBefore) {
			t.Errorf("refused requests left code on disk: before %v, after %v", codeBefore, got)
		}
		serving(t, "after the hostile inputs")
	})

	t.Run("signatures", func(t *testing.T) {
		list := srv.url + "/2015-03-31/functions/"
		if st, _, _ := signed(t, "GET", list, "", "", nil, time.Now(), nil); st != http.StatusForbidden {
			t.Errorf("unsigned request: status %d, want 403", st)
		}
		invokeURL := srv.url + "/2015-03-31/functions/echo/invocations"
		st, _, b := signed(t, "POST", invokeURL, id, secret, []byte(`{"a":1}`), time.Now(), func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"a":2}`))
		})
		if st != http.StatusForbidden {
			t.Errorf("body swapped after signing: status %d %s, want 403", st, b)
		}
		// UNSIGNED-PAYLOAD is for S3 only: a Lambda request signed so would let its body be swapped.
		req, _ := http.NewRequest("POST", invokeURL, strings.NewReader(`{"a":3}`))
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req,
			"UNSIGNED-PAYLOAD", "lambda", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("UNSIGNED-PAYLOAD on the Lambda API: status %d %s, want it refused", resp.StatusCode, body)
			}
		}
		// A standard SigV4 presigned URL (botocore's SigV4QueryAuth, the Go signer's PresignHTTP).
		preq, _ := http.NewRequest("GET", list, nil)
		q := preq.URL.Query()
		q.Set("X-Amz-Expires", "300")
		preq.URL.RawQuery = q.Encode()
		empty := sha256.Sum256(nil)
		u, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, preq,
			hex.EncodeToString(empty[:]), "lambda", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := http.Get(u); err != nil {
			t.Fatal(err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("presigned SigV4 query URL: status %d %s, want 200", resp.StatusCode, body)
			}
		}

		// Bad signatures from an address (a NAT, a proxy) never lock out correctly signed requests.
		for i := 0; i < 40; i++ {
			signed(t, "GET", list, id, "wrong-secret", nil, time.Now(), nil)
		}
		if st, typ, b := signed(t, "GET", list, id, secret, nil, time.Now(), nil); st != http.StatusOK {
			t.Errorf("a correctly signed request after 40 bad signatures from the same address: %d %s %s", st, typ, b)
		}
		// Unauthenticated bodies are not held in memory: 12 concurrent 40 MB bodies under a bad
		// signature may not cost the server anything near their size.
		rssBefore := procStatusKB(t, srv.cmd.Process.Pid, "VmRSS")
		body := bytes.Repeat([]byte("x"), 40<<20)
		var wg sync.WaitGroup
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", invokeURL, bytes.NewReader(body))
				sum := sha256.Sum256([]byte("not this body"))
				_ = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: id, SecretAccessKey: "wrong"}, req,
					hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode < 400 {
						t.Errorf("bad signature with a 40 MB body: status %d", resp.StatusCode)
					}
				}
			}()
		}
		wg.Wait()
		peak := procStatusKB(t, srv.cmd.Process.Pid, "VmHWM")
		t.Logf("server RSS %d MB before 12×40 MB bad-signature bodies, high-water mark %d MB", rssBefore>>10, peak>>10)
		if grew := peak - rssBefore; grew > 300<<10 {
			t.Errorf("unauthenticated bodies grew the server by %d MB (12×40 MB sent), want well under their size", grew>>10)
		}
		serving(t, "after the signature attacks")
	})

	t.Run("nats", func(t *testing.T) {
		if nc, err := nats.Connect("nats://"+natsAddr, nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Error("an unauthenticated NATS client was let in")
		}
		token, err := os.ReadFile(filepath.Join(data, "nats-token"))
		if err != nil {
			t.Fatalf("no NATS token for outside clients: %v", err)
		}
		nc, err := nats.Connect("nats://"+natsAddr, nats.Token(strings.TrimSpace(string(token))), nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatalf("the token's holder cannot connect: %v", err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if kv, err := js.KeyValue(tctx, "flint_functions"); err == nil {
			if _, err := kv.Put(tctx, "victim", []byte(`{"forged":true}`)); err == nil {
				t.Error("an outside NATS client rewrote a function's record")
			}
		}
		if _, err := js.OrderedConsumer(tctx, "FLINT_LOGS", jetstream.OrderedConsumerConfig{}); err == nil {
			t.Error("an outside NATS client opened a consumer on the function logs")
		}
		if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("victim")}); err != nil {
			t.Errorf("victim after the NATS attacks: %v", err)
		}
		serving(t, "after the NATS attacks")
	})

	t.Run("escapes", func(t *testing.T) {
		createFunction(t, c, "probe", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: hostilePy}}),
			func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(20); in.MemorySize = aws.Int32(128) })
		// Keep another environment busy so that its Runtime API is listening while the probe scans.
		createFunction(t, c, "sleeper", "python3.11", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "import time\ndef handler(e, c):\n    time.sleep(e['s'])\n    return 'slept'\n"}}))
		sleeping := make(chan error, 1)
		go func() {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("sleeper"), Payload: []byte(`{"s":6}`)})
			sleeping <- err
		}()
		waitFor(t, "the sleeper busy", time.Minute, func() bool {
			resp, err := http.Get(srv.url + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), "\nflint_environments{state=\"busy\"} 1\n")
		})
		ports := listeningPorts(t, srv.cmd.Process.Pid)
		absData, _ := filepath.Abs(data)
		ev, _ := json.Marshal(map[string]any{"ports": ports, "secret": absData})
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("probe"), Payload: ev})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("probe: %v %+v %s", err, out, out.Payload)
		}
		var results map[string]struct {
			Escaped bool   `json:"escaped"`
			Detail  string `json:"detail"`
		}
		if err := json.Unmarshal(out.Payload, &results); err != nil {
			t.Fatalf("probe answer %s: %v", out.Payload, err)
		}
		names := make([]string, 0, len(results))
		for name := range results {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			r := results[name]
			if r.Escaped {
				t.Errorf("escape %q succeeded: %s", name, r.Detail)
			} else {
				t.Logf("contained: %-28s %s", name, r.Detail)
			}
		}
		if err := <-sleeping; err != nil {
			t.Errorf("sleeper: %v", err)
		}

		for _, bomb := range []string{"fork", "memory", "disk"} {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("probe"), Payload: []byte(`{"bomb":"` + bomb + `"}`)})
			if err != nil {
				t.Errorf("%s bomb: the API failed: %v", bomb, err)
				continue
			}
			fe := ""
			if out.FunctionError != nil {
				fe = *out.FunctionError
			}
			t.Logf("%s bomb: function error %q, %s", bomb, fe, out.Payload)
			if fe == "" && !bytes.Contains(out.Payload, []byte("contained")) {
				t.Errorf("%s bomb not contained: %s", bomb, out.Payload)
			}
			serving(t, "after a "+bomb+" bomb")
		}
	})

	t.Run("one server per data directory", func(t *testing.T) {
		cmd := exec.Command(bin, "serve", "--listen", freeAddr(t), "--data", data, "--sandbox", "linux")
		var outBuf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("a second server on the same data directory exited 0: %s", outBuf.String())
			}
			if !strings.Contains(outBuf.String(), strconv.Itoa(srv.cmd.Process.Pid)) {
				t.Errorf("the second server's message does not name the holder's pid %d: %s", srv.cmd.Process.Pid, outBuf.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("a second server on the same data directory was still running after 30 s: %s", outBuf.String())
		}
		serving(t, "after a second server tried its data directory")
	})
}

// hostilePy tries, from inside an environment, what a hostile tenant would: regain privileges,
// reach the host's and other environments' services, read the host's layout, or exhaust the
// node. Each check reports whether it escaped; bombs report whether they were contained.
const hostilePy = `import ctypes, json, os, socket, time
libc = ctypes.CDLL(None, use_errno=True)

def ok(cond, detail):
    return {"escaped": bool(cond), "detail": str(detail)[:300]}

def tryit(f):
    try:
        return f()
    except Exception as e:
        return ok(False, repr(e))

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("latin-1")
    except Exception as e:
        return ""

def gateway():
    for line in read("/proc/net/route").splitlines()[1:]:
        f = line.split()
        if len(f) > 2 and f[1] == "00000000":
            g = int(f[2], 16)
            return socket.inet_ntoa(g.to_bytes(4, "little"))
    return None

def connects(host, port):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((host, port))
        return True
    except Exception:
        return False
    finally:
        s.close()

def bomb(kind):
    if kind == "fork":
        n = 0
        try:
            for _ in range(100000):
                pid = os.fork()
                if pid == 0:
                    time.sleep(20)
                    os._exit(0)
                n += 1
        except OSError as e:
            return "contained after %d processes: %r" % (n, e)
        return "forked %d processes" % n
    if kind == "memory":
        keep = []
        for _ in range(64):
            keep.append(bytearray(64 << 20))
        return "allocated %d MB" % (64 * len(keep))
    if kind == "disk":
        n = 0
        try:
            with open("/tmp/fill", "wb") as f:
                chunk = b"x" * (1 << 20)
                for _ in range(8192):
                    f.write(chunk)
                    f.flush()
                    n += 1
        except OSError as e:
            return "contained after %d MB in /tmp: %r" % (n, e)
        finally:
            try:
                os.remove("/tmp/fill")
            except OSError:
                pass
        return "wrote %d MB" % n

def handler(event, context):
    if "bomb" in event:
        return bomb(event["bomb"])
    r = {}
    r["uid 0"] = ok(os.getuid() == 0 or os.geteuid() == 0, "uid %d euid %d" % (os.getuid(), os.geteuid()))
    cap = [l for l in read("/proc/self/status").splitlines() if l.startswith("CapEff")]
    r["capabilities"] = ok(not cap or int(cap[0].split()[1], 16) != 0, cap)
    r["setuid 0"] = tryit(lambda: (os.setuid(0), ok(True, "setuid(0) worked"))[1])
    r["mount"] = ok(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0, "errno %d" % ctypes.get_errno())
    r["user namespace"] = ok(libc.unshare(0x10000000) == 0, "errno %d" % ctypes.get_errno())
    r["ptrace pid 1"] = ok(libc.ptrace(16, 1, None, None) == 0, "errno %d" % ctypes.get_errno())
    r["chroot"] = ok(libc.chroot(b"/tmp") == 0, "errno %d" % ctypes.get_errno())
    r["raw socket"] = tryit(lambda: (socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), ok(True, "raw socket opened"))[1])
    r["packet socket"] = tryit(lambda: (socket.socket(socket.AF_PACKET, socket.SOCK_RAW), ok(True, "packet socket opened"))[1])
    r["/etc/shadow"] = tryit(lambda: ok(True, open("/etc/shadow").read()[:40]))
    r["write /var/task"] = tryit(lambda: (open("/var/task/x", "w"), ok(True, "wrote /var/task/x"))[1])
    r["write /etc"] = tryit(lambda: (open("/etc/x", "w"), ok(True, "wrote /etc/x"))[1])
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    r["host processes"] = ok(len(pids) > 10, "%d processes visible" % len(pids))
    for path in ["/proc/1/cmdline", "/proc/self/mountinfo", "/proc/self/mounts", "/proc/1/environ", "/proc/self/environ", "/proc/self/cgroup"]:
        r["host path in " + path] = ok(event["secret"] in read(path), read(path)[:300])
    reached = []
    hosts = ["127.0.0.1"]
    g = gateway()
    if g:
        hosts.append(g)
    for h in hosts:
        for p in event["ports"]:
            if connects(h, p):
                reached.append("%s:%d" % (h, p))
    r["host services"] = ok(reached, "reached %s of %d ports on %s" % (reached, len(event["ports"]), hosts))
    return r
`

var keyLine = regexp.MustCompile(`(?m)^(AccessKeyId|SecretAccessKey):\s+(\S+)`)

func parseKey(t *testing.T, out string) (id, secret string) {
	t.Helper()
	for _, m := range keyLine.FindAllStringSubmatch(out, -1) {
		if m[1] == "AccessKeyId" {
			id = m[2]
		} else {
			secret = m[2]
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("no key in %q", out)
	}
	return id, secret
}

// httpStatus is the HTTP status of an SDK error (0 when it has none).
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// procStatusKB reads a kB field of /proc/PID/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// listeningPorts lists the TCP ports pid listens on in the host's network namespace: the API,
// NATS, and any listener the server holds for an environment, none of which a function may reach.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	owned := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil {
			if inode, ok := strings.CutPrefix(l, "socket:["); ok {
				owned[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	var ports []int
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !owned[f[9]] { // 0A: LISTEN; f[9]: the socket's inode
				continue
			}
			_, portHex, _ := strings.Cut(f[1], ":")
			p, err := strconv.ParseInt(portHex, 16, 32)
			if err == nil && !slices.Contains(ports, int(p)) {
				ports = append(ports, int(p))
			}
		}
	}
	if len(ports) == 0 {
		t.Fatal("the server listens on no port")
	}
	slices.Sort(ports)
	return ports
}
