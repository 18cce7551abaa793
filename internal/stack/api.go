// The stack's Api and HttpApi events as API Gateway proxy routes on Flint's endpoint, through
// Flint's management API (PUT /flint/v1/apis/{name}; the contract is APIGW_CONTRACT.md of
// issue 17): one API per AWS::Serverless::Api or HttpApi resource and one for each implicit
// API (ServerlessRestApi, ServerlessHttpApi), named <stack>-<logical ID>. An API is read first
// and written whole only when it differs.

package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// API is an API Gateway API: an AWS::Serverless::Api (REST) or HttpApi (HTTP), or an implicit
// one.
type API struct {
	Protocol  string // REST or HTTP
	Stage     string
	Variables map[string]string
	Routes    []Route
}

// Route is one event's route: a method and path that invoke a function.
type Route struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	Function string `json:"function"`
	// Qualifier is the function's alias, when it has one.
	Qualifier string `json:"qualifier,omitempty"`
	// PayloadFormatVersion is an HTTP API's (2.0 or 1.0); "" for REST.
	PayloadFormatVersion string `json:"payloadFormatVersion,omitempty"`
	// TimeoutInMillis is the event's integration timeout (0: API Gateway's longest).
	TimeoutInMillis int32 `json:"timeoutInMillis,omitempty"`
}

// apiDoc is an API as the management API takes and returns it.
type apiDoc struct {
	Name           string            `json:"name,omitempty"`
	APIID          string            `json:"apiId,omitempty"`
	Protocol       string            `json:"protocol"`
	Stage          string            `json:"stage"`
	StageVariables map[string]string `json:"stageVariables,omitempty"`
	Routes         []Route           `json:"routes"`
	Tags           map[string]string `json:"tags,omitempty"`
	Endpoint       string            `json:"endpoint,omitempty"`
}

// apiName is the name of the API of logical ID id.
func apiName(stackName, id string) string { return truncate(stackName+"-"+id, 128) }

// equal reports whether two APIs route and tag alike.
func (a *apiDoc) equal(b *apiDoc) bool {
	norm := func(rs []Route) []Route {
		out := slices.Clone(rs)
		for i := range out {
			if out[i].PayloadFormatVersion == "" && a.Protocol == "HTTP" {
				out[i].PayloadFormatVersion = "2.0"
			}
			if a.Protocol == "REST" {
				out[i].PayloadFormatVersion = ""
			}
		}
		slices.SortFunc(out, func(x, y Route) int {
			return strings.Compare(x.Method+" "+x.Path, y.Method+" "+y.Path)
		})
		return out
	}
	return a.Protocol == b.Protocol && a.Stage == b.Stage && maps.Equal(a.StageVariables, b.StageVariables) &&
		slices.Equal(norm(a.Routes), norm(b.Routes)) && maps.Equal(a.Tags, b.Tags)
}

// apiError is a management API error.
type apiError struct {
	Status  int
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Type, e.Message)
}

// flint calls Flint's management API: method on path (below /flint/v1), body JSON-encoded (nil:
// none), the answer decoded into out. The request is signed with SigV4 for the service
// "lambda" with the Lambda client's credentials and region, its body's SHA-256 covered as a
// server with access keys demands.
func (d *Deployer) flint(ctx context.Context, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(d.Endpoint, "/")+"/flint/v1"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	lo := d.Lambda.Options()
	if lo.Credentials != nil {
		creds, err := lo.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
		sum := sha256.Sum256(b)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", lo.Region, time.Now()); err != nil {
			return fmt.Errorf("sign request: %w", err)
		}
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(rb, e) != nil || e.Message == "" {
			e.Type, e.Message = "", strings.TrimSpace(string(rb))
		}
		return e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(rb, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// apis creates or replaces the stack's APIs.
func (d *Deployer) apis(ctx context.Context, res *Result, st *Stack) error {
	for _, id := range sortedKeys(st.APIs) {
		a := st.APIs[id]
		name := apiName(st.Name, id)
		want := &apiDoc{Protocol: a.Protocol, Stage: a.Stage, StageVariables: a.Variables, Routes: a.Routes,
			Tags: map[string]string{StackTag: st.Name}}
		if want.Routes == nil {
			want.Routes = []Route{}
		}
		var got apiDoc
		err := d.flint(ctx, http.MethodGet, "/apis/"+url.PathEscape(name), nil, &got)
		exists := err == nil
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusNotFound {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("api %s: %w", name, err)
		}
		if exists && want.equal(&got) {
			continue
		}
		var put apiDoc
		if err := d.flint(ctx, http.MethodPut, "/apis/"+url.PathEscape(name), want, &put); err != nil {
			return fmt.Errorf("api %s: %w", name, err)
		}
		action := "created"
		if exists {
			action = "updated"
		}
		d.change(res, Change{Kind: "api", Name: name, Action: action, Detail: put.Endpoint})
	}
	return nil
}

// stackAPIs are the names of the APIs tagged with the stack's name. A Flint without the
// management API (404 on the list) has none.
func (d *Deployer) stackAPIs(ctx context.Context, stackName string) ([]string, error) {
	var list struct {
		APIs []apiDoc `json:"apis"`
	}
	err := d.flint(ctx, http.MethodGet, "/apis", nil, &list)
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list apis: %w", err)
	}
	var out []string
	for _, a := range list.APIs {
		if a.Tags[StackTag] == stackName {
			out = append(out, a.Name)
		}
	}
	return out, nil
}
