package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

const (
	// maxFunctionTimeout is Lambda's longest function timeout: a synchronous invoke's response
	// may take this long to start.
	maxFunctionTimeout = 900 * time.Second
	// apiTimeout bounds one API call end to end: the longest invoke plus room for a cold start
	// and a large upload.
	apiTimeout = maxFunctionTimeout + 2*time.Minute
	// dialTimeout bounds connecting to Flint.
	dialTimeout = 10 * time.Second
	// defaultRegion is used when AWS_REGION is not set.
	defaultRegion = "us-east-1"
)

// lambdaClient returns an AWS Lambda client for a.endpoint. Region comes from AWS_REGION (else
// us-east-1); credentials from the usual AWS sources when there are any, else static
// "flint"/"flint" (Flint accepts any signature). Client errors (4xx) are not retried.
func (a *app) lambdaClient(ctx context.Context) (*lambda.Client, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	endpoint := a.endpoint
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}), nil
}

// awsConfig is the AWS configuration the CLI's clients use.
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = defaultRegion
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithHTTPClient(apiHTTPClient(0)),
		config.WithRetryer(newRetryer),
		// No instance metadata: a CLI pointed at Flint must not stall probing for EC2.
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if !haveCredentials(ctx, cfg.Credentials) {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("flint", "flint", "")
	}
	return cfg, nil
}

// apiHTTPClient is the AWS clients' HTTP client, with Flint's timeouts. conns > 0 keeps that many
// idle connections to Flint (the SDK's default keeps a few) for a client used concurrently.
func apiHTTPClient(conns int) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(apiTimeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = dialTimeout
			t.ResponseHeaderTimeout = apiTimeout
			if conns > 0 {
				t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
			}
		})
}

// haveCredentials reports whether the environment configures usable AWS credentials.
func haveCredentials(ctx context.Context, p aws.CredentialsProvider) bool {
	if p == nil {
		return false
	}
	_, err := p.Retrieve(ctx)
	return err == nil
}

// newRetryer is the SDK's standard retryer, except that no 4xx response is retried: against
// Flint a client error (throttles included) is an answer to report, not a fault to wait out.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(no4xx)}, o.Retryables...)
	})
}

// no4xx says "do not retry" for a 4xx response and leaves every other error to the defaults.
func no4xx(err error) aws.Ternary {
	if code := httpStatus(err); code >= 400 && code < 500 {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// httpStatus is the HTTP status of the response behind an SDK error, or 0 if there was none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ResponseError == nil || re.Response == nil || re.Response.Response == nil {
		return 0
	}
	return re.Response.StatusCode
}

// flintHTTPClient is a client for Flint's own (non-AWS) endpoints, signing each request with
// SigV4 as the AWS clients do (a server with access keys refuses unsigned requests). timeout 0
// means no overall limit, for streams that last as long as the user wants; connecting and the
// wait for response headers are always bounded.
func (a *app) flintHTTPClient(ctx context.Context, timeout time.Duration) (*http.Client, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	c := plainHTTPClient(timeout)
	c.Transport = &signingTransport{base: c.Transport, creds: cfg.Credentials, region: cfg.Region, signer: v4.NewSigner()}
	return c, nil
}

// signingTransport signs bodiless requests (GETs) with SigV4 for the "lambda" service.
type signingTransport struct {
	base   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		return nil, errors.New("signingTransport signs requests without a body only")
	}
	creds, err := t.creds.Retrieve(req.Context())
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	req = req.Clone(req.Context())
	if err := t.signer.SignHTTP(req.Context(), creds, req, emptySHA256, "lambda", t.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return t.base.RoundTrip(req)
}

// plainHTTPClient is an unsigned client with Flint's timeouts (see flintHTTPClient).
func plainHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = dialTimeout
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t, Timeout: timeout}
}
