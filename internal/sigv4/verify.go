package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for Config's zero values; doc.go says why each was chosen.
const (
	DefaultMaxSkew           = 5 * time.Minute
	DefaultFailureLimit      = 20
	DefaultFailureWindow     = 10 * time.Second
	DefaultMaxTrackedClients = 10000
	// MaxPresignExpires is the longest X-Amz-Expires accepted, as S3 allows.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// KeyLookup finds the secret access key for an access key ID. *Keys implements it.
type KeyLookup interface {
	Lookup(accessKeyID string) (secret string, ok bool)
}

var _ KeyLookup = (*Keys)(nil)

// Config configures a Verifier. Only Keys is required.
type Config struct {
	Keys KeyLookup
	// Region, when set, is the only region a credential scope may name, as AWS rejects a
	// request signed for another region. Empty accepts any region.
	Region string
	// Service, when set, returns the signing name a request must be scoped to ("lambda",
	// "scheduler"), or "" to accept any. Flint serves more than one AWS API on one listener,
	// so the expected name depends on the route.
	Service func(r *http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far a request's signing time may be from Now either way; zero means
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// FailureLimit failed requests from one client address, or with one access key, within
	// FailureWindow put it over its limit until the window ends: its further failures are
	// answered with ThrottlingException (and not logged one by one). A correctly signed
	// request is served whatever the counts. Zero means DefaultFailureLimit; negative disables
	// the limit.
	FailureLimit int
	// FailureWindow: zero means DefaultFailureWindow.
	FailureWindow time.Duration
	// MaxTrackedClients bounds the addresses (and, apart, the access keys) the limiter
	// remembers; zero means DefaultMaxTrackedClients. Past it the oldest is forgotten.
	MaxTrackedClients int
}

// Identity is who signed a request: the access key and the credential scope it signed for.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
}

// Verifier checks AWS Signature Version 4 on incoming requests. It is safe for concurrent use
// and starts no goroutines.
type Verifier struct {
	keys     KeyLookup
	region   string
	service  func(*http.Request) string
	now      func() time.Time
	skew     time.Duration
	sources  *limiter[netip.Addr] // failures per client address; nil when disabled
	keyFails *limiter[string]     // failures per access key ID (ours only); nil when disabled
	cache    keyCache

	gateOnce sync.Once
	gate     *bodyGate // bodies held before authentication, bounded across all its Middlewares
}

// NewVerifier returns a Verifier for cfg, with defaults for its zero fields.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("sigv4: Config.Keys is required")
	}
	if cfg.MaxSkew < 0 || cfg.FailureWindow < 0 || cfg.MaxTrackedClients < 0 {
		return nil, errors.New("sigv4: MaxSkew, FailureWindow and MaxTrackedClients must not be negative")
	}
	v := &Verifier{keys: cfg.Keys, region: cfg.Region, service: cfg.Service, now: cfg.Now, skew: cfg.MaxSkew}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew == 0 {
		v.skew = DefaultMaxSkew
	}
	if cfg.FailureLimit >= 0 {
		limit, window, max := cfg.FailureLimit, cfg.FailureWindow, cfg.MaxTrackedClients
		if limit == 0 {
			limit = DefaultFailureLimit
		}
		if window == 0 {
			window = DefaultFailureWindow
		}
		if max == 0 {
			max = DefaultMaxTrackedClients
		}
		v.sources = newLimiter[netip.Addr](limit, window, max)
		v.keyFails = newLimiter[string](limit, window, max)
	}
	return v, nil
}

// Verify checks r's signature. body is the request body the caller has already read (r.Body
// is not touched); its SHA-256 is the payload hash the signature must cover. A failure is an
// *Error with AWS's code, message and status, and counts toward the caller's failure limits.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	p, err := v.prepare(r)
	if err != nil {
		return Identity{}, err
	}
	id, err := v.finish(&p, sha256.Sum256(body))
	if err != nil {
		return Identity{}, err
	}
	return id, nil
}

// pending is a request whose authentication passed every check that does not need the body.
type pending struct {
	r             *http.Request
	client        netip.Addr
	now           time.Time
	presigned     bool
	accessKeyID   string
	secret        string // "" until the access key is found to be one of ours
	date          string // scope date, YYYYMMDD
	region        string
	service       string
	amzDate       string // the signing time as it enters the string to sign
	signedHeaders string
	signature     string
	query         url.Values
	token         bool // a session token was sent
}

// prepare runs the checks that need only the request line and headers, in the order AWS's
// front end runs them, so that the Middleware can reject a request before reading its body.
func (v *Verifier) prepare(r *http.Request) (pending, *Error) {
	now := v.now()
	p, err := v.parse(r, now)
	p.client = clientAddr(r.RemoteAddr)
	if err != nil {
		return p, v.failed(&p, err)
	}
	return p, nil
}

// failed counts a failure against the client's address and, when the access key is one of
// ours, against the key, and returns the error to answer with: err, or ThrottlingException
// once either is over its limit. Only failures are ever answered with the throttle, so a
// client behind the same address as a failing one, or sharing its key, is still served when
// it signs correctly.
func (v *Verifier) failed(p *pending, err *Error) *Error {
	if v.sources == nil {
		return err
	}
	wait, over, reached := v.sources.fail(p.client, p.now)
	if p.secret != "" {
		kwait, kover, kreached := v.keyFails.fail(p.accessKeyID, p.now)
		if kover && (!over || kwait > wait) {
			wait = kwait
		}
		over, reached = over || kover, reached || kreached
	}
	if !over {
		return err
	}
	t := errThrottled(wait)
	t.limitReached = reached
	t.Detail = err.Code + ": " + err.Message // the failure behind the throttle, for the log
	return t
}

func (v *Verifier) parse(r *http.Request, now time.Time) (pending, *Error) {
	p := pending{r: r, now: now}
	if r.URL.RawQuery != "" {
		p.query, _ = url.ParseQuery(r.URL.RawQuery)
	}
	auth := r.Header.Get("Authorization")
	_, presigned := p.query["X-Amz-Algorithm"]
	var (
		alg, cred string
		err       *Error
	)
	switch {
	case auth != "" && presigned:
		// Two signatures for one request: AWS accepts neither.
		return p, errSignatureMismatch()
	case presigned:
		p.presigned = true
		alg, cred, err = v.parseQuery(&p)
	case auth != "":
		alg, cred, err = v.parseHeader(&p, auth)
	default:
		return p, errMissingToken()
	}
	if err != nil {
		return p, err
	}

	if !signsHost(p.signedHeaders) {
		return p, errInvalid(msgHostNotSigned)
	}
	if alg != algorithm {
		return p, errUnsupportedAlgorithm(alg)
	}
	parts, ok := splitCredential(cred)
	if !ok {
		return p, errCredentialElements(cred)
	}
	p.accessKeyID, p.date, p.region, p.service = parts[0], parts[1], parts[2], parts[3]
	if msg := v.scopeErrors(r, parts, p.amzDate); msg != "" {
		return p, errInvalid(msg)
	}
	secret, ok := v.keys.Lookup(p.accessKeyID)
	if !ok {
		return p, errUnrecognizedClient()
	}
	p.secret = secret
	p.token = r.Header.Get("X-Amz-Security-Token") != "" || first(p.query, "X-Amz-Security-Token") != ""
	return p, nil
}

// parseHeader reads an Authorization header. Parameters are separated by commas or spaces (AWS
// accepts either); the last value of a repeated parameter wins.
func (v *Verifier) parseHeader(p *pending, auth string) (alg, cred string, err *Error) {
	header := strings.TrimSpace(auth)
	if !strings.HasPrefix(header, "AWS4-") {
		// Another scheme (Basic, Bearer, SigV2): to AWS that is no SigV4 token at all.
		return "", "", errMissingToken()
	}
	alg, rest := header, ""
	if i := strings.IndexAny(header, " \t,"); i >= 0 {
		alg, rest = header[:i], header[i+1:]
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] != ',' && rest[i] != ' ' && rest[i] != '\t' {
			i++
		}
		param := rest[:i]
		if i < len(rest) {
			i++
		}
		rest = rest[i:]
		if param == "" {
			continue
		}
		k, val, ok := strings.Cut(param, "=")
		if !ok {
			return "", "", errNoEqualSign(param, header)
		}
		switch k {
		case "Credential":
			cred = val
		case "SignedHeaders":
			p.signedHeaders = val
		case "Signature":
			p.signature = val
		}
	}
	date := p.r.Header.Get("X-Amz-Date")
	if date == "" {
		date = p.r.Header.Get("Date")
	}
	var missing []string
	if cred == "" {
		missing = append(missing, "Credential")
	}
	if p.signature == "" {
		missing = append(missing, "Signature")
	}
	if p.signedHeaders == "" {
		missing = append(missing, "SignedHeaders")
	}
	if len(missing) > 0 || date == "" {
		return "", "", missingParams(missing, date == "", header)
	}
	t, ok := parseAmzDate(date)
	if ok {
		p.amzDate = date
	} else if t, ok = parseHTTPDate(date); ok {
		p.amzDate = t.Format(timeFormat)
	} else {
		return "", "", errBadDate(date)
	}
	if err := v.checkSkew(t, p.now); err != nil {
		return "", "", err
	}
	return alg, cred, nil
}

// parseHTTPDate accepts the Date header's HTTP formats, which some clients sign instead of
// X-Amz-Date.
func parseHTTPDate(s string) (time.Time, bool) {
	t, err := http.ParseTime(s)
	return t.UTC(), err == nil
}

// parseQuery reads a presigned URL's X-Amz-* parameters. Its validity runs from X-Amz-Date
// (less the skew) to X-Amz-Date plus X-Amz-Expires; without X-Amz-Expires it is held to the
// same skew window as a signed header, as AWS's non-S3 services do.
func (v *Verifier) parseQuery(p *pending) (alg, cred string, err *Error) {
	q := p.query
	alg = first(q, "X-Amz-Algorithm")
	cred = first(q, "X-Amz-Credential")
	p.signature = first(q, "X-Amz-Signature")
	p.signedHeaders = first(q, "X-Amz-SignedHeaders")
	date := first(q, "X-Amz-Date")
	var missing []string
	for _, kv := range [...]struct{ k, v string }{
		{"X-Amz-Algorithm", alg}, {"X-Amz-Credential", cred}, {"X-Amz-Signature", p.signature},
		{"X-Amz-SignedHeaders", p.signedHeaders}, {"X-Amz-Date", date},
	} {
		if kv.v == "" {
			missing = append(missing, kv.k)
		}
	}
	if len(missing) > 0 {
		return "", "", missingQueryParams(missing)
	}
	t, ok := parseAmzDate(date)
	if !ok {
		return "", "", errBadDate(date)
	}
	p.amzDate = date
	if _, has := q["X-Amz-Expires"]; !has {
		if err := v.checkSkew(t, p.now); err != nil {
			return "", "", err
		}
		return alg, cred, nil
	}
	raw := first(q, "X-Amz-Expires")
	secs, perr := strconv.ParseInt(raw, 10, 64)
	switch {
	case perr != nil:
		return "", "", errExpires("X-Amz-Expires should be a number")
	case secs < 0:
		return "", "", errExpires("X-Amz-Expires must be non-negative")
	case secs > int64(MaxPresignExpires/time.Second):
		return "", "", errExpires(fmt.Sprintf("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than %d seconds", int64(MaxPresignExpires/time.Second)))
	}
	if t.After(p.now.Add(v.skew)) {
		return "", "", errNotYetCurrent(t, p.now, v.skew)
	}
	if p.now.After(t.Add(time.Duration(secs) * time.Second)) {
		return "", "", errPresignExpired()
	}
	return alg, cred, nil
}

func first(q url.Values, k string) string {
	if vs := q[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (v *Verifier) checkSkew(t, now time.Time) *Error {
	now = now.UTC().Truncate(time.Second)
	if t.Before(now.Add(-v.skew)) {
		return errExpired(t, now, v.skew)
	}
	if t.After(now.Add(v.skew)) {
		return errNotYetCurrent(t, now, v.skew)
	}
	return nil
}

// signsHost reports whether host is among the signed headers: without it a signature could be
// replayed against another endpoint.
func signsHost(signed string) bool {
	for signed != "" {
		var h string
		h, signed, _ = strings.Cut(signed, ";")
		if strings.EqualFold(h, "host") {
			return true
		}
	}
	return false
}

// splitCredential splits keyid/date/region/service/terminator. Trailing slashes are ignored,
// as AWS ignores them.
func splitCredential(cred string) (parts [5]string, ok bool) {
	rest := strings.TrimRight(cred, "/")
	for i := range parts {
		var found bool
		parts[i], rest, found = strings.Cut(rest, "/")
		if found != (i < len(parts)-1) {
			return parts, false
		}
	}
	return parts, true
}

// scopeErrors checks the credential scope (key/date/region/service/terminator) and returns
// AWS's message naming every element that is wrong, or "".
func (v *Verifier) scopeErrors(r *http.Request, parts [5]string, amzDate string) string {
	var want string
	if v.service != nil {
		want = v.service(r)
	}
	badRegion := v.region != "" && parts[2] != v.region
	badService := want != "" && parts[3] != want
	badTerm := parts[4] != terminator
	badDate := parts[1] != amzDate[:8]
	if !badRegion && !badService && !badTerm && !badDate {
		return ""
	}
	var b strings.Builder
	if badRegion {
		fmt.Fprintf(&b, "Credential should be scoped to a valid region, not '%s'. ", parts[2])
	}
	if badService {
		fmt.Fprintf(&b, "Credential should be scoped to correct service: '%s'. ", want)
	}
	if badTerm {
		fmt.Fprintf(&b, "Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", parts[4])
	}
	if badDate {
		fmt.Fprintf(&b, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'. ", parts[1], amzDate[:8], amzDate)
	}
	return b.String()
}

// emptySHA256 is the SHA-256 of an empty payload.
var emptySHA256 = sha256.Sum256(nil)

// declaredPayload returns the payload hash r's signature can be checked against before its
// body is read: that of an empty body when r has none, else the hash the client declares in
// X-Amz-Content-Sha256. A declared hash is only a claim until the body is read and found to
// have it; a value that is no hash (UNSIGNED-PAYLOAD, STREAMING-…) declares nothing, and the
// body must be read and hashed first.
func declaredPayload(r *http.Request) ([sha256.Size]byte, bool) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return emptySHA256, true
	}
	return decodeSignature(r.Header.Get("X-Amz-Content-Sha256"))
}

// finish checks the signature over the canonical request whose payload hash is payload.
func (v *Verifier) finish(p *pending, payload [sha256.Size]byte) (Identity, *Error) {
	if err := v.check(p, payload); err != nil {
		return Identity{}, v.failed(p, err)
	}
	return Identity{AccessKeyID: p.accessKeyID, Region: p.region, Service: p.service}, nil
}

// check computes the signature and compares it with the one sent. The payload line of the
// canonical request is always the SHA-256 of the body: every API Flint serves is one whose
// payload AWS signs (S3 is the service that accepts UNSIGNED-PAYLOAD; Lambda, Scheduler,
// Secrets Manager, CloudWatch Logs, SQS, SNS and Kinesis do not, and botocore signs their
// presigned URLs over the body's hash too), so a client that signed "UNSIGNED-PAYLOAD" gets the mismatch AWS gives it,
// and a signed body cannot be swapped.
func (v *Verifier) check(p *pending, payload [sha256.Size]byte) *Error {
	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			bufPool.Put(bp)
		}
	}()
	req := p.r
	b := (*bp)[:0]
	b = append(b, req.Method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, requestPath(req))
	b = append(b, '\n')
	b = appendCanonicalQuery(b, p.query, p.presigned)
	b = append(b, '\n')
	for names := p.signedHeaders; names != ""; {
		var name string
		name, names, _ = strings.Cut(names, ";")
		b = appendCanonicalHeader(b, req, name)
	}
	b = append(b, '\n')
	b = append(b, p.signedHeaders...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, payload[:])
	*bp = b
	creqHash := sha256.Sum256(b)

	var stsBuf [256]byte
	sts := append(stsBuf[:0], algorithm+"\n"...)
	sts = append(sts, p.amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, p.date...)
	sts = append(sts, '/')
	sts = append(sts, p.region...)
	sts = append(sts, '/')
	sts = append(sts, p.service...)
	sts = append(sts, "/"+terminator+"\n"...)
	sts = hex.AppendEncode(sts, creqHash[:])

	ck := cacheKey{secret: p.secret, date: p.date, region: p.region, service: p.service}
	key := v.cache.get(ck)
	cached := key != nil
	if !cached {
		key = deriveSigningKey(p.secret, p.date, p.region, p.service)
	}
	want := key.sign(sts)
	got, ok := decodeSignature(p.signature)
	if !ok || !hmac.Equal(got[:], want[:]) {
		e := errSignatureMismatch()
		e.Detail = "canonical request:\n" + string(b) + "\n\nstring to sign:\n" + string(sts)
		return e
	}
	if !cached {
		v.cache.put(ck, key)
	}
	if p.token {
		// Flint's keys are long-term keys; it issues no session tokens, so any token is one it
		// did not issue. Checked after the signature, as AWS does.
		return errUnrecognizedClient()
	}
	return nil
}

// clientAddr is the address the failure limit is kept for: the peer's IP, or its /64 for IPv6,
// since one host commonly holds a whole /64. Unparseable addresses share the zero Addr.
func clientAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remote); err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.Is6() {
		if pfx, err := a.Prefix(64); err == nil {
			return pfx.Addr()
		}
	}
	return a.WithZone("")
}
