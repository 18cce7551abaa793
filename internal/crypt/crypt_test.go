package crypt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newKeyring(t *testing.T) (*Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	k, err := LoadKeyring(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

func randomB64(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestSealOpenRoundTrip(t *testing.T) {
	k, _ := newKeyring(t)
	for _, tc := range []struct {
		name string
		pt   []byte
	}{
		{"empty", []byte{}},
		{"text", []byte("hunter2")},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}},
		{"large", bytes.Repeat([]byte("x"), 1<<16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aad := []byte("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf")
			e, err := k.Seal(tc.pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if e.KeyID != k.ActiveKeyID() {
				t.Errorf("KeyID = %q, want active %q", e.KeyID, k.ActiveKeyID())
			}
			got, err := k.Open(e, aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Errorf("Open = %q, want %q", got, tc.pt)
			}
		})
	}
}

func TestSealUsesFreshDataKeyAndNonce(t *testing.T) {
	k, _ := newKeyring(t)
	a, err := k.Seal([]byte("same"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.Seal([]byte("same"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.WrappedKey, b.WrappedKey) || bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Error("two seals of one value share a data key, nonce or ciphertext")
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	k, _ := newKeyring(t)
	other, _ := newKeyring(t)
	const secret = "correct horse battery staple"
	aad := []byte("arn:aws:lambda:us-east-1:000000000000:function:a")
	e, err := k.Seal([]byte(secret), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(e *Envelope) []byte // returns the aad to open with
		want   error
	}{
		{"ciphertext", func(e *Envelope) []byte { e.Ciphertext = flip(e.Ciphertext, 0); return aad }, ErrDecrypt},
		{"tag", func(e *Envelope) []byte { e.Ciphertext = flip(e.Ciphertext, len(e.Ciphertext)-1); return aad }, ErrDecrypt},
		{"truncated ciphertext", func(e *Envelope) []byte { e.Ciphertext = e.Ciphertext[:3]; return aad }, ErrDecrypt},
		{"nonce", func(e *Envelope) []byte { e.Nonce = flip(e.Nonce, 0); return aad }, ErrDecrypt},
		{"short nonce", func(e *Envelope) []byte { e.Nonce = e.Nonce[:4]; return aad }, ErrDecrypt},
		{"wrapped key", func(e *Envelope) []byte { e.WrappedKey = flip(e.WrappedKey, 5); return aad }, ErrDecrypt},
		{"wrap nonce", func(e *Envelope) []byte { e.WrapNonce = flip(e.WrapNonce, 2); return aad }, ErrDecrypt},
		{"other aad", func(e *Envelope) []byte { return []byte("arn:aws:lambda:us-east-1:000000000000:function:b") }, ErrDecrypt},
		{"no aad", func(e *Envelope) []byte { return nil }, ErrDecrypt},
		{"unknown master key", func(e *Envelope) []byte { e.KeyID = other.ActiveKeyID(); return aad }, ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e
			openAAD := tc.change(&c)
			got, err := k.Open(c, openAAD)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want error %v", got, err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q carries the plaintext", err)
			}
		})
	}

	t.Run("other keyring", func(t *testing.T) {
		if _, err := other.Open(e, aad); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Open under another ring: %v, want ErrUnknownKey", err)
		}
	})
	t.Run("master key id swapped for another key in the ring", func(t *testing.T) {
		if _, err := k.Rotate(); err != nil {
			t.Fatal(err)
		}
		c := e
		c.KeyID = k.ActiveKeyID()
		if _, err := k.Open(c, aad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open with another key's id: %v, want ErrDecrypt", err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		c := e
		c.Version = 99
		if _, err := k.Open(c, aad); err == nil {
			t.Error("Open of a version 99 envelope succeeded")
		}
	})
}

func TestSerialisedEnvelopeHasNoPlaintext(t *testing.T) {
	k, _ := newKeyring(t)
	const secret = "s3cr3t-p@ssw0rd-value-0123456789"
	e, err := k.Seal([]byte(secret), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := k.SealMap(map[string]string{"DB_PASSWORD": secret}, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]Envelope{"value": e, "map": m} {
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		// The raw value, and its base64 too: []byte fields marshal as base64, the shape a
		// plaintext leak through a byte field would take.
		for _, needle := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), "DB_PASSWORD"} {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s envelope %s contains %q", name, b, needle)
			}
		}
		var back Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(env, back); diff != "" {
			t.Errorf("%s envelope JSON round trip (-want +got):\n%s", name, diff)
		}
	}
}

func TestSealMap(t *testing.T) {
	k, _ := newKeyring(t)
	for _, tc := range []struct {
		name string
		in   map[string]string
	}{
		{"vars", map[string]string{"A": "1", "B": "two", "EMPTY": ""}},
		{"empty", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := k.SealMap(tc.in, []byte("fn"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.OpenMap(e, []byte("fn"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.in, got); diff != "" {
				t.Errorf("OpenMap (-want +got):\n%s", diff)
			}
			if _, err := k.OpenMap(e, []byte("other fn")); !errors.Is(err, ErrDecrypt) {
				t.Errorf("OpenMap with other aad: %v, want ErrDecrypt", err)
			}
		})
	}
	e, err := k.Seal([]byte("not json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.OpenMap(e, nil); err == nil || strings.Contains(err.Error(), "not json") {
		t.Errorf("OpenMap of a non-map: %v", err)
	}
}

func TestKeyFileCreatedPrivateAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "flint")
	path := filepath.Join(dir, "master.key")
	k, err := LoadKeyring(path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("created key directory mode = %04o, want 0700", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatalf("key file is not JSON: %v", err)
	}
	if len(kf.Keys) != 1 || kf.Active != kf.Keys[0].ID || kf.Keys[0].Created.IsZero() || kf.Keys[0].Key == "" {
		t.Errorf("key file = %+v, want one active key with its id, key and created time", kf)
	}

	aad := []byte("arn")
	e, err := k.Seal([]byte("value"), aad)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadKeyring(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if again.ActiveKeyID() != k.ActiveKeyID() {
		t.Errorf("reloaded active key = %s, want %s", again.ActiveKeyID(), k.ActiveKeyID())
	}
	got, err := again.Open(e, aad)
	if err != nil || string(got) != "value" {
		t.Errorf("reloaded Open = %q, %v; want value", got, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Error("reloading rewrote the key file")
	}
}

func TestKeyFileCreatedOnceByConcurrentStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			k, err := LoadKeyring(path, "")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ActiveKeyID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent first starts made different keys: %v", ids)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".flint-master-key-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestKeyFileRefused(t *testing.T) {
	valid := func(t *testing.T) (string, keyFile) {
		_, path := newKeyring(t)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kf keyFile
		if err := json.Unmarshal(b, &kf); err != nil {
			t.Fatal(err)
		}
		return path, kf
	}
	write := func(t *testing.T, path string, kf keyFile) {
		b, err := json.Marshal(kf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string, kf keyFile)
		want  string // in the error
	}{
		{"group readable", func(t *testing.T, path string, _ keyFile) { os.Chmod(path, 0o640) }, "chmod 600"},
		{"world readable", func(t *testing.T, path string, _ keyFile) { os.Chmod(path, 0o604) }, "chmod 600"},
		{"group writable", func(t *testing.T, path string, _ keyFile) { os.Chmod(path, 0o620) }, "chmod 600"},
		{"short key", func(t *testing.T, path string, kf keyFile) {
			kf.Keys[0].Key = randomB64(t, 16)
			write(t, path, kf)
		}, "want 32"},
		{"long key", func(t *testing.T, path string, kf keyFile) {
			kf.Keys[0].Key = randomB64(t, 64)
			write(t, path, kf)
		}, "want 32"},
		{"key altered", func(t *testing.T, path string, kf keyFile) {
			kf.Keys[0].Key = randomB64(t, 32)
			write(t, path, kf)
		}, "does not match"},
		{"active missing", func(t *testing.T, path string, kf keyFile) {
			kf.Active = "mk-0000000000000000"
			write(t, path, kf)
		}, "not among"},
		{"no keys", func(t *testing.T, path string, kf keyFile) {
			kf.Keys = nil
			write(t, path, kf)
		}, "no keys"},
		{"not json", func(t *testing.T, path string, _ keyFile) { os.WriteFile(path, []byte("hello"), 0o600) }, "not a key file"},
		{"directory", func(t *testing.T, path string, _ keyFile) {
			os.Remove(path)
			os.Mkdir(path, 0o700)
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, kf := valid(t)
			tc.setup(t, path, kf)
			_, err := LoadKeyring(path, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadKeyring = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEnvironmentKeys(t *testing.T) {
	a, b := randomB64(t, 32), randomB64(t, 32)
	path := filepath.Join(t.TempDir(), "master.key")

	ka, err := LoadKeyring(path, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was made although the key came from the environment: %v", err)
	}
	aad := []byte("fn")
	old, err := ka.Seal([]byte("v"), aad)
	if err != nil {
		t.Fatal(err)
	}

	// Rotation by environment: the new key first, the old one still listed.
	kba, err := LoadKeyring(path, " "+b+" , "+a+",")
	if err != nil {
		t.Fatal(err)
	}
	if kba.ActiveKeyID() == ka.ActiveKeyID() {
		t.Fatal("the first key listed is not active")
	}
	if got, err := kba.Open(old, aad); err != nil || string(got) != "v" {
		t.Fatalf("Open under the old key after rotation = %q, %v", got, err)
	}
	moved, changed, err := kba.Rewrap(old)
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v", changed, err)
	}
	kb, err := LoadKeyring(path, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kb.Open(moved, aad); err != nil || string(got) != "v" {
		t.Errorf("Open of the rewrapped envelope without the old key = %q, %v", got, err)
	}
	if _, err := kb.Open(old, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open of the old envelope without the old key: %v, want ErrUnknownKey", err)
	}
	if _, err := kb.Rotate(); !errors.Is(err, ErrNoKeyFile) {
		t.Errorf("Rotate of an environment ring: %v, want ErrNoKeyFile", err)
	}
	if err := kba.Retire(ka.ActiveKeyID()); !errors.Is(err, ErrNoKeyFile) {
		t.Errorf("Retire in an environment ring: %v, want ErrNoKeyFile", err)
	}

	for _, tc := range []struct{ name, env, want string }{
		{"short", randomB64(t, 16), "want 32"},
		{"long", randomB64(t, 33), "want 32"},
		{"not base64", "!!!!", "not valid base64"},
		{"second bad", a + "," + randomB64(t, 31), "master key 2"},
		{"only commas", ",,", "no key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKeyring(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadKeyring = %v, want an error containing %q", err, tc.want)
			}
			for part := range strings.SplitSeq(tc.env, ",") {
				if len(part) > 4 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q carries the key", err)
				}
			}
		})
	}
}

func TestKeyMovesFromFileToEnvironment(t *testing.T) {
	k, path := newKeyring(t)
	e, err := k.Seal([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	env, err := LoadKeyring("", kf.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := env.Open(e, nil); err != nil || string(got) != "v" {
		t.Errorf("Open with the file's key given in the environment = %q, %v", got, err)
	}
}

func TestRotateRewrapRetire(t *testing.T) {
	k, path := newKeyring(t)
	oldID := k.ActiveKeyID()
	aad := []byte("arn:aws:secretsmanager:us-east-1:000000000000:secret:x-AbCdEf")
	before, err := k.Seal([]byte("before rotation"), aad)
	if err != nil {
		t.Fatal(err)
	}

	newID, err := k.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newID == oldID || k.ActiveKeyID() != newID {
		t.Fatalf("Rotate = %s (active %s), old %s: want a new active key", newID, k.ActiveKeyID(), oldID)
	}
	if diff := cmp.Diff([]string{oldID, newID}, k.KeyIDs()); diff != "" {
		t.Errorf("KeyIDs (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file after rotation: %v, %v; want mode 0600", fi.Mode(), err)
	}
	after, err := k.Seal([]byte("after rotation"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if after.KeyID != newID {
		t.Errorf("sealed under %s after rotation, want %s", after.KeyID, newID)
	}
	if got, err := k.Open(before, aad); err != nil || string(got) != "before rotation" {
		t.Errorf("Open of an old envelope after rotation = %q, %v", got, err)
	}

	rewrapped, changed, err := k.Rewrap(before)
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v; want changed", changed, err)
	}
	if rewrapped.KeyID != newID || !bytes.Equal(rewrapped.Ciphertext, before.Ciphertext) || !bytes.Equal(rewrapped.Nonce, before.Nonce) {
		t.Errorf("Rewrap changed the ciphertext or did not move to the new key: %+v", rewrapped)
	}
	if same, changed, err := k.Rewrap(after); err != nil || changed || !cmp.Equal(same, after) {
		t.Errorf("Rewrap of a current envelope = %v, %v; want it unchanged", changed, err)
	}

	if err := k.Retire(newID); !errors.Is(err, ErrActiveKey) {
		t.Errorf("Retire(active) = %v, want ErrActiveKey", err)
	}
	if err := k.Retire("mk-0000000000000000"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Retire(unknown) = %v, want ErrUnknownKey", err)
	}
	if err := k.Retire(oldID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{newID}, k.KeyIDs()); diff != "" {
		t.Errorf("KeyIDs after Retire (-want +got):\n%s", diff)
	}
	if got, err := k.Open(rewrapped, aad); err != nil || string(got) != "before rotation" {
		t.Errorf("Open of the rewrapped envelope after Retire = %q, %v", got, err)
	}
	if _, err := k.Open(before, aad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open under the retired key: %v, want ErrUnknownKey", err)
	}

	reloaded, err := LoadKeyring(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{newID}, reloaded.KeyIDs()); diff != "" {
		t.Errorf("reloaded KeyIDs (-want +got):\n%s", diff)
	}
	for _, e := range []Envelope{rewrapped, after} {
		if _, err := reloaded.Open(e, aad); err != nil {
			t.Errorf("reloaded Open: %v", err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".flint-master-key-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestConcurrentUse runs seals and opens while keys rotate (for the race detector).
func TestConcurrentUse(t *testing.T) {
	k, _ := newKeyring(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				e, err := k.Seal([]byte("v"), []byte("a"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Open(e, []byte("a")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := k.Rotate(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

// TestDerivedKeys: the same master keys give the same derived keys (a restart, another node),
// another purpose or another master key gives others, and the active key's comes first.
func TestDerivedKeys(t *testing.T) {
	k, path := newKeyring(t)
	first := k.DerivedKeys("links")
	if len(first) != 1 || len(first[0]) != 32 {
		t.Fatalf("DerivedKeys = %d keys (first %d bytes), want 1 of 32", len(first), len(first[0]))
	}
	again, err := LoadKeyring(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := again.DerivedKeys("links"); !bytes.Equal(got[0], first[0]) {
		t.Error("the same key file derives another key after a reload")
	}
	if other := k.DerivedKeys("other"); bytes.Equal(other[0], first[0]) {
		t.Error("two purposes derive the same key")
	}
	if _, err := k.Rotate(); err != nil {
		t.Fatal(err)
	}
	rotated := k.DerivedKeys("links")
	if len(rotated) != 2 || bytes.Equal(rotated[0], first[0]) || !bytes.Equal(rotated[1], first[0]) {
		t.Errorf("after Rotate: want the new key's derived key first and the old one's second")
	}
}
