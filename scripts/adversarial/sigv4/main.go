// Command sigv4 attacks the SigV4 front end of a running Flint server on loopback and reports
// whether each attack is held off. It exits 1 when one succeeds. The attacks are bounded in
// requests and time, and only loopback endpoints are accepted.
//
//	go run ./scripts/adversarial/sigv4 -endpoint http://127.0.0.1:PORT -key AKIA… -secret … [-pid PID]
//
// memory: -concurrency requests of -size bytes each with a bad signature at once; with -pid the
// server's VmRSS is read from /proc before, during and after, and the attack fails when its
// peak grows by more than -max-rss-growth, or it has not come back within -settle.
// lockout: -failures bad signatures from this address, then correctly signed requests from the
// same address, which must succeed.
// coverage: an Invoke signed with X-Amz-Content-Sha256: UNSIGNED-PAYLOAD (its body could be
// swapped) must be refused; a presigned query-string URL as botocore's SigV4QueryAuth makes
// for a non-S3 service (payload hash of the empty body) must be served, and one made the S3
// way (UNSIGNED-PAYLOAD) refused, as Lambda refuses it.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

type attacker struct {
	endpoint string
	creds    aws.Credentials
	region   string
	client   *http.Client
	failed   bool
}

func main() {
	var (
		a           attacker
		only        string
		pid         int
		concurrency int
		size        int64
		growthMB    int64
		settle      time.Duration
		failures    int
		sources     int
	)
	flag.StringVar(&a.endpoint, "endpoint", "", "the server's API endpoint, http://127.0.0.1:PORT (loopback only)")
	flag.StringVar(&a.creds.AccessKeyID, "key", os.Getenv("AWS_ACCESS_KEY_ID"), "a valid access key ID (env AWS_ACCESS_KEY_ID)")
	flag.StringVar(&a.creds.SecretAccessKey, "secret", os.Getenv("AWS_SECRET_ACCESS_KEY"), "its secret (env AWS_SECRET_ACCESS_KEY)")
	flag.StringVar(&a.region, "region", "us-east-1", "the server's region")
	flag.StringVar(&only, "only", "coverage,memory,lockout", "attacks to run, comma-separated, in order")
	flag.IntVar(&pid, "pid", 0, "the server's process ID, to read its memory from /proc (0: do not measure)")
	flag.IntVar(&concurrency, "concurrency", 20, "memory: requests at once")
	flag.IntVar(&sources, "sources", 1, "memory: loopback source addresses to spread them over (127.0.0.1, 127.0.0.2, …)")
	flag.Int64Var(&size, "size", 60_000_000, "memory: body bytes per request")
	flag.Int64Var(&growthMB, "max-rss-growth", 600,
		"memory: MB the server's peak VmRSS may grow by (the server holds at most 256 MiB of unauthenticated bodies; the garbage collector about doubles that)")
	flag.DurationVar(&settle, "settle", 30*time.Second, "memory: how long the server has to give memory back")
	flag.IntVar(&failures, "failures", 25, "lockout: bad signatures sent first")
	flag.Parse()
	if err := a.check(); err != nil {
		fmt.Fprintln(os.Stderr, "sigv4:", err)
		os.Exit(2)
	}
	a.client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxConnsPerHost: 0, DisableCompression: true}}
	for _, name := range strings.Split(only, ",") {
		switch strings.TrimSpace(name) {
		case "memory":
			a.memory(pid, concurrency, sources, size, growthMB<<20, settle)
		case "lockout":
			a.lockout(failures)
		case "coverage":
			a.coverage()
		default:
			fmt.Fprintf(os.Stderr, "sigv4: unknown attack %q\n", name)
			os.Exit(2)
		}
	}
	if a.failed {
		fmt.Println("RESULT: FAIL")
		os.Exit(1)
	}
	fmt.Println("RESULT: PASS")
}

func (a *attacker) check() error {
	if a.creds.AccessKeyID == "" || a.creds.SecretAccessKey == "" {
		return errors.New("-key and -secret are required")
	}
	u, err := url.Parse(a.endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-endpoint %q is not a URL", a.endpoint)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("-endpoint %q: %v", a.endpoint, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-endpoint %q is not a loopback address: this tool attacks only local servers", a.endpoint)
		}
	}
	a.endpoint = strings.TrimRight(a.endpoint, "/")
	return nil
}

func (a *attacker) verdict(ok bool, format string, args ...any) {
	word := "ok  "
	if !ok {
		word = "FAIL"
		a.failed = true
	}
	fmt.Printf("%s %s\n", word, fmt.Sprintf(format, args...))
}

// result is one response: its status and X-Amzn-ErrorType, or the transport error.
type result struct {
	status int
	code   string
	body   string
	err    error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	if r.code != "" {
		return fmt.Sprintf("%d %s", r.status, r.code)
	}
	return strconv.Itoa(r.status)
}

func (a *attacker) do(req *http.Request) result { return doWith(a.client, req) }

func doWith(c *http.Client, req *http.Request) result {
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return result{status: resp.StatusCode, code: resp.Header.Get("X-Amzn-Errortype"), body: string(b)}
}

func (a *attacker) sign(req *http.Request, creds aws.Credentials, payloadHash string) {
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "lambda", a.region, time.Now()); err != nil {
		panic(err) // only on a programming error: the signer fails on nil inputs
	}
}

func (a *attacker) wrongCreds() aws.Credentials {
	c := a.creds
	c.SecretAccessKey = "not" + c.SecretAccessKey
	return c
}

// pattern is a body of any length made of one repeated block, so a client can send many large
// bodies at once without holding them.
type pattern struct {
	n, off int64
}

var block = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	n := int64(len(b))
	if rest := p.n - p.off; n > rest {
		n = rest
	}
	i := 0
	for int64(i) < n {
		i += copy(b[i:n], block[(p.off+int64(i))%int64(len(block)):])
	}
	p.off += n
	return int(n), nil
}

func patternHash(n int64) string {
	h := sha256.New()
	io.Copy(h, &pattern{n: n})
	return hex.EncodeToString(h.Sum(nil))
}

// memory sends concurrency bodies of size bytes signed with a wrong secret, at once, from
// sources loopback addresses.
func (a *attacker) memory(pid, concurrency, sources int, size, maxGrowth int64, settle time.Duration) {
	fmt.Printf("== memory: %d concurrent %d-byte bodies with a bad signature, from %d address(es)\n", concurrency, size, sources)
	clients := make([]*http.Client, max(1, min(sources, 250)))
	for i := range clients {
		d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))}}
		clients[i] = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
	}
	before, _ := memStatus(pid)
	if pid > 0 {
		fmt.Printf("     server before: VmRSS %d MB, VmHWM %d MB\n", before.rss>>20, before.hwm>>20)
	}
	hash := patternHash(size)
	var peak int64
	stop := make(chan struct{})
	var polled sync.WaitGroup
	if pid > 0 {
		polled.Go(func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				if m, err := memStatus(pid); err == nil && m.rss > peak {
					peak = m.rss
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
	}
	results := make([]result, concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, a.endpoint+"/2015-03-31/functions/flint-adversarial/invocations", &pattern{n: size})
			req.ContentLength = size
			a.sign(req, a.wrongCreds(), hash)
			results[i] = doWith(clients[i%len(clients)], req)
		})
	}
	// Meanwhile a correctly signed client is served: a GET checked from its headers at once, an
	// Invoke (hashed before its signature is checked) once there is room for its body.
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	req, _ := http.NewRequest(http.MethodGet, a.endpoint+"/2015-03-31/functions/", nil)
	a.sign(req, a.creds, emptySHA256)
	r := a.do(req)
	a.verdict(r.err == nil && r.status == http.StatusOK, "during the attack, a correctly signed ListFunctions: %s in %v", r, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	r = a.signedInvoke()
	a.verdict(r.err == nil && r.code == "ResourceNotFoundException", "during the attack, a correctly signed Invoke: %s in %v", r, time.Since(t0).Round(time.Millisecond))
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	polled.Wait()
	counts := map[string]int{}
	for _, r := range results {
		k := r.String()
		if r.err != nil {
			k = "transport error (connection closed early)"
		}
		counts[k]++
	}
	fmt.Printf("     responses in %v: %v\n", elapsed.Round(time.Millisecond), counts)
	for _, r := range results {
		if r.err == nil && r.status < 400 {
			a.verdict(false, "a request with a bad signature was served: %s", r)
		}
	}
	if pid <= 0 {
		fmt.Println("     (no -pid: memory not measured)")
		return
	}
	a.verdict(peak-before.rss <= maxGrowth, "peak VmRSS %d MB during the attack (grew %d MB; bound %d MB)", peak>>20, (peak-before.rss)>>20, maxGrowth>>20)
	deadline := time.Now().Add(settle)
	var after memInfo
	for {
		after, _ = memStatus(pid)
		if after.rss-before.rss <= 64<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	a.verdict(after.rss-before.rss <= 64<<20, "VmRSS %d MB %v after the attack (VmHWM %d MB); want within 64 MB of %d MB",
		after.rss>>20, time.Since(start.Add(elapsed)).Round(100*time.Millisecond), after.hwm>>20, before.rss>>20)
}

type memInfo struct{ rss, hwm int64 }

func memStatus(pid int) (memInfo, error) {
	var m memInfo
	if pid <= 0 {
		return m, errors.New("no pid")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m, s.Err()
}

// lockout: bad signatures from this address must not lock out good ones from it.
func (a *attacker) lockout(failures int) {
	fmt.Printf("== lockout: %d bad signatures, then correctly signed requests, all from this address\n", failures)
	codes := map[string]int{}
	for range failures {
		req, _ := http.NewRequest(http.MethodGet, a.endpoint+"/2015-03-31/functions/", nil)
		a.sign(req, a.wrongCreds(), emptySHA256)
		codes[a.do(req).String()]++
	}
	fmt.Printf("     bad signatures got: %v\n", codes)
	req, _ := http.NewRequest(http.MethodGet, a.endpoint+"/2015-03-31/functions/", nil)
	a.sign(req, a.creds, emptySHA256)
	r := a.do(req)
	a.verdict(r.err == nil && r.status == http.StatusOK, "correctly signed ListFunctions after them: %s", r)

	r = a.signedInvoke()
	a.verdict(r.err == nil && r.code == "ResourceNotFoundException", "correctly signed Invoke after them: %s (want 404 ResourceNotFoundException: authenticated)", r)
}

// refused reports whether r is the refusal wanted, or the throttle an address that failed too
// often lately gets for any failure (refused too, without saying why).
func refused(r result, status int, code string) bool {
	return r.err == nil && (r.status == status && r.code == code || r.status == http.StatusTooManyRequests && r.code == "ThrottlingException")
}

func throttleNote(r result) string {
	if r.code == "ThrottlingException" {
		return " [throttled: this address failed too often lately; run again after Retry-After for the exact code]"
	}
	return ""
}

// signedInvoke sends a correctly signed Invoke of a function that does not exist, its body
// one the server must hash before it can check the signature (no X-Amz-Content-Sha256, as the
// SDKs send Invoke). Authenticated, the answer is the function's absence.
func (a *attacker) signedInvoke() result {
	body := `{"adversarial":true}`
	req, _ := http.NewRequest(http.MethodPost, a.endpoint+"/2015-03-31/functions/flint-adversarial-missing/invocations", strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	a.sign(req, a.creds, hex.EncodeToString(sum[:]))
	return a.do(req)
}

// coverage: what a signature must cover, and the presigned form AWS's SDKs make.
func (a *attacker) coverage() {
	fmt.Println("== coverage: unsigned payloads and presigned URLs on the Lambda API")
	invoke := a.endpoint + "/2015-03-31/functions/flint-adversarial-missing/invocations"
	req, _ := http.NewRequest(http.MethodPost, invoke, strings.NewReader(`{"swapped":"body"}`))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	a.sign(req, a.creds, "UNSIGNED-PAYLOAD")
	r := a.do(req)
	a.verdict(refused(r, http.StatusForbidden, "InvalidSignatureException"),
		"Invoke signed with UNSIGNED-PAYLOAD: %s (want 403 InvalidSignatureException: Lambda signs payloads)%s", r, throttleNote(r))

	// A body changed after signing, the signed hash declared in X-Amz-Content-Sha256.
	signedBody := []byte(`{"amount":1}`)
	sum := sha256.Sum256(signedBody)
	req, _ = http.NewRequest(http.MethodPost, invoke, strings.NewReader(string(signedBody)))
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	a.sign(req, a.creds, hex.EncodeToString(sum[:]))
	req.Body = io.NopCloser(strings.NewReader(`{"amount":9}`))
	r = a.do(req)
	a.verdict(refused(r, http.StatusForbidden, "InvalidSignatureException"),
		"Invoke whose body was swapped under a declared X-Amz-Content-Sha256: %s (want 403 InvalidSignatureException)%s", r, throttleNote(r))

	for _, tc := range []struct {
		name, hash string
		want       int
	}{
		{"SigV4QueryAuth (payload hash of the empty body, as botocore presigns for Lambda)", emptySHA256, http.StatusOK},
		{"S3-style (UNSIGNED-PAYLOAD)", "UNSIGNED-PAYLOAD", http.StatusForbidden},
	} {
		ok := func(r result) bool { return r.err == nil && r.status == tc.want }
		if tc.want == http.StatusForbidden {
			ok = func(r result) bool { return refused(r, tc.want, "InvalidSignatureException") }
		}
		req, _ := http.NewRequest(http.MethodGet, a.endpoint+"/2015-03-31/functions/?MaxItems=5&X-Amz-Expires=300", nil)
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), a.creds, req, tc.hash, "lambda", a.region, time.Now())
		if err != nil {
			panic(err)
		}
		req, _ = http.NewRequest(http.MethodGet, u, nil)
		r := a.do(req)
		a.verdict(ok(r), "presigned ListFunctions, %s: %s (want %d)%s", tc.name, r, tc.want, throttleNote(r))
	}
}
