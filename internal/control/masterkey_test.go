package control_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/secrets"
	"github.com/flint-run/flint/internal/store"
)

// keyedStore opens a store sealed by keys.
func keyedStore(t *testing.T, keys *crypt.Keyring) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func TestMasterKey(t *testing.T) {
	ctx := context.Background()
	account := lambda.Account{Region: "us-east-1", ID: "123456789012"}
	log := slog.New(slog.DiscardHandler)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	keys, err := crypt.LoadKeyring(keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	st := keyedStore(t, keys)
	svc := control.New(control.Config{Store: st, Account: account, Log: log, Keys: keys,
		Secrets: secrets.New(secrets.Config{Store: st.Secrets(), Crypt: keys, Log: log})}).MasterKey

	// A function and a version with sealed variables, one without.
	vars := map[string]string{"TOKEN": "s3cret"}
	for _, name := range []string{"env", "plain"} {
		f := &lambda.Function{Config: lambda.FunctionConfiguration{FunctionName: name, FunctionArn: account.FunctionARN(name, ""),
			Version: lambda.LatestVersion, Runtime: "provided.al2023", Handler: "bootstrap"}}
		if name == "env" {
			f.Config.Environment = &lambda.EnvironmentResp{Variables: vars}
		}
		if _, err := st.Functions().Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	v, err := st.Functions().Get(ctx, "env")
	if err != nil {
		t.Fatal(err)
	}
	version := *v.Function
	version.Config.Version = "1"
	if _, err := st.Versions().Create(ctx, &version, 1); err != nil {
		t.Fatal(err)
	}

	// Each rotation makes a new key active, rewraps both sealed records and retires the
	// keys before it; the variables still open, and the key file holds only the new key.
	first := keys.KeyIDs()
	for i := range 2 {
		rot, err := svc.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rot.ActiveKeyId == "" || slices.Contains(first, rot.ActiveKeyId) || !slices.Equal(rot.RetiredKeyIds, first) ||
			rot.FunctionRecordsRewrapped != 2 || rot.SecretVersionsRewrapped != 0 {
			t.Fatalf("rotation %d: %+v (keys before %v)", i, rot, first)
		}
		if got := keys.KeyIDs(); !slices.Equal(got, []string{rot.ActiveKeyId}) {
			t.Fatalf("keys after rotation %d: %v", i, got)
		}
		reloaded, err := crypt.LoadKeyring(keyFile, "")
		if err != nil || !slices.Equal(reloaded.KeyIDs(), []string{rot.ActiveKeyId}) {
			t.Fatalf("key file after rotation %d: %v, %v", i, reloaded, err)
		}
		f, err := st.Functions().Get(ctx, "env")
		if err != nil || f.Config.Environment == nil || f.Config.Environment.Variables["TOKEN"] != "s3cret" {
			t.Fatalf("variables after rotation %d: %+v, %v", i, f.Config.Environment, err)
		}
		vf, _, err := st.Versions().Get(ctx, "env", 1)
		if err != nil || vf.Config.Environment == nil || vf.Config.Environment.Variables["TOKEN"] != "s3cret" {
			t.Fatalf("version's variables after rotation %d: %+v, %v", i, vf, err)
		}
		first = []string{rot.ActiveKeyId}

		// The answer's keys are in the order they had when it was a map.
		b, err := json.Marshal(rot)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{"ActiveKeyId": rot.ActiveKeyId, "RetiredKeyIds": rot.RetiredKeyIds,
			"FunctionRecordsRewrapped": rot.FunctionRecordsRewrapped, "SecretVersionsRewrapped": rot.SecretVersionsRewrapped})
		if string(b) != string(want) {
			t.Fatalf("answer %s, want %s", b, want)
		}
	}

	// Without a key file or without a keyring there is nothing to rotate, and nothing changes.
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	envKeys, err := crypt.LoadKeyring("", base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	before := envKeys.KeyIDs()
	_, err = control.New(control.Config{Store: keyedStore(t, envKeys), Account: account, Log: log, Keys: envKeys}).MasterKey.Rotate(ctx)
	wantErr(t, err, "InvalidParameterValueException", "The master key comes from FLINT_MASTER_KEY")
	if !slices.Equal(envKeys.KeyIDs(), before) {
		t.Fatalf("keys %v after a refused rotation, were %v", envKeys.KeyIDs(), before)
	}
	_, err = control.New(control.Config{Store: st, Account: account, Log: log}).MasterKey.Rotate(ctx)
	wantErr(t, err, "InvalidParameterValueException", "This server has no master keyring.")
}
