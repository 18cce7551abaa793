// Package secrets is a small AWS Secrets Manager: the JSON 1.1 API that the AWS SDKs, the CLI
// and the Parameters and Secrets Lambda Extension speak, over secrets kept in one store bucket.
//
// Secret values are stored only as crypt envelopes, sealed with the secret's ARN and version id
// as additional data, so the store's files, and backups of them, hold no secret in the clear and
// an envelope moved to another secret or version does not open. Names, descriptions and tags
// are not secret (AWS logs them too) and are stored as they are.
//
// The package owns the documents in its bucket and nothing else: it neither routes requests
// (the server asks IsSecretsManagerRequest) nor checks signatures, and it runs no goroutines. A
// secret scheduled for deletion is removed for good by the first request that finds its
// deletion date passed.
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/awsjson"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

const (
	targetPrefix = "secretsmanager."
	// maxBody bounds a request: values are at most 64 KiB (about 88 KiB as base64), so this is
	// generous for any valid request and still stops a client from filling memory.
	maxBody = 1 << 20
)

// Records is where secrets are kept: JSON documents by key, with the store's sentinels
// (store.Store.Secrets satisfies it).
type Records interface {
	Get(ctx context.Context, key string) (json.RawMessage, uint64, error)
	Create(ctx context.Context, key string, doc json.RawMessage) (uint64, error)
	Update(ctx context.Context, key string, doc json.RawMessage, rev uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, filter string) ([]string, error)
}

var _ Records = store.Records{}

// Config configures New. Store and Crypt are required.
type Config struct {
	Store     Records
	Crypt     *crypt.Keyring
	Region    string // in ARNs; "us-east-1" if empty
	AccountID string // in ARNs; "000000000000" if empty
	Log       *slog.Logger
	Now       func() time.Time // the clock for dates and deletion windows; time.Now if nil
}

// Service serves the Secrets Manager API.
type Service struct {
	store   Records
	crypt   *crypt.Keyring
	region  string
	account string
	log     *slog.Logger
	now     func() time.Time
	wire    awsjson.Service
}

// New returns the service over cfg.Store.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store, crypt: cfg.Crypt, region: cfg.Region, account: cfg.AccountID,
		log: cfg.Log, now: cfg.Now,
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.account == "" {
		s.account = "000000000000"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.wire = awsjson.Service{Prefix: targetPrefix, MaxBody: maxBody, Failed: s.failed, Internal: errInternal, Wipe: true,
		TooLarge: func(n int) *apierr.Error { return errValidation("Request body is larger than %d bytes.", n) }}
	s.wire.Ops = map[string]awsjson.Operation{
		"CreateSecret":         awsjson.Handle(s.createSecret),
		"GetSecretValue":       awsjson.Handle(s.getSecretValue),
		"PutSecretValue":       awsjson.Handle(s.putSecretValue),
		"UpdateSecret":         awsjson.Handle(s.updateSecret),
		"DescribeSecret":       awsjson.Handle(s.describeSecret),
		"ListSecrets":          awsjson.Handle(s.listSecrets),
		"ListSecretVersionIds": awsjson.Handle(s.listSecretVersionIDs),
		"DeleteSecret":         awsjson.Handle(s.deleteSecret),
		"RestoreSecret":        awsjson.Handle(s.restoreSecret),
		"TagResource":          awsjson.Handle(s.tagResource),
		"UntagResource":        awsjson.Handle(s.untagResource),
	}
	return s
}

// IsSecretsManagerRequest reports whether r is a Secrets Manager API call, for the server to
// route it here.
func IsSecretsManagerRequest(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
}

// ServeHTTP serves one JSON 1.1 call: POST / with X-Amz-Target: secretsmanager.<Operation>.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.wire.ServeHTTP(w, r) }

// failed logs an error answer. Client errors are debug noise; internal ones are logged with
// their cause, which the client never sees.
func (s *Service) failed(r *http.Request, requestID, op string, e *apierr.Error, err error) {
	if e.Status >= 500 || e.Code == "DecryptionFailure" {
		s.log.Error("secrets manager request failed", "operation", op, "request_id", requestID, "err", err)
	} else if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("secrets manager request rejected", "operation", op, "request_id", requestID,
			"code", e.Code, "message", e.Message)
	}
}

// SecretValue is one version of a secret's value, as GetSecretValue returns it. Exactly one of
// String and Binary is set.
type SecretValue struct {
	ARN       string
	Name      string
	VersionID string
	String    *string
	Binary    []byte
	Stages    []string
	Created   time.Time
}

// Value returns a secret's value for Flint's own callers (the in-environment extension):
// secretID is a name or ARN; versionID and versionStage are optional (AWSCURRENT by default).
// Errors are *apierr.Error values carrying Secrets Manager's code and HTTP status
// (apierr.As(err).Status); a ResourceNotFoundException is a 400, as AWS sends it.
func (s *Service) Value(ctx context.Context, secretID, versionID, versionStage string) (*SecretValue, error) {
	out, err := s.getSecretValue(ctx, &getSecretValueInput{SecretID: secretID, VersionID: versionID, VersionStage: versionStage})
	if err != nil {
		return nil, err
	}
	v := &SecretValue{
		ARN: out.ARN, Name: out.Name, VersionID: out.VersionID, String: out.SecretString,
		Binary: out.SecretBinary, Stages: out.VersionStages,
	}
	if out.CreatedDate != nil {
		v.Created = time.Time(*out.CreatedDate)
	}
	return v, nil
}

// GetSecretValueJSON returns the document GetSecretValue answers with, which is also what the
// Parameters and Secrets Lambda Extension's GET /secretsmanager/get returns. Errors are as
// Value's. The caller logs what ServeHTTP would: InternalServiceError (500) and
// DecryptionFailure (a 400 on the wire, as AWS sends it, but it means the master key is missing
// or the stored record was altered).
func (s *Service) GetSecretValueJSON(ctx context.Context, secretID, versionID, versionStage string) ([]byte, error) {
	out, err := s.getSecretValue(ctx, &getSecretValueInput{SecretID: secretID, VersionID: versionID, VersionStage: versionStage})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, errInternal(fmt.Errorf("encode secret value: %w", err))
	}
	return b, nil
}
