package sigv4

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoSuchKey is wrapped by Keys.Delete when the access key ID is not in the store.
var ErrNoSuchKey = errors.New("no such access key")

// Credentials is one access key: the pair a client configures (AccessKeyID and
// SecretAccessKey, as in ~/.aws/credentials) and what the operator knows of it.
type Credentials struct {
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey,omitempty"`
	Created         time.Time `json:"Created"`
	Description     string    `json:"Description,omitempty"`
}

// Keys is the store of access keys, kept in a JSON file that only its owner can read. Reads
// (Lookup, on every request) take no lock: they load an immutable snapshot that writers
// replace whole. Writers are serialised and rewrite the file atomically before publishing.
type Keys struct {
	path string
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[map[string]Credentials]
}

type keysFile struct {
	Keys []Credentials `json:"Keys"`
}

// Load reads the key store at path. A missing file is an empty store; it is created by the
// first Create.
func Load(path string) (*Keys, error) {
	k := &Keys{path: path}
	m, err := readKeys(path)
	if err != nil {
		return nil, err
	}
	k.snap.Store(&m)
	return k, nil
}

// Reload re-reads the file (written by `flint keys` while a server runs); on error the keys in
// use stay as they were.
func (k *Keys) Reload() error {
	m, err := readKeys(k.path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.snap.Store(&m)
	k.mu.Unlock()
	return nil
}

// Path is the file the keys live in.
func (k *Keys) Path() string { return k.path }

func readKeys(path string) (map[string]Credentials, error) {
	m := make(map[string]Credentials)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("load access keys: %w", err)
	default:
		var f keysFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("load access keys %s: %w", path, err)
		}
		for _, c := range f.Keys {
			if c.AccessKeyID == "" || c.SecretAccessKey == "" {
				return nil, fmt.Errorf("load access keys %s: an entry lacks AccessKeyId or SecretAccessKey", path)
			}
			if _, dup := m[c.AccessKeyID]; dup {
				return nil, fmt.Errorf("load access keys %s: access key %s appears twice", path, c.AccessKeyID)
			}
			m[c.AccessKeyID] = c
		}
	}
	return m, nil
}

// Lookup returns the secret for an access key ID.
func (k *Keys) Lookup(id string) (string, bool) {
	c, ok := (*k.snap.Load())[id]
	return c.SecretAccessKey, ok
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(*k.snap.Load()) }

// List returns every key sorted by ID, without secrets: as with AWS, a secret is shown once,
// by Create.
func (k *Keys) List() []Credentials {
	m := *k.snap.Load()
	out := make([]Credentials, 0, len(m))
	for _, c := range m {
		c.SecretAccessKey = ""
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Credentials) int { return strings.Compare(a.AccessKeyID, b.AccessKeyID) })
	return out
}

// Create makes a new key, saves the store, and returns the key with its secret.
func (k *Keys) Create(desc string) (Credentials, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := *k.snap.Load()
	var c Credentials
	for {
		id, err := newAccessKeyID()
		if err != nil {
			return Credentials{}, fmt.Errorf("create access key: %w", err)
		}
		if _, taken := cur[id]; !taken {
			c.AccessKeyID = id
			break
		}
	}
	secret, err := newSecret()
	if err != nil {
		return Credentials{}, fmt.Errorf("create access key: %w", err)
	}
	c.SecretAccessKey = secret
	c.Created = time.Now().UTC()
	c.Description = desc
	next := make(map[string]Credentials, len(cur)+1)
	for id, v := range cur {
		next[id] = v
	}
	next[c.AccessKeyID] = c
	if err := k.save(next); err != nil {
		return Credentials{}, fmt.Errorf("create access key: %w", err)
	}
	k.snap.Store(&next)
	return c, nil
}

// Delete removes a key and saves the store. Requests signed with it fail from the moment
// Delete returns.
func (k *Keys) Delete(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := *k.snap.Load()
	if _, ok := cur[id]; !ok {
		return fmt.Errorf("delete access key %s: %w", id, ErrNoSuchKey)
	}
	next := make(map[string]Credentials, len(cur))
	for kid, v := range cur {
		if kid != id {
			next[kid] = v
		}
	}
	if err := k.save(next); err != nil {
		return fmt.Errorf("delete access key %s: %w", id, err)
	}
	k.snap.Store(&next)
	return nil
}

// save writes m to the store's file atomically: a temporary file in the same directory,
// mode 0600, synced, then renamed over the old one, so a crash leaves the old store or the new
// one and never a torn file, and the secrets are never readable by others even briefly.
func (k *Keys) save(m map[string]Credentials) error {
	f := keysFile{Keys: make([]Credentials, 0, len(m))}
	for _, c := range m {
		f.Keys = append(f.Keys, c)
	}
	slices.SortFunc(f.Keys, func(a, b Credentials) int { return strings.Compare(a.AccessKeyID, b.AccessKeyID) })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode access keys: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(k.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already asks for 0600; Chmod makes it exact whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save access keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return fmt.Errorf("save access keys: %w", err)
	}
	done = true
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("save access keys: sync %s: %w", dir, err)
		}
	}
	return nil
}

// newAccessKeyID returns "AKIA" and 16 characters of base32 (A-Z, 2-7), the shape of an AWS
// long-term access key ID, so tools that check the shape accept it.
func newAccessKeyID() (string, error) {
	var b [10]byte // 80 bits: 16 base32 characters, no padding
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "AKIA" + base32.StdEncoding.EncodeToString(b[:]), nil
}

// newSecret returns 40 characters of base64 (A-Z a-z 0-9 + /), the shape and 240 bits of
// entropy of an AWS secret access key.
func newSecret() (string, error) {
	var b [30]byte // 30 bytes: exactly 40 base64 characters, no padding
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}
