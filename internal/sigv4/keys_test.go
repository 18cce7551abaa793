package sigv4

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	keyIDPattern  = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
)

func TestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "keys.json")
	k, err := Load(path)
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if k.Len() != 0 || len(k.List()) != 0 {
		t.Fatalf("new store has %d keys", k.Len())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created the file: %v", err)
	}

	before := time.Now().UTC()
	a, err := k.Create("laptop")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	b, err := k.Create("")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	c, err := k.Create("ci")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, cr := range []Credentials{a, b, c} {
		if !keyIDPattern.MatchString(cr.AccessKeyID) {
			t.Errorf("access key ID %q is not AKIA + 16 base32 characters", cr.AccessKeyID)
		}
		if !secretPattern.MatchString(cr.SecretAccessKey) {
			t.Errorf("secret %q is not 40 base64 characters", cr.SecretAccessKey)
		}
		if cr.Created.Before(before) || cr.Created.After(time.Now()) {
			t.Errorf("Created = %v, want between %v and now", cr.Created, before)
		}
		if secret, ok := k.Lookup(cr.AccessKeyID); !ok || secret != cr.SecretAccessKey {
			t.Errorf("Lookup(%s) = %q, %v", cr.AccessKeyID, secret, ok)
		}
	}
	if a.AccessKeyID == b.AccessKeyID || a.SecretAccessKey == b.SecretAccessKey {
		t.Error("two keys share an ID or a secret")
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(tmps) != 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}

	wantList := func(creds ...Credentials) []Credentials {
		var out []Credentials
		for _, c := range creds {
			c.SecretAccessKey = ""
			out = append(out, c)
		}
		slices.SortFunc(out, func(x, y Credentials) int { return strings.Compare(x.AccessKeyID, y.AccessKeyID) })
		return out
	}
	if diff := cmp.Diff(wantList(a, b, c), k.List()); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	if err := k.Delete(b.AccessKeyID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := k.Lookup(b.AccessKeyID); ok {
		t.Error("deleted key still found")
	}
	if err := k.Delete(b.AccessKeyID); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("Delete of a deleted key: %v, want ErrNoSuchKey", err)
	}

	// Reload from the file: the same keys, with their secrets.
	k2, err := Load(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if diff := cmp.Diff(wantList(a, c), k2.List()); diff != "" {
		t.Errorf("reloaded List (-want +got):\n%s", diff)
	}
	for _, cr := range []Credentials{a, c} {
		if secret, ok := k2.Lookup(cr.AccessKeyID); !ok || secret != cr.SecretAccessKey {
			t.Errorf("reloaded Lookup(%s) = %q, %v", cr.AccessKeyID, secret, ok)
		}
	}
	if k2.Len() != 2 {
		t.Errorf("reloaded Len = %d, want 2", k2.Len())
	}
}

func TestKeysFileModeIsExactWhateverTheExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte(`{"Keys":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Create("x"); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o after a save, want 600", mode)
	}
}

func TestKeysLoadRejectsBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"not JSON":       `{"Keys":[`,
		"no secret":      `{"Keys":[{"AccessKeyId":"AKIAAAAAAAAAAAAAAAAA"}]}`,
		"duplicate key":  `{"Keys":[{"AccessKeyId":"AKIAAAAAAAAAAAAAAAAA","SecretAccessKey":"a"},{"AccessKeyId":"AKIAAAAAAAAAAAAAAAAA","SecretAccessKey":"b"}]}`,
		"no access key":  `{"Keys":[{"SecretAccessKey":"a"}]}`,
		"wrong top type": `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil {
				t.Errorf("Load succeeded")
			}
		})
	}
}

func TestKeysFailedSaveChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	k, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the file should be makes the rename fail.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Create("b"); err == nil {
		t.Fatal("Create succeeded with an unwritable store")
	}
	if err := k.Delete(a.AccessKeyID); err == nil {
		t.Fatal("Delete succeeded with an unwritable store")
	}
	if k.Len() != 1 {
		t.Errorf("Len = %d after failed saves, want 1", k.Len())
	}
	if _, ok := k.Lookup(a.AccessKeyID); !ok {
		t.Error("a failed Delete removed the key from memory")
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmps) != 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

func TestKeysConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	k, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := k.Create("seed")
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	ids := make(chan string, writers)
	for range writers {
		wg.Go(func() {
			c, err := k.Create("w")
			if err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			ids <- c.AccessKeyID
		})
		wg.Go(func() {
			for range 100 {
				if _, ok := k.Lookup(seed.AccessKeyID); !ok {
					t.Error("Lookup of the seed key failed during writes")
					return
				}
				k.List()
			}
		})
	}
	wg.Wait()
	close(ids)
	k2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Len() != writers+1 {
		t.Errorf("file holds %d keys, want %d", k2.Len(), writers+1)
	}
	for id := range ids {
		if _, ok := k2.Lookup(id); !ok {
			t.Errorf("key %s created concurrently is missing from the file", id)
		}
	}
}
