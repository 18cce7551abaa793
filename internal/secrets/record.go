package secrets

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	// maxVersions is AWS's quota of versions per secret; beyond it the oldest versions without
	// staging labels go, as AWS deprecates them.
	maxVersions = 100
	// updateAttempts bounds retries of a read-modify-write that lost a race to another writer.
	updateAttempts = 10
)

// record is a secret as stored: one document per secret, holding its versions. Values are
// envelopes only.
type record struct {
	Name        string    `json:"name"`
	ARN         string    `json:"arn"`
	Description string    `json:"description,omitempty"`
	KmsKeyID    string    `json:"kms_key_id,omitempty"` // recorded and reported; Flint's crypt does the sealing
	Tags        []tag     `json:"tags,omitempty"`
	Created     time.Time `json:"created"`
	Changed     time.Time `json:"changed"`
	DeletedAt   time.Time `json:"deleted_at,omitzero"` // when DeleteSecret scheduled it
	PurgeAt     time.Time `json:"purge_at,omitzero"`   // when it goes for good
	Versions    []version `json:"versions,omitempty"`  // oldest first
}

type version struct {
	ID      string         `json:"id"`
	Stages  []string       `json:"stages,omitempty"`
	Created time.Time      `json:"created"`
	Value   crypt.Envelope `json:"value"`
}

// tag is a secret's tag, on the wire and in the record.
type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func (r *record) deleted() bool { return !r.DeletedAt.IsZero() }

// version returns the version with this id, or nil.
func (r *record) version(id string) *version {
	for i := range r.Versions {
		if r.Versions[i].ID == id {
			return &r.Versions[i]
		}
	}
	return nil
}

// staged returns the version carrying stage, or nil.
func (r *record) staged(stage string) *version {
	for i := range r.Versions {
		if slices.Contains(r.Versions[i].Stages, stage) {
			return &r.Versions[i]
		}
	}
	return nil
}

// addVersion appends v and moves its stages onto it, as PutSecretValue does: a stage lives on
// one version at a time, and when AWSCURRENT moves, the version it left becomes AWSPREVIOUS.
func (r *record) addVersion(v version) {
	stages := v.Stages
	v.Stages = nil
	r.Versions = append(r.Versions, v)
	nv := &r.Versions[len(r.Versions)-1]
	for _, stage := range stages {
		if stage == stageCurrent {
			if old := r.staged(stageCurrent); old != nil {
				if prev := r.staged(stagePrevious); prev != nil {
					prev.Stages = slices.DeleteFunc(prev.Stages, func(s string) bool { return s == stagePrevious })
				}
				old.Stages = slices.DeleteFunc(old.Stages, func(s string) bool { return s == stageCurrent })
				old.Stages = append(old.Stages, stagePrevious)
			}
		} else if old := r.staged(stage); old != nil {
			old.Stages = slices.DeleteFunc(old.Stages, func(s string) bool { return s == stage })
		}
		if !slices.Contains(nv.Stages, stage) {
			nv.Stages = append(nv.Stages, stage)
		}
	}
	r.prune()
}

// prune drops the oldest unlabelled versions beyond maxVersions.
func (r *record) prune() {
	for len(r.Versions) > maxVersions {
		i := slices.IndexFunc(r.Versions, func(v version) bool { return len(v.Stages) == 0 })
		if i < 0 {
			return
		}
		r.Versions = slices.Delete(r.Versions, i, i+1)
	}
}

// epoch is a timestamp as the JSON 1.1 protocol sends it: seconds since the epoch, with
// milliseconds as a fraction.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(time.Time(t).UnixMilli())/1e3, 'f', -1, 64), nil
}

// stamp is t for a response, nil (omitted) when zero.
func stamp(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// key is the store key of a secret. Names may hold '+' and '@', which NATS keys may not, and
// dots that NATS reads as separators, so the key is the name in URL-safe base64.
func key(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

var namePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`) })

// checkName validates a secret name (field is the wire name, for messages).
func checkName(field, name string, max int) error {
	if name == "" {
		return errValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	if len(name) > max {
		return errValidation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, max)
	}
	if !namePattern().MatchString(name) {
		return errValidation("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	return nil
}

// checkToken validates a ClientRequestToken, or makes one. The SDKs and the CLI always send
// one; a raw HTTP caller that does not still gets its version, only without idempotent retries.
func checkToken(token string) (string, error) {
	if token == "" {
		return uuidToken(), nil
	}
	if len(token) < 32 || len(token) > 64 {
		return "", errValidation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64")
	}
	return token, nil
}

const suffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// arn makes a new secret's ARN: AWS adds a hyphen and six random characters to the name, so a
// secret deleted and created again under the same name has another ARN (and the old one's
// envelopes, sealed to the old ARN, cannot be replayed into it).
func (s *Service) arn(name string) string {
	b := make([]byte, 6)
	for i := range b {
		var c [1]byte
		for {
			_, _ = rand.Read(c[:]) // crypto/rand.Read never fails (Go 1.24+)
			if c[0] < 248 {        // 248 = 4*62: no modulo bias
				break
			}
		}
		b[i] = suffixAlphabet[int(c[0])%len(suffixAlphabet)]
	}
	return s.arnPrefix() + name + "-" + string(b)
}

func (s *Service) arnPrefix() string {
	return "arn:aws:secretsmanager:" + s.region + ":" + s.account + ":secret:"
}

// loaded is a record with the revision it was read at.
type loaded struct {
	*record
	rev uint64
}

// load returns the secret named name. A secret whose deletion date has passed is removed now
// and reported missing.
func (s *Service) load(ctx context.Context, name string) (loaded, error) {
	if len(name) > 512 {
		return loaded{}, errNotFound() // no secret has such a name; spare the store the key
	}
	doc, rev, err := s.store.Get(ctx, key(name))
	if errors.Is(err, store.ErrNotFound) {
		return loaded{}, errNotFound()
	}
	if err != nil {
		return loaded{}, errInternal(err)
	}
	var r record
	if err := json.Unmarshal(doc, &r); err != nil {
		return loaded{}, errInternal(fmt.Errorf("decode secret %s: %w", name, err))
	}
	if s.purgeDue(ctx, &r) {
		return loaded{}, errNotFound()
	}
	return loaded{record: &r, rev: rev}, nil
}

// purgeDue removes r if its recovery window is over, and reports whether it did.
func (s *Service) purgeDue(ctx context.Context, r *record) bool {
	if !r.deleted() || s.now().Before(r.PurgeAt) {
		return false
	}
	if err := s.store.Delete(ctx, key(r.Name)); err != nil && !errors.Is(err, store.ErrNotFound) {
		// Still reported gone: its window is over whatever the store says; the next access
		// tries again.
		s.log.Warn("purge secret past its deletion date", "secret", r.Name, "err", err)
	} else {
		s.log.Info("secret deleted at the end of its recovery window", "secret", r.Name)
	}
	return true
}

// resolve finds a secret by name, full ARN or partial ARN (the ARN without its random suffix).
func (s *Service) resolve(ctx context.Context, secretID string) (loaded, error) {
	if !strings.HasPrefix(secretID, "arn:") {
		if err := checkName("secretId", secretID, 2048); err != nil {
			return loaded{}, err
		}
		return s.load(ctx, secretID)
	}
	if len(secretID) > 2048 {
		return loaded{}, errValidation("1 validation error detected: Value at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	name, ok := strings.CutPrefix(secretID, s.arnPrefix())
	if !ok || name == "" {
		return loaded{}, errNotFound() // another region, account or service
	}
	// A full ARN ends in -XXXXXX; try the name without it first, as AWS does.
	if i := len(name) - 7; i > 0 && name[i] == '-' {
		r, err := s.load(ctx, name[:i])
		if err == nil && r.ARN == secretID {
			return r, nil
		}
		if err != nil && !isNotFound(err) {
			return loaded{}, err
		}
	}
	return s.load(ctx, name)
}

func isNotFound(err error) bool {
	return err != nil && asError(err).Code == "ResourceNotFoundException"
}

// errUnchanged, returned by an update's fn, ends the update without writing: the request was a
// retry of one already applied, or there was nothing to change.
var errUnchanged = errors.New("secret unchanged")

// update applies fn to the secret and stores the result, retrying from a fresh read when
// another writer got there first. fn sees a record that is not scheduled for deletion unless
// allowDeleted.
func (s *Service) update(ctx context.Context, secretID string, allowDeleted bool, fn func(r *record) error) (*record, error) {
	for range updateAttempts {
		r, err := s.resolve(ctx, secretID)
		if err != nil {
			return nil, err
		}
		if r.deleted() && !allowDeleted {
			return nil, errMarkedForDeletion()
		}
		if err := fn(r.record); errors.Is(err, errUnchanged) {
			return r.record, nil
		} else if err != nil {
			return nil, err
		}
		doc, err := json.Marshal(r.record)
		if err != nil {
			return nil, errInternal(fmt.Errorf("encode secret %s: %w", r.Name, err))
		}
		_, err = s.store.Update(ctx, key(r.Name), doc, r.rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, errInternal(err)
		}
		return r.record, nil
	}
	return nil, errInternal(fmt.Errorf("update secret %s: %d attempts: %w", secretID, updateAttempts, store.ErrConflict))
}

// secretValue is a version's value before sealing: a SecretString or a SecretBinary.
type secretValue struct {
	str *string
	bin []byte
}

func (v secretValue) given() bool { return v.str != nil || v.bin != nil }

// Sealed form: one byte of kind, then the value, so a stored record does not even tell
// whether a version is text or binary.
const (
	kindString = 's'
	kindBinary = 'b'
)

func (v secretValue) encode() []byte {
	if v.str != nil {
		return append([]byte{kindString}, *v.str...)
	}
	return append([]byte{kindBinary}, v.bin...)
}

// valueAAD binds an envelope to its secret and version: it opens nowhere else.
func valueAAD(arn, versionID string) []byte { return []byte(arn + "\x00" + versionID) }

func (s *Service) seal(arn, versionID string, v secretValue) (crypt.Envelope, error) {
	pt := v.encode()
	defer clear(pt)
	e, err := s.crypt.Seal(pt, valueAAD(arn, versionID))
	if err != nil {
		return crypt.Envelope{}, errInternal(fmt.Errorf("seal secret value: %w", err))
	}
	return e, nil
}

func (s *Service) open(r *record, v *version) (secretValue, error) {
	pt, err := s.crypt.Open(v.Value, valueAAD(r.ARN, v.ID))
	if err != nil {
		return secretValue{}, errDecryption(fmt.Errorf("secret %s version %s: %w", r.Name, v.ID, err))
	}
	defer clear(pt)
	if len(pt) == 0 {
		return secretValue{}, errDecryption(fmt.Errorf("secret %s version %s: empty sealed value", r.Name, v.ID))
	}
	switch pt[0] {
	case kindString:
		str := string(pt[1:])
		return secretValue{str: &str}, nil
	case kindBinary:
		return secretValue{bin: append([]byte{}, pt[1:]...)}, nil
	}
	return secretValue{}, errDecryption(fmt.Errorf("secret %s version %s: unknown value kind", r.Name, v.ID))
}

// sameValue reports whether version v holds value in (for ClientRequestToken idempotency).
func (s *Service) sameValue(r *record, v *version, in secretValue) (bool, error) {
	have, err := s.open(r, v)
	if err != nil {
		return false, err
	}
	a, b := have.encode(), in.encode()
	defer clear(a)
	defer clear(b)
	return subtle.ConstantTimeCompare(a, b) == 1, nil
}

// Rewrap moves every stored secret version to the crypt's active master key (after
// crypt.Keyring.Rotate), without decrypting values or stopping the service, and returns how
// many versions it rewrapped. When it returns nil, the old master keys can be retired.
func (s *Service) Rewrap(ctx context.Context) (int, error) {
	keys, err := s.store.Keys(ctx, ">")
	if err != nil {
		return 0, fmt.Errorf("rewrap secrets: %w", err)
	}
	total := 0
	for _, k := range keys {
		nameBytes, err := base64.RawURLEncoding.DecodeString(k)
		if err != nil {
			return total, fmt.Errorf("rewrap secrets: key %q is not a secret's", k)
		}
		n := 0
		_, err = s.update(ctx, string(nameBytes), true, func(r *record) error {
			n = 0
			for i := range r.Versions {
				e, changed, err := s.crypt.Rewrap(r.Versions[i].Value)
				if err != nil {
					return fmt.Errorf("secret %s version %s: %w", r.Name, r.Versions[i].ID, err)
				}
				if changed {
					r.Versions[i].Value = e
					n++
				}
			}
			if n == 0 {
				return errUnchanged
			}
			return nil
		})
		if isNotFound(err) {
			continue // deleted since listed
		}
		if err != nil {
			return total, fmt.Errorf("rewrap secrets: %w", err)
		}
		total += n
	}
	return total, nil
}
