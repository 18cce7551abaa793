package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/store"
)

// The operations, with request and response shapes as in the Secrets Manager API reference and
// the aws-sdk-go-v2 secretsmanager model. Fields Flint does not implement (replication,
// rotation) are absent from responses, as AWS omits fields without a value.

const maxValueLen = 65536 // SecretString and SecretBinary, in bytes

func uuidToken() string { return uuid.NewString() }

// valueOf checks a request's SecretString and SecretBinary: at most one, within size.
func valueOf(str *string, bin []byte) (secretValue, error) {
	if str != nil && bin != nil {
		return secretValue{}, errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	}
	if str != nil && len(*str) > maxValueLen {
		return secretValue{}, errValidation("1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to %d", maxValueLen)
	}
	if len(bin) > maxValueLen {
		return secretValue{}, errValidation("1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length less than or equal to %d", maxValueLen)
	}
	return secretValue{str: str, bin: bin}, nil
}

func checkDescription(d *string) error {
	if d != nil && len(*d) > 2048 {
		return errValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	return nil
}

func checkTags(tags []tag) error {
	if len(tags) > 50 {
		return errValidation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return errInvalidParameter("Invalid tag: keys are 1 to 128 characters and values at most 256.")
		}
	}
	return nil
}

// mergeTags sets tags on top of old, replacing values of keys already there.
func mergeTags(old, tags []tag) []tag {
	out := slices.Clone(old)
	for _, t := range tags {
		if i := slices.IndexFunc(out, func(o tag) bool { return o.Key == t.Key }); i >= 0 {
			out[i].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	return out
}

// putVersion adds a version with id token holding val under stages, unless token names an
// existing version: then the same value makes it a retry (added false) and another value is
// refused, as versions are immutable.
func (s *Service) putVersion(r *record, token string, val secretValue, stages []string) (added bool, err error) {
	if v := r.version(token); v != nil {
		same, err := s.sameValue(r, v, val)
		if err != nil {
			return false, err
		}
		if !same {
			return false, smError("ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
		}
		return false, nil
	}
	env, err := s.seal(r.ARN, token, val)
	if err != nil {
		return false, err
	}
	now := s.now().UTC()
	r.addVersion(version{ID: token, Stages: stages, Created: now, Value: env})
	r.Changed = now
	return true, nil
}

type createSecretInput struct {
	Name               string            `json:"Name"`
	ClientRequestToken string            `json:"ClientRequestToken"`
	Description        *string           `json:"Description"`
	KmsKeyID           string            `json:"KmsKeyId"`
	SecretString       *string           `json:"SecretString"`
	SecretBinary       []byte            `json:"SecretBinary"`
	Tags               []tag             `json:"Tags"`
	AddReplicaRegions  []json.RawMessage `json:"AddReplicaRegions"`
}

type createSecretOutput struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionID string `json:"VersionId,omitempty"`
}

func (s *Service) createSecret(ctx context.Context, in *createSecretInput) (*createSecretOutput, error) {
	if err := checkName("name", in.Name, 512); err != nil {
		return nil, err
	}
	val, err := valueOf(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	token, err := checkToken(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.AddReplicaRegions) > 0 {
		return nil, errInvalidRequest("Flint does not replicate secrets to other Regions.")
	}
	now := s.now().UTC()
	r := &record{Name: in.Name, ARN: s.arn(in.Name), KmsKeyID: in.KmsKeyID, Tags: in.Tags, Created: now, Changed: now}
	if in.Description != nil {
		r.Description = *in.Description
	}
	out := &createSecretOutput{ARN: r.ARN, Name: r.Name}
	if val.given() {
		if _, err := s.putVersion(r, token, val, []string{stageCurrent}); err != nil {
			return nil, err
		}
		out.VersionID = token
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return nil, errInternal(fmt.Errorf("encode secret %s: %w", r.Name, err))
	}
	// Twice at most: the secret in the way may be one past its deletion date that load purges.
	for range 2 {
		_, err := s.store.Create(ctx, key(in.Name), doc)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, errInternal(err)
		}
		have, err := s.load(ctx, in.Name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if have.deleted() {
			return nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retry of a create that succeeded: the same token and value.
		if v := have.version(token); v != nil && val.given() {
			if same, err := s.sameValue(have.record, v, val); err != nil {
				return nil, err
			} else if same {
				return &createSecretOutput{ARN: have.ARN, Name: have.Name, VersionID: v.ID}, nil
			}
		}
		return nil, errExists(in.Name)
	}
	return nil, errInternal(fmt.Errorf("create secret %s: %w", in.Name, store.ErrConflict))
}

type getSecretValueInput struct {
	SecretID     string `json:"SecretId"`
	VersionID    string `json:"VersionId"`
	VersionStage string `json:"VersionStage"`
}

type getSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   *epoch   `json:"CreatedDate"`
}

func (s *Service) getSecretValue(ctx context.Context, in *getSecretValueInput) (*getSecretValueOutput, error) {
	r, err := s.resolve(ctx, in.SecretID)
	if err != nil {
		return nil, err
	}
	if r.deleted() {
		return nil, errMarkedForDeletion()
	}
	var v *version
	switch {
	case in.VersionID != "":
		if v = r.version(in.VersionID); v == nil {
			return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: %s", in.VersionID)
		}
		if in.VersionStage != "" && !slices.Contains(v.Stages, in.VersionStage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = stageCurrent
		}
		if v = r.staged(stage); v == nil {
			return nil, smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	val, err := s.open(r.record, v)
	if err != nil {
		return nil, err
	}
	return &getSecretValueOutput{
		ARN: r.ARN, Name: r.Name, VersionID: v.ID, SecretString: val.str, SecretBinary: val.bin,
		VersionStages: slices.Clone(v.Stages), CreatedDate: stamp(v.Created),
	}, nil
}

type putSecretValueInput struct {
	SecretID           string   `json:"SecretId"`
	ClientRequestToken string   `json:"ClientRequestToken"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"`
	VersionStages      []string `json:"VersionStages"`
}

type putSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

func (s *Service) putSecretValue(ctx context.Context, in *putSecretValueInput) (*putSecretValueOutput, error) {
	val, err := valueOf(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	if !val.given() {
		return nil, errInvalidRequest("You must provide either SecretString or SecretBinary.")
	}
	token, err := checkToken(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	stages := in.VersionStages
	if stages == nil {
		stages = []string{stageCurrent}
	}
	if len(stages) < 1 || len(stages) > 20 {
		return nil, errValidation("1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length between 1 and 20")
	}
	for _, st := range stages {
		if st == "" || len(st) > 256 {
			return nil, errValidation("1 validation error detected: Value at 'versionStages' failed to satisfy constraint: Member must have length between 1 and 256")
		}
	}
	r, err := s.update(ctx, in.SecretID, false, func(r *record) error {
		added, err := s.putVersion(r, token, val, stages)
		if err == nil && !added {
			return errUnchanged
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &putSecretValueOutput{ARN: r.ARN, Name: r.Name, VersionID: token, VersionStages: slices.Clone(r.version(token).Stages)}, nil
}

type updateSecretInput struct {
	SecretID           string  `json:"SecretId"`
	ClientRequestToken string  `json:"ClientRequestToken"`
	Description        *string `json:"Description"`
	KmsKeyID           *string `json:"KmsKeyId"`
	SecretString       *string `json:"SecretString"`
	SecretBinary       []byte  `json:"SecretBinary"`
}

type updateSecretOutput struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionID string `json:"VersionId,omitempty"`
}

func (s *Service) updateSecret(ctx context.Context, in *updateSecretInput) (*updateSecretOutput, error) {
	val, err := valueOf(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	token, err := checkToken(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(in.Description); err != nil {
		return nil, err
	}
	r, err := s.update(ctx, in.SecretID, false, func(r *record) error {
		if in.Description != nil {
			r.Description = *in.Description
			r.Changed = s.now().UTC()
		}
		if in.KmsKeyID != nil {
			r.KmsKeyID = *in.KmsKeyID
			r.Changed = s.now().UTC()
		}
		if val.given() {
			if _, err := s.putVersion(r, token, val, []string{stageCurrent}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &updateSecretOutput{ARN: r.ARN, Name: r.Name}
	if val.given() {
		out.VersionID = token
	}
	return out, nil
}

type secretIDInput struct {
	SecretID string `json:"SecretId"`
}

// secretEntry is a secret's metadata: DescribeSecret's response and ListSecrets' entries, which
// differ only in the name of the version map.
type secretEntry struct {
	ARN                    string              `json:"ARN"`
	Name                   string              `json:"Name"`
	Description            string              `json:"Description,omitempty"`
	KmsKeyID               string              `json:"KmsKeyId,omitempty"`
	CreatedDate            *epoch              `json:"CreatedDate,omitempty"`
	LastChangedDate        *epoch              `json:"LastChangedDate,omitempty"`
	DeletedDate            *epoch              `json:"DeletedDate,omitempty"`
	Tags                   []tag               `json:"Tags,omitempty"`
	VersionIdsToStages     map[string][]string `json:"VersionIdsToStages,omitempty"`
	SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
}

// entry describes r. Only versions with staging labels are listed: the others are deprecated.
// DeletedDate is when the deletion was requested (ListSecrets' documentation: "the date and
// time the deletion of the secret occurred"); DeleteSecret's DeletionDate is when it ends.
func entry(r *record) secretEntry {
	e := secretEntry{
		ARN: r.ARN, Name: r.Name, Description: r.Description, KmsKeyID: r.KmsKeyID,
		CreatedDate: stamp(r.Created), LastChangedDate: stamp(r.Changed), DeletedDate: stamp(r.DeletedAt),
		Tags: r.Tags,
	}
	stages := map[string][]string{}
	for _, v := range r.Versions {
		if len(v.Stages) > 0 {
			stages[v.ID] = slices.Clone(v.Stages)
		}
	}
	if len(stages) > 0 {
		e.VersionIdsToStages = stages
	}
	return e
}

func (s *Service) describeSecret(ctx context.Context, in *secretIDInput) (*secretEntry, error) {
	r, err := s.resolve(ctx, in.SecretID)
	if err != nil {
		return nil, err
	}
	e := entry(r.record)
	return &e, nil
}

type listVersionsInput struct {
	SecretID          string `json:"SecretId"`
	IncludeDeprecated bool   `json:"IncludeDeprecated"`
	MaxResults        *int   `json:"MaxResults"`
	NextToken         string `json:"NextToken"`
}

type versionEntry struct {
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages,omitempty"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
}

type listVersionsOutput struct {
	ARN       string         `json:"ARN"`
	Name      string         `json:"Name"`
	Versions  []versionEntry `json:"Versions"`
	NextToken string         `json:"NextToken,omitempty"`
}

func (s *Service) listSecretVersionIDs(ctx context.Context, in *listVersionsInput) (*listVersionsOutput, error) {
	r, err := s.resolve(ctx, in.SecretID)
	if err != nil {
		return nil, err
	}
	if r.deleted() {
		return nil, errMarkedForDeletion()
	}
	var all []versionEntry
	for _, v := range slices.Backward(r.Versions) { // newest first
		if len(v.Stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		all = append(all, versionEntry{VersionID: v.ID, VersionStages: slices.Clone(v.Stages), CreatedDate: stamp(v.Created)})
	}
	items, next, err := page(all, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &listVersionsOutput{ARN: r.ARN, Name: r.Name, Versions: items, NextToken: next}, nil
}

type deleteSecretInput struct {
	SecretID                   string `json:"SecretId"`
	RecoveryWindowInDays       *int64 `json:"RecoveryWindowInDays"`
	ForceDeleteWithoutRecovery *bool  `json:"ForceDeleteWithoutRecovery"`
}

type deleteSecretOutput struct {
	ARN          string `json:"ARN"`
	Name         string `json:"Name"`
	DeletionDate *epoch `json:"DeletionDate"`
}

func (s *Service) deleteSecret(ctx context.Context, in *deleteSecretInput) (*deleteSecretOutput, error) {
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	if force && in.RecoveryWindowInDays != nil {
		return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	if force {
		// Also for a secret already scheduled for deletion: the way to free its name at once.
		r, err := s.resolve(ctx, in.SecretID)
		if err != nil {
			return nil, err
		}
		if err := s.store.Delete(ctx, key(r.Name)); errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound()
		} else if err != nil {
			return nil, errInternal(err)
		}
		return &deleteSecretOutput{ARN: r.ARN, Name: r.Name, DeletionDate: stamp(s.now())}, nil
	}
	r, err := s.update(ctx, in.SecretID, false, func(r *record) error {
		now := s.now().UTC()
		r.DeletedAt = now
		r.PurgeAt = now.Add(time.Duration(days) * 24 * time.Hour)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &deleteSecretOutput{ARN: r.ARN, Name: r.Name, DeletionDate: stamp(r.PurgeAt)}, nil
}

type nameOutput struct {
	ARN  string `json:"ARN"`
	Name string `json:"Name"`
}

func (s *Service) restoreSecret(ctx context.Context, in *secretIDInput) (*nameOutput, error) {
	r, err := s.update(ctx, in.SecretID, true, func(r *record) error {
		if !r.deleted() {
			return errUnchanged
		}
		r.DeletedAt, r.PurgeAt = time.Time{}, time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &nameOutput{ARN: r.ARN, Name: r.Name}, nil
}

type tagResourceInput struct {
	SecretID string `json:"SecretId"`
	Tags     []tag  `json:"Tags"`
}

func (s *Service) tagResource(ctx context.Context, in *tagResourceInput) (*struct{}, error) {
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	_, err := s.update(ctx, in.SecretID, false, func(r *record) error {
		tags := mergeTags(r.Tags, in.Tags)
		if len(tags) > 50 {
			return errValidation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
		}
		r.Tags = tags
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}

type untagResourceInput struct {
	SecretID string   `json:"SecretId"`
	TagKeys  []string `json:"TagKeys"`
}

func (s *Service) untagResource(ctx context.Context, in *untagResourceInput) (*struct{}, error) {
	_, err := s.update(ctx, in.SecretID, false, func(r *record) error {
		drop := make(map[string]bool, len(in.TagKeys))
		for _, k := range in.TagKeys {
			drop[k] = true
		}
		r.Tags = slices.DeleteFunc(r.Tags, func(t tag) bool { return drop[t.Key] })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}
