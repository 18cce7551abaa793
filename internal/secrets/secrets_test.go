package secrets_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/secrets"
	"github.com/flint-run/flint/internal/store"
)

const (
	region  = "us-east-1"
	account = "123456789012"
)

// clock is the service's injected clock, so recovery windows pass without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// env is a real embedded store, the service on an httptest server, and the AWS SDK's
// Secrets Manager client pointed at it.
type env struct {
	dir        string // the store's data directory
	st         *store.Store
	closeStore func()
	keys       *crypt.Keyring
	clock      *clock
	svc        *secrets.Service
	url        string
	sm         *secretsmanager.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	e := &env{dir: t.TempDir(), clock: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	// The master key lives apart from the data directory, as it should in production.
	var err error
	if e.keys, err = crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), ""); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: e.dir, Log: log, SyncAlways: true, Keyring: e.keys})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.closeStore = sync.OnceFunc(st.Close)
	t.Cleanup(e.closeStore)
	e.svc = secrets.New(secrets.Config{
		Store: st.Secrets(), Crypt: e.keys, Region: region, AccountID: account, Log: log, Now: e.clock.Now,
	})
	srv := httptest.NewServer(e.svc)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	hc := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(hc.CloseIdleConnections)
	e.sm = secretsmanager.New(secretsmanager.Options{
		Region:           region,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secretkey", ""),
		HTTPClient:       hc,
		RetryMaxAttempts: 1,
	})
	return e
}

// wantAPIError checks err is the AWS error code (and message, if given) as the SDK parsed it.
func wantAPIError(t *testing.T, err error, code, message string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Errorf("error code = %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if message != "" && ae.ErrorMessage() != message {
		t.Errorf("error message = %q, want %q", ae.ErrorMessage(), message)
	}
}

func (e *env) create(t *testing.T, name, value string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return out
}

func (e *env) value(t *testing.T, id string) string {
	t.Helper()
	out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetSecretValue %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

const (
	markedForDeletion = "You can't perform this operation on the secret because it was marked for deletion."
	cantFind          = "Secrets Manager can't find the specified secret."
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	created, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("prod/db/password"),
		Description:  aws.String("the database"),
		KmsKeyId:     aws.String("alias/flint"),
		SecretString: aws.String("first"),
		Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String("core")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arnPrefix := "arn:aws:secretsmanager:" + region + ":" + account + ":secret:prod/db/password-"
	if arn := aws.ToString(created.ARN); !strings.HasPrefix(arn, arnPrefix) || len(arn) != len(arnPrefix)+6 {
		t.Errorf("ARN = %s, want %sXXXXXX", arn, arnPrefix)
	}
	if aws.ToString(created.Name) != "prod/db/password" || aws.ToString(created.VersionId) == "" {
		t.Errorf("CreateSecret = %+v", created)
	}
	firstVersion := aws.ToString(created.VersionId)

	got, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db/password")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.SecretString) != "first" || aws.ToString(got.VersionId) != firstVersion ||
		!cmp.Equal(got.VersionStages, []string{"AWSCURRENT"}) || aws.ToString(got.ARN) != aws.ToString(created.ARN) ||
		!aws.ToTime(got.CreatedDate).Equal(e.clock.Now()) || got.SecretBinary != nil {
		t.Errorf("GetSecretValue = %+v", got)
	}

	e.clock.Advance(time.Minute)
	put, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: created.ARN, SecretString: aws.String("second"),
	})
	if err != nil {
		t.Fatal(err)
	}
	secondVersion := aws.ToString(put.VersionId)
	if secondVersion == firstVersion || !cmp.Equal(put.VersionStages, []string{"AWSCURRENT"}) {
		t.Errorf("PutSecretValue = %+v", put)
	}
	for _, tc := range []struct {
		name                string
		versionID, stage    string
		wantValue, wantVers string
		wantStages          []string
	}{
		{"current by default", "", "", "second", secondVersion, []string{"AWSCURRENT"}},
		{"AWSCURRENT", "", "AWSCURRENT", "second", secondVersion, []string{"AWSCURRENT"}},
		{"AWSPREVIOUS", "", "AWSPREVIOUS", "first", firstVersion, []string{"AWSPREVIOUS"}},
		{"by version id", firstVersion, "", "first", firstVersion, []string{"AWSPREVIOUS"}},
		{"version id and its stage", secondVersion, "AWSCURRENT", "second", secondVersion, []string{"AWSCURRENT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db/password")}
			if tc.versionID != "" {
				in.VersionId = aws.String(tc.versionID)
			}
			if tc.stage != "" {
				in.VersionStage = aws.String(tc.stage)
			}
			got, err := e.sm.GetSecretValue(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(got.SecretString) != tc.wantValue || aws.ToString(got.VersionId) != tc.wantVers || !cmp.Equal(got.VersionStages, tc.wantStages) {
				t.Errorf("GetSecretValue = %q %s %v, want %q %s %v", aws.ToString(got.SecretString),
					aws.ToString(got.VersionId), got.VersionStages, tc.wantValue, tc.wantVers, tc.wantStages)
			}
		})
	}
	for _, tc := range []struct {
		name             string
		versionID, stage string
		code, message    string
	}{
		{"unknown stage", "", "AWSPENDING", "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPENDING"},
		{"unknown version", "00000000-0000-0000-0000-000000000000", "", "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: 00000000-0000-0000-0000-000000000000"},
		{"version and another stage", firstVersion, "AWSCURRENT", "InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db/password")}
			if tc.versionID != "" {
				in.VersionId = aws.String(tc.versionID)
			}
			if tc.stage != "" {
				in.VersionStage = aws.String(tc.stage)
			}
			_, err := e.sm.GetSecretValue(ctx, in)
			wantAPIError(t, err, tc.code, tc.message)
		})
	}

	desc, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db/password")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(desc.Description) != "the database" || aws.ToString(desc.KmsKeyId) != "alias/flint" ||
		desc.DeletedDate != nil || !aws.ToTime(desc.LastChangedDate).Equal(e.clock.Now()) {
		t.Errorf("DescribeSecret = %+v", desc)
	}
	if diff := cmp.Diff(map[string][]string{firstVersion: {"AWSPREVIOUS"}, secondVersion: {"AWSCURRENT"}}, desc.VersionIdsToStages); diff != "" {
		t.Errorf("VersionIdsToStages (-want +got):\n%s", diff)
	}
	if len(desc.Tags) != 1 || aws.ToString(desc.Tags[0].Key) != "team" || aws.ToString(desc.Tags[0].Value) != "core" {
		t.Errorf("Tags = %+v", desc.Tags)
	}

	list, err := e.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.SecretList) != 1 || aws.ToString(list.SecretList[0].Name) != "prod/db/password" ||
		len(list.SecretList[0].SecretVersionsToStages) != 2 {
		t.Errorf("ListSecrets = %+v", list.SecretList)
	}

	// Scheduled deletion: the value is out of reach, the metadata is not.
	e.clock.Advance(time.Minute)
	deleted, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("prod/db/password"), RecoveryWindowInDays: aws.Int64(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(7 * 24 * time.Hour); !aws.ToTime(deleted.DeletionDate).Equal(want) {
		t.Errorf("DeletionDate = %v, want %v", aws.ToTime(deleted.DeletionDate), want)
	}
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db/password")})
	wantAPIError(t, err, "InvalidRequestException", markedForDeletion)
	var ire *types.InvalidRequestException
	if !errors.As(err, &ire) {
		t.Errorf("error %T is not the SDK's *types.InvalidRequestException", err)
	}
	_, err = e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/db/password"), SecretString: aws.String("x")})
	wantAPIError(t, err, "InvalidRequestException", markedForDeletion)
	desc, err = e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db/password")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToTime(desc.DeletedDate).Equal(e.clock.Now()) {
		t.Errorf("DeletedDate = %v, want the time of deletion %v", desc.DeletedDate, e.clock.Now())
	}
	if list, err := e.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{}); err != nil || len(list.SecretList) != 0 {
		t.Errorf("ListSecrets after delete = %+v, %v; want none", list, err)
	}
	if list, err := e.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)}); err != nil ||
		len(list.SecretList) != 1 || list.SecretList[0].DeletedDate == nil {
		t.Errorf("ListSecrets with planned deletions = %+v, %v; want the deleted secret", list, err)
	}
	_, err = e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("prod/db/password")})
	wantAPIError(t, err, "InvalidRequestException", markedForDeletion)
	_, err = e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/db/password"), SecretString: aws.String("x")})
	wantAPIError(t, err, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")

	if _, err := e.sm.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String("prod/db/password")}); err != nil {
		t.Fatal(err)
	}
	if got := e.value(t, "prod/db/password"); got != "second" {
		t.Errorf("value after restore = %q, want second", got)
	}

	// Forced deletion: gone at once, and the name is free again.
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("prod/db/password"), ForceDeleteWithoutRecovery: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db/password")})
	wantAPIError(t, err, "ResourceNotFoundException", cantFind)
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("error %T is not the SDK's *types.ResourceNotFoundException", err)
	}
	again := e.create(t, "prod/db/password", "third")
	if aws.ToString(again.ARN) == aws.ToString(created.ARN) {
		t.Error("a secret created again under a name has the old ARN")
	}
}

func TestDeletionWindowEnds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.create(t, "app", "v")
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(30*24*time.Hour - time.Second)
	_, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app")})
	wantAPIError(t, err, "InvalidRequestException", markedForDeletion)

	e.clock.Advance(time.Second) // the 30-day default window is over
	_, err = e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: old.ARN})
	wantAPIError(t, err, "ResourceNotFoundException", cantFind)
	if keys, err := e.st.Secrets().Keys(ctx, ">"); err != nil || len(keys) != 0 {
		t.Errorf("store keys after the window = %v, %v; want the secret removed", keys, err)
	}
	if got := e.create(t, "app", "w"); aws.ToString(got.ARN) == aws.ToString(old.ARN) {
		t.Error("recreated secret kept the old ARN")
	}

	// ListSecrets purges too.
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7 * 24 * time.Hour)
	list, err := e.sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)})
	if err != nil || len(list.SecretList) != 0 {
		t.Errorf("ListSecrets after the window = %+v, %v; want none", list, err)
	}
	if keys, err := e.st.Secrets().Keys(ctx, ">"); err != nil || len(keys) != 0 {
		t.Errorf("store keys after listing = %v, %v; want the secret removed", keys, err)
	}
}

func TestDeleteSecretValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "s", "v")
	for _, tc := range []struct {
		name          string
		in            *secretsmanager.DeleteSecretInput
		code, message string
	}{
		{"window too short", &secretsmanager.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: aws.Int64(6)},
			"InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."},
		{"window too long", &secretsmanager.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: aws.Int64(31)},
			"InvalidParameterException", "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."},
		{"force and window", &secretsmanager.DeleteSecretInput{SecretId: aws.String("s"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)},
			"InvalidParameterException", "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."},
		{"missing", &secretsmanager.DeleteSecretInput{SecretId: aws.String("nope")}, "ResourceNotFoundException", cantFind},
		{"missing, forced", &secretsmanager.DeleteSecretInput{SecretId: aws.String("nope"), ForceDeleteWithoutRecovery: aws.Bool(true)}, "ResourceNotFoundException", cantFind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.DeleteSecret(ctx, tc.in)
			wantAPIError(t, err, tc.code, tc.message)
		})
	}
	if got := e.value(t, "s"); got != "v" {
		t.Errorf("value after refused deletions = %q", got)
	}
	// A scheduled secret can still be forced out, to free its name at once.
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("s"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("force delete of a scheduled secret: %v", err)
	}
	e.create(t, "s", "again")
}

func TestBinarySecret(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bin := []byte{0, 1, 2, 0xfe, 0xff}
	if _, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("cert"), SecretBinary: bin}); err != nil {
		t.Fatal(err)
	}
	got, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("cert")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.SecretBinary, bin) || got.SecretString != nil {
		t.Errorf("GetSecretValue = %v / %v, want binary %v", got.SecretBinary, got.SecretString, bin)
	}
	_, err = e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretBinary: bin, SecretString: aws.String("s")})
	wantAPIError(t, err, "InvalidParameterException", "You can't specify both a binary secret value and a string secret value in the same secret.")
}

func TestSecretWithoutValue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("empty")})
	if err != nil {
		t.Fatal(err)
	}
	if out.VersionId != nil {
		t.Errorf("CreateSecret without a value made version %s", aws.ToString(out.VersionId))
	}
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"), SecretString: aws.String("now")}); err != nil {
		t.Fatal(err)
	}
	if got := e.value(t, "empty"); got != "now" {
		t.Errorf("value = %q, want now", got)
	}
	_, err = e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty")})
	wantAPIError(t, err, "InvalidRequestException", "You must provide either SecretString or SecretBinary.")
}

func TestClientRequestTokenIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const token1 = "11111111-1111-1111-1111-111111111111"
	const token2 = "22222222-2222-2222-2222-222222222222"
	create := func(value string) (*secretsmanager.CreateSecretOutput, error) {
		return e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String("idem"), SecretString: aws.String(value), ClientRequestToken: aws.String(token1),
		})
	}
	first, err := create("v1")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.VersionId) != token1 {
		t.Errorf("VersionId = %s, want the token %s", aws.ToString(first.VersionId), token1)
	}
	retry, err := create("v1")
	if err != nil {
		t.Fatalf("CreateSecret retried with the same token and value: %v", err)
	}
	if aws.ToString(retry.ARN) != aws.ToString(first.ARN) || aws.ToString(retry.VersionId) != token1 {
		t.Errorf("retried CreateSecret = %+v, want %+v", retry, first)
	}
	_, err = create("other")
	wantAPIError(t, err, "ResourceExistsException", "The operation failed because the secret idem already exists.")

	put := func(value string) (*secretsmanager.PutSecretValueOutput, error) {
		return e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("idem"), SecretString: aws.String(value), ClientRequestToken: aws.String(token2),
		})
	}
	for range 2 {
		out, err := put("v2")
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.VersionId) != token2 || !cmp.Equal(out.VersionStages, []string{"AWSCURRENT"}) {
			t.Errorf("PutSecretValue = %+v", out)
		}
	}
	_, err = put("v3")
	wantAPIError(t, err, "ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
	// The first version's token on PutSecretValue with its own value is a retry too.
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("idem"), SecretString: aws.String("v1"), ClientRequestToken: aws.String(token1),
	}); err != nil {
		t.Fatal(err)
	}

	versions, err := e.sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("idem")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range versions.Versions {
		got = append(got, aws.ToString(v.VersionId)+"="+strings.Join(v.VersionStages, ","))
	}
	if diff := cmp.Diff([]string{token2 + "=AWSCURRENT", token1 + "=AWSPREVIOUS"}, got); diff != "" {
		t.Errorf("versions after retries (-want +got):\n%s", diff)
	}
	if got := e.value(t, "idem"); got != "v2" {
		t.Errorf("value = %q, want v2", got)
	}

	_, err = e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("idem"), SecretString: aws.String("x"), ClientRequestToken: aws.String("short"),
	})
	wantAPIError(t, err, "ValidationException", "")
}

func TestCreateDuplicate(t *testing.T) {
	e := newEnv(t)
	e.create(t, "dup", "a")
	_, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("dup"), SecretString: aws.String("b")})
	wantAPIError(t, err, "ResourceExistsException", "The operation failed because the secret dup already exists.")
	var ree *types.ResourceExistsException
	if !errors.As(err, &ree) {
		t.Errorf("error %T is not the SDK's *types.ResourceExistsException", err)
	}
	if got := e.value(t, "dup"); got != "a" {
		t.Errorf("value = %q, want a", got)
	}
}

func TestNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const invalid = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	for _, tc := range []struct {
		name    string
		message string // "" when valid
	}{
		{"every/allowed_char+=.@-0aZ", ""},
		{".leading.dot..double", ""},
		{strings.Repeat("n", 512), ""},
		{"with space", invalid},
		{"hash#", invalid},
		{"colon:", invalid},
		{"ünïcode", invalid},
		{strings.Repeat("n", 513), "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 512"},
	} {
		t.Run(tc.name[:min(len(tc.name), 20)], func(t *testing.T) {
			_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(tc.name), SecretString: aws.String("v-" + tc.name)})
			if tc.message != "" {
				wantAPIError(t, err, "ValidationException", tc.message)
				_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.name)})
				if tc.message == invalid {
					wantAPIError(t, err, "ValidationException", invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.value(t, tc.name); got != "v-"+tc.name {
				t.Errorf("value = %q", got)
			}
		})
	}
}

func TestSecretIDs(t *testing.T) {
	e := newEnv(t)
	// A name that itself ends like an ARN suffix, to check full and partial ARNs both resolve.
	created := e.create(t, "db-abcdef", "v")
	arn := aws.ToString(created.ARN)
	for _, tc := range []struct {
		name, id string
		found    bool
	}{
		{"name", "db-abcdef", true},
		{"full ARN", arn, true},
		{"partial ARN", "arn:aws:secretsmanager:" + region + ":" + account + ":secret:db-abcdef", true},
		{"wrong suffix", "arn:aws:secretsmanager:" + region + ":" + account + ":secret:db-abcdef-ZZZZZZ", false},
		{"other region", strings.Replace(arn, region, "eu-west-1", 1), false},
		{"other account", strings.Replace(arn, account, "999999999999", 1), false},
		{"other name", "db", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.id)})
			if !tc.found {
				wantAPIError(t, err, "ResourceNotFoundException", cantFind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.ARN) != arn || aws.ToString(out.SecretString) != "v" {
				t.Errorf("GetSecretValue = %+v", out)
			}
		})
	}
}

func TestListSecrets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"app/a", "app/b", "app/c", "db/x", "db/y"} {
		_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(n), SecretString: aws.String("v"), Description: aws.String("The " + n),
			Tags: []types.Tag{{Key: aws.String("tier"), Value: aws.String(strings.Split(n, "/")[0])}},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	names := func(in *secretsmanager.ListSecretsInput) []string {
		t.Helper()
		var out []string
		p := secretsmanager.NewListSecretsPaginator(e.sm, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if in.MaxResults != nil && len(page.SecretList) > int(*in.MaxResults) {
				t.Errorf("page of %d, MaxResults %d", len(page.SecretList), *in.MaxResults)
			}
			for _, s := range page.SecretList {
				out = append(out, aws.ToString(s.Name))
			}
		}
		return out
	}
	filter := func(key types.FilterNameStringType, values ...string) []types.Filter {
		return []types.Filter{{Key: key, Values: values}}
	}
	for _, tc := range []struct {
		name string
		in   *secretsmanager.ListSecretsInput
		want []string
	}{
		{"newest first", &secretsmanager.ListSecretsInput{}, []string{"db/y", "db/x", "app/c", "app/b", "app/a"}},
		{"pages of 2", &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(2)}, []string{"db/y", "db/x", "app/c", "app/b", "app/a"}},
		{"oldest first", &secretsmanager.ListSecretsInput{SortOrder: types.SortOrderTypeAsc}, []string{"app/a", "app/b", "app/c", "db/x", "db/y"}},
		{"by name", &secretsmanager.ListSecretsInput{SortBy: types.SortByTypeName, SortOrder: types.SortOrderTypeAsc}, []string{"app/a", "app/b", "app/c", "db/x", "db/y"}},
		{"name prefix", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeName, "db/"), SortOrder: types.SortOrderTypeAsc}, []string{"db/x", "db/y"}},
		{"name prefix negated", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeName, "!db/"), SortOrder: types.SortOrderTypeAsc}, []string{"app/a", "app/b", "app/c"}},
		{"any of two values", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeName, "app/a", "db/y"), SortOrder: types.SortOrderTypeAsc}, []string{"app/a", "db/y"}},
		{"description, any case", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeDescription, "the DB"), SortOrder: types.SortOrderTypeAsc}, []string{"db/x", "db/y"}},
		{"tag value", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeTagValue, "app"), SortOrder: types.SortOrderTypeAsc}, []string{"app/a", "app/b", "app/c"}},
		{"tag key", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeTagKey, "nope")}, nil},
		{"two filters", &secretsmanager.ListSecretsInput{Filters: append(filter(types.FilterNameStringTypeTagValue, "app"), filter(types.FilterNameStringTypeName, "app/b")...)}, []string{"app/b"}},
		{"all", &secretsmanager.ListSecretsInput{Filters: filter(types.FilterNameStringTypeAll, "APP/C")}, []string{"app/c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, names(tc.in)); diff != "" {
				t.Errorf("ListSecrets (-want +got):\n%s", diff)
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   *secretsmanager.ListSecretsInput
		code string
	}{
		{"MaxResults 0", &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(0)}, "ValidationException"},
		{"MaxResults 101", &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(101)}, "ValidationException"},
		{"bad token", &secretsmanager.ListSecretsInput{NextToken: aws.String("%%%")}, "InvalidNextTokenException"},
		{"bad sort", &secretsmanager.ListSecretsInput{SortBy: "size"}, "ValidationException"},
		{"bad filter", &secretsmanager.ListSecretsInput{Filters: filter("colour", "red")}, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.ListSecrets(ctx, tc.in)
			wantAPIError(t, err, tc.code, "")
		})
	}
}

func TestUpdateAndTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.create(t, "u", "one")
	up, err := e.sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{
		SecretId: aws.String("u"), Description: aws.String("new description"), SecretString: aws.String("two"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.VersionId == nil || aws.ToString(up.VersionId) == aws.ToString(first.VersionId) {
		t.Errorf("UpdateSecret with a value = %+v, want a new version", up)
	}
	if got := e.value(t, "u"); got != "two" {
		t.Errorf("value = %q, want two", got)
	}
	if up, err := e.sm.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("u"), KmsKeyId: aws.String("alias/other")}); err != nil || up.VersionId != nil {
		t.Errorf("UpdateSecret without a value = %+v, %v; want no version", up, err)
	}
	if _, err := e.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("u"), Tags: []types.Tag{
		{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("u"), Tags: []types.Tag{
		{Key: aws.String("a"), Value: aws.String("one")},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String("u"), TagKeys: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	desc, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, tg := range desc.Tags {
		tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	if diff := cmp.Diff([]string{"a=one"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if aws.ToString(desc.Description) != "new description" || aws.ToString(desc.KmsKeyId) != "alias/other" {
		t.Errorf("DescribeSecret = %+v", desc)
	}
}

// post sends a raw JSON 1.1 call, as a client without an SDK would.
func post(t *testing.T, url, target, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("response %s is not JSON: %v", b, err)
	}
	return resp, doc
}

func TestWireErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, target, body string
		code               string
	}{
		{"unknown operation", "secretsmanager.RotateSecret", `{}`, "UnknownOperationException"},
		{"no target", "", `{}`, "UnknownOperationException"},
		{"another service", "AWSLambda.Invoke", `{}`, "UnknownOperationException"},
		{"malformed JSON", "secretsmanager.GetSecretValue", `{"SecretId":`, "SerializationException"},
		{"wrong type", "secretsmanager.GetSecretValue", `{"SecretId":5}`, "SerializationException"},
		{"missing secret", "secretsmanager.GetSecretValue", `{"SecretId":"nope"}`, "ResourceNotFoundException"},
		{"no secret id", "secretsmanager.GetSecretValue", ``, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, doc := post(t, e.url, tc.target, tc.body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q", ct)
			}
			if resp.Header.Get("X-Amzn-Requestid") == "" {
				t.Error("no X-Amzn-RequestId")
			}
			if doc["__type"] != tc.code || doc["Message"] == "" || doc["Message"] != doc["message"] {
				t.Errorf("error body = %v, want __type %s and a Message", doc, tc.code)
			}
		})
	}
	// A raw call without a ClientRequestToken still works: Flint makes one.
	resp, doc := post(t, e.url, "secretsmanager.CreateSecret", `{"Name":"raw","SecretString":"v"}`)
	if resp.StatusCode != http.StatusOK || doc["VersionId"] == "" || doc["ARN"] == "" {
		t.Errorf("raw CreateSecret = %d %v", resp.StatusCode, doc)
	}
	if _, ok := doc["CreatedDate"]; ok {
		t.Errorf("CreateSecret response has fields AWS does not send: %v", doc)
	}
	_, doc = post(t, e.url, "secretsmanager.GetSecretValue", `{"SecretId":"raw"}`)
	if _, ok := doc["CreatedDate"].(float64); !ok {
		t.Errorf("CreatedDate = %#v, want epoch seconds as a JSON number", doc["CreatedDate"])
	}
}

func TestGetSecretValueJSON(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "ext", "for the extension")

	got, err := e.svc.GetSecretValueJSON(ctx, "ext", "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, wire := post(t, e.url, "secretsmanager.GetSecretValue", `{"SecretId":"ext"}`)
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wire, doc); diff != "" {
		t.Errorf("GetSecretValueJSON differs from the API's GetSecretValue (-api +json):\n%s", diff)
	}
	if doc["SecretString"] != "for the extension" {
		t.Errorf("SecretString = %v", doc["SecretString"])
	}

	v, err := e.svc.Value(ctx, "ext", "", "AWSCURRENT")
	if err != nil || v.String == nil || *v.String != "for the extension" || v.Binary != nil || v.VersionID == "" {
		t.Errorf("Value = %+v, %v", v, err)
	}

	for _, tc := range []struct {
		name, id, stage string
		code            string
		status          int
	}{
		{"missing", "nope", "", "ResourceNotFoundException", http.StatusBadRequest},
		{"missing stage", "ext", "AWSPREVIOUS", "ResourceNotFoundException", http.StatusBadRequest},
		{"invalid name", "a b", "", "ValidationException", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.GetSecretValueJSON(ctx, tc.id, "", tc.stage)
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want an *apierr.Error", err)
			}
			if ae.Code != tc.code || ae.Status != tc.status {
				t.Errorf("error = %s %d, want %s %d", ae.Code, ae.Status, tc.code, tc.status)
			}
		})
	}
}

func TestIsSecretsManagerRequest(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"secretsmanager.GetSecretValue", true},
		{"secretsmanager.Anything", true},
		{"AWSEvents.PutEvents", false},
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if tc.target != "" {
			r.Header.Set("X-Amz-Target", tc.target)
		}
		if got := secrets.IsSecretsManagerRequest(r); got != tc.want {
			t.Errorf("IsSecretsManagerRequest(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

// TestEnvelopeBoundToVersion swaps two versions' stored envelopes, as someone with write access
// to the store might: neither opens in the other's place.
func TestEnvelopeBoundToVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "bound", "old value")
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("bound"), SecretString: aws.String("new value")}); err != nil {
		t.Fatal(err)
	}
	keys, err := e.st.Secrets().Keys(ctx, ">")
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	doc, rev, err := e.st.Secrets().Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(doc, &rec); err != nil {
		t.Fatal(err)
	}
	vs := rec["versions"].([]any)
	v0, v1 := vs[0].(map[string]any), vs[1].(map[string]any)
	v0["value"], v1["value"] = v1["value"], v0["value"]
	swapped, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Secrets().Update(ctx, keys[0], swapped, rev); err != nil {
		t.Fatal(err)
	}
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bound")})
	wantAPIError(t, err, "DecryptionFailure", "")
}

func TestRewrapAfterRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "r1", "one")
	e.create(t, "r2", "two")
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("r2"), SecretString: aws.String("two again")}); err != nil {
		t.Fatal(err)
	}
	e.create(t, "gone", "x")
	if _, err := e.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	old := e.keys.ActiveKeyID()
	if _, err := e.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.Rewrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // r1, both versions of r2, and the one scheduled for deletion (it may be restored)
		t.Errorf("Rewrap moved %d versions, want 4", n)
	}
	if n, err := e.svc.Rewrap(ctx); err != nil || n != 0 {
		t.Errorf("second Rewrap = %d, %v; want 0", n, err)
	}
	if err := e.keys.Retire(old); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"r1": "one", "r2": "two again"} {
		if got := e.value(t, id); got != want {
			t.Errorf("%s after rotation = %q, want %q", id, got, want)
		}
	}
	prev, err := e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("r2"), VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != "two" {
		t.Errorf("previous r2 after rotation = %v, %v", prev, err)
	}
}

// TestNoPlaintextAtRest creates secrets and then reads every file JetStream wrote under the data
// directory: the values must not be there, in the clear or as base64.
func TestNoPlaintextAtRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	values := []string{
		"plain-text-secret-value-7f3a9c",
		`{"username":"admin","password":"correct-horse-battery-staple-91b2"}`,
		"second-version-secret-value-c0ffee",
	}
	binary := []byte("binary-secret-value-\x00\x01\x02-d15ea5e")
	e.create(t, "at-rest/one", values[0])
	created := e.create(t, "at-rest/two", values[1])
	if _, err := e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("at-rest/one"), SecretString: aws.String(values[2])}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("at-rest/bin"), SecretBinary: binary}); err != nil {
		t.Fatal(err)
	}
	e.closeStore() // JetStream flushes its files on shutdown

	needles := map[string][]byte{"binary": binary, "binary as base64": []byte(base64.StdEncoding.EncodeToString(binary))}
	for i, v := range values {
		needles["value "+string(rune('0'+i))] = []byte(v)
		needles["value "+string(rune('0'+i))+" as base64"] = []byte(base64.StdEncoding.EncodeToString([]byte(v)))
	}
	needles["a distinctive fragment"] = []byte("correct-horse-battery-staple")
	arn := []byte(aws.ToString(created.ARN))
	sawARN, files := false, 0
	root := filepath.Join(e.dir, "jetstream")
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for what, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds secret %s", path, what)
			}
		}
		sawARN = sawARN || bytes.Contains(b, arn)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The control: the scan did read the stored secrets (their ARNs are not secret).
	if files == 0 || !sawARN {
		t.Fatalf("scanned %d files under %s and never saw a secret's ARN: the scan proves nothing", files, root)
	}
	if slices.ContainsFunc(values, func(v string) bool { return len(v) < 16 }) {
		t.Fatal("needles too short to be distinctive")
	}
}
