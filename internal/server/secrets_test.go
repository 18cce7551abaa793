package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// secretReader is written as AWS's documentation shows for the Parameters and Secrets Lambda
// Extension: localhost, the extension's port, the session token header.
const secretReader = `import json, os, urllib.parse, urllib.request
def handler(event, context):
    port = os.environ.get('PARAMETERS_SECRETS_EXTENSION_HTTP_PORT', '2773')
    url = 'http://localhost:' + port + '/secretsmanager/get?secretId=' + urllib.parse.quote(event['secret'])
    req = urllib.request.Request(url, headers={'X-Aws-Parameters-Secrets-Token': os.environ['AWS_SESSION_TOKEN']})
    try:
        body = json.loads(urllib.request.urlopen(req, timeout=5).read())
        return {'port': port, 'value': body['SecretString'], 'name': body['Name']}
    except urllib.error.HTTPError as e:
        return {'port': port, 'status': e.code}
`

// TestSecretsExtension creates a secret with the real Secrets Manager client and reads it from a
// Python function through localhost:2773, in each sandbox (the linux one at the fixed port
// inside the environment's own network namespace).
func TestSecretsExtension(t *testing.T) {
	for _, backend := range benchBackends() {
		t.Run(backend, func(t *testing.T) {
			s := startServer(t, t.TempDir(), withSandbox(backend))
			ctx := context.Background()
			sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db"), SecretString: aws.String("hunter2")}); err != nil {
				t.Fatal(err)
			}
			c := newClient(s.URL())
			createFunction(t, c, "reader", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: secretReader}}))
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("reader"), Payload: []byte(`{"secret":"prod/db"}`)})
			if err != nil || out.FunctionError != nil {
				t.Fatalf("invoke: %v %s", err, out.Payload)
			}
			want := `{"port": "2773", "value": "hunter2", "name": "prod/db"}`
			if backend != "linux" { // environments share the host's network: a free port each
				want = `"value": "hunter2", "name": "prod/db"}`
			}
			if got := string(out.Payload); backend == "linux" && got != want || backend != "linux" && !strings.Contains(got, want) {
				t.Errorf("function read %s, want %s", got, want)
			}
			// A new value is seen at once; a missing secret is the service's error.
			if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db"), SecretString: aws.String("hunter3")}); err != nil {
				t.Fatal(err)
			}
			out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("reader"), Payload: []byte(`{"secret":"prod/db"}`)})
			if err != nil || !strings.Contains(string(out.Payload), `"value": "hunter3"`) {
				t.Errorf("after PutSecretValue: %v %s", err, out.Payload)
			}
			out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("reader"), Payload: []byte(`{"secret":"missing"}`)})
			if err != nil || !strings.Contains(string(out.Payload), `"status": 400`) {
				t.Errorf("missing secret: %v %s", err, out.Payload)
			}
		})
	}
}
