package secrets_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flint-run/flint/internal/secrets"
)

func TestExtensionHandler(t *testing.T) {
	e := newEnv(t)
	if _, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("db/password"), SecretString: aws.String("hunter2")}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.svc.ExtensionHandler("env-token"))
	defer srv.Close()
	get := func(path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set(secrets.ExtensionTokenHeader, token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := get("/secretsmanager/get?secretId="+url.QueryEscape("db/password"), "env-token")
	var out struct{ Name, SecretString, VersionId string }
	if err := json.Unmarshal(body, &out); status != 200 || err != nil || out.SecretString != "hunter2" || out.Name != "db/password" || out.VersionId == "" {
		t.Fatalf("GET secret = %d %s", status, body)
	}
	for _, tok := range []string{"", "other-token"} {
		if status, body := get("/secretsmanager/get?secretId=db/password", tok); status != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s", tok, status, body)
		}
	}
	if status, body := get("/secretsmanager/get?secretId=nope", "env-token"); status != 400 || !json.Valid(body) {
		t.Errorf("missing secret: %d %s", status, body)
	} else if var_ := (struct {
		Type string `json:"__type"`
	}{}); json.Unmarshal(body, &var_) != nil || var_.Type != "ResourceNotFoundException" {
		t.Errorf("missing secret: %s", body)
	}
	if status, _ := get("/systemparameterstore/get?name=x", "env-token"); status != 400 {
		t.Errorf("parameter store: %d", status)
	}
}
