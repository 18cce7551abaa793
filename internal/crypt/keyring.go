package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// KeySize is the length of master and data keys: AES-256.
const KeySize = 32

// Sentinels callers branch on.
var (
	// ErrUnknownKey: the envelope names a master key the ring does not hold (retired, or the
	// ring was loaded from a different key file or environment).
	ErrUnknownKey = errors.New("crypt: unknown master key")
	// ErrDecrypt: authentication failed: the envelope was altered, or it is opened with other
	// additional data than it was sealed with (copied to another record).
	ErrDecrypt = errors.New("crypt: envelope failed authentication")
	// ErrActiveKey: the active master key cannot be retired.
	ErrActiveKey = errors.New("crypt: cannot retire the active master key")
	// ErrNoKeyFile: the ring came from the environment, so there is no key file to rotate or
	// retire keys in; change the environment instead.
	ErrNoKeyFile = errors.New("crypt: master keys were given in the environment, not a key file")
)

// Keyring holds the master keys: the active one seals, every one opens. It is safe for
// concurrent use.
type Keyring struct {
	path string // the key file; "" when the keys came from the environment

	mu     sync.RWMutex
	keys   map[string]*masterKey
	order  []string // ids in key file order, oldest first
	active string
}

type masterKey struct {
	id      string
	created time.Time
	raw     []byte // kept to write the key file back on Rotate and Retire
	aead    cipher.AEAD
}

// keyFile is the JSON document of the key file.
type keyFile struct {
	Active string         `json:"active"`
	Keys   []keyFileEntry `json:"keys"`
}

type keyFileEntry struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"` // standard base64 of KeySize bytes
	Created time.Time `json:"created"`
}

// LoadKeyring returns the master keys. When envValue is set (FLINT_MASTER_KEY: the base64 of a
// 32-byte key, or a comma-separated list of them whose first is active) it is used and path is
// ignored. Otherwise the key file at path is read, or created with a new key on first start
// (0600, in a 0700 directory if the directory must be made). A key file that group or others
// can read is refused: it is the one thing that opens every secret.
func LoadKeyring(path, envValue string) (*Keyring, error) {
	if strings.TrimSpace(envValue) != "" {
		return keyringFromEnv(envValue)
	}
	if path == "" {
		return nil, errors.New("master key: no key file path and no key in the environment")
	}
	k := &Keyring{path: path}
	kf, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kf, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	if err := k.install(kf); err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

func keyringFromEnv(v string) (*Keyring, error) {
	k := &Keyring{keys: map[string]*masterKey{}}
	n := 0
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n++
		raw, err := decodeKey(part)
		if err != nil {
			// The position, never the value: this message ends up in logs.
			return nil, fmt.Errorf("master key %d in the environment: %w", n, err)
		}
		mk, err := newMasterKey(raw, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("master key %d in the environment: %w", n, err)
		}
		if _, dup := k.keys[mk.id]; dup {
			continue
		}
		k.keys[mk.id] = mk
		k.order = append(k.order, mk.id)
		if k.active == "" {
			k.active = mk.id
		}
	}
	if k.active == "" {
		return nil, errors.New("master key in the environment: no key given")
	}
	return k, nil
}

// decodeKey accepts any of the usual base64 alphabets (operators paste keys from openssl, Go and
// Python alike) and insists on KeySize bytes.
func decodeKey(s string) ([]byte, error) {
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d (base64 of %d random bytes: openssl rand -base64 %d)",
			len(raw), KeySize, KeySize, KeySize)
	}
	return raw, nil
}

// keyID names a key by a hash of its bytes. A truncated SHA-256 of 256 random bits gives away
// nothing of the key, and a derived id lets the same key move between the key file and the
// environment without rewrapping, and catches a key file whose key was mangled by hand.
func keyID(raw []byte) string {
	h := sha256.New()
	h.Write([]byte("flint master key id\x00"))
	h.Write(raw)
	return "mk-" + hex.EncodeToString(h.Sum(nil)[:8])
}

func newMasterKey(raw []byte, created time.Time) (*masterKey, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	return &masterKey{id: keyID(raw), created: created, raw: raw, aead: aead}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

func randomKey() ([]byte, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return raw, nil
}

// install replaces the ring's keys with the key file's, after checking it.
func (k *Keyring) install(kf *keyFile) error {
	keys := make(map[string]*masterKey, len(kf.Keys))
	order := make([]string, 0, len(kf.Keys))
	for i, e := range kf.Keys {
		raw, err := decodeKey(e.Key)
		if err != nil {
			return fmt.Errorf("key %d (%s): %w", i+1, e.ID, err)
		}
		mk, err := newMasterKey(raw, e.Created)
		if err != nil {
			return fmt.Errorf("key %d (%s): %w", i+1, e.ID, err)
		}
		if mk.id != e.ID {
			return fmt.Errorf("key %d: id %q does not match its key (want %q): the key was altered", i+1, e.ID, mk.id)
		}
		if _, dup := keys[mk.id]; dup {
			return fmt.Errorf("key %s is listed twice", mk.id)
		}
		keys[mk.id] = mk
		order = append(order, mk.id)
	}
	if _, ok := keys[kf.Active]; !ok {
		return fmt.Errorf("active key %q is not among its keys", kf.Active)
	}
	k.mu.Lock()
	k.keys, k.order, k.active = keys, order, kf.Active
	k.mu.Unlock()
	return nil
}

// readKeyFile opens, checks and parses the key file. The mode is checked on the open file so it
// is the file that was read.
func readKeyFile(path string) (*keyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat master key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check; Flint runs on Linux, but tests may not.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is accessible by group or others (mode %04o): run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read master key file %s: %w", path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("master key file %s is not a key file: %w", path, err)
	}
	if len(kf.Keys) == 0 {
		return nil, fmt.Errorf("master key file %s holds no keys", path)
	}
	return &kf, nil
}

// createKeyFile makes the key file with one new key. The file is written in full under a
// temporary name and then hard-linked into place, which fails if the file exists: two Flints
// starting together on one directory agree on one key instead of the later overwriting the
// earlier's after it sealed something.
func createKeyFile(path string) (*keyFile, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create master key directory: %w", err)
		}
	}
	raw, err := randomKey()
	if err != nil {
		return nil, err
	}
	id := keyID(raw)
	kf := &keyFile{Active: id, Keys: []keyFileEntry{{
		ID: id, Key: base64.StdEncoding.EncodeToString(raw), Created: time.Now().UTC().Truncate(time.Second),
	}}}
	tmp, err := writeTemp(dir, kf)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return readKeyFile(path) // another process created it first: use theirs
	} else if err != nil {
		return nil, fmt.Errorf("create master key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	return kf, nil
}

// writeTemp writes kf to a new 0600 file in dir and syncs it, returning its name.
func writeTemp(dir string, kf *keyFile) (string, error) {
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode master key file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".flint-master-key-*")
	if err != nil {
		return "", fmt.Errorf("write master key file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", fmt.Errorf("write master key file: %w", err)
	}
	// CreateTemp makes 0600 files already; say so explicitly, whatever the umask or platform.
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write master key file: %w", err)
	}
	return name, nil
}

// replaceKeyFile swaps the key file for kf atomically: a crash leaves the old file or the new,
// never a torn one that would lose every key.
func replaceKeyFile(path string, kf *keyFile) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, kf)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace master key file: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync master key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync master key directory: %w", err)
	}
	return nil
}

// ActiveKeyID is the id of the master key new envelopes are sealed under.
func (k *Keyring) ActiveKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// DerivedKeys returns, for each master key, a key for purpose derived from it (HMAC-SHA256 of
// the purpose under the master key), the active key's first. They serve secrets that must be the
// same after a restart and on every node holding the same master keys, yet never be stored, such
// as the key that signs download links; a retired master key takes its derived key with it.
func (k *Keyring) DerivedKeys(purpose string) [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([][]byte, 0, len(k.order))
	derive := func(mk *masterKey) {
		m := hmac.New(sha256.New, mk.raw)
		m.Write([]byte("flint/crypt/v1 derived key\x00" + purpose))
		out = append(out, m.Sum(nil))
	}
	derive(k.keys[k.active])
	for _, id := range k.order {
		if id != k.active {
			derive(k.keys[id])
		}
	}
	return out
}

// KeyIDs lists the ring's master key ids: in key file order (oldest first), or as listed in
// the environment (active first).
func (k *Keyring) KeyIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return slices.Clone(k.order)
}

// Rotate adds a new master key to the key file and makes it active. Existing envelopes still
// open under their keys; Rewrap moves them to the new one. The key file is read again first, so
// a rotation by another process (a CLI beside the server) is kept, not overwritten.
func (k *Keyring) Rotate() (string, error) {
	if k.path == "" {
		return "", ErrNoKeyFile
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	kf, err := readKeyFile(k.path)
	if err != nil {
		return "", err
	}
	raw, err := randomKey()
	if err != nil {
		return "", err
	}
	id := keyID(raw)
	kf.Keys = append(kf.Keys, keyFileEntry{
		ID: id, Key: base64.StdEncoding.EncodeToString(raw), Created: time.Now().UTC().Truncate(time.Second),
	})
	kf.Active = id
	if err := k.commit(kf); err != nil {
		return "", err
	}
	return id, nil
}

// Retire removes an old master key from the key file once no envelope uses it (after every
// stored record was rewrapped). Envelopes still under it no longer open, so the caller must be
// sure. The active key cannot be retired.
func (k *Keyring) Retire(id string) error {
	if k.path == "" {
		return ErrNoKeyFile
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	kf, err := readKeyFile(k.path)
	if err != nil {
		return err
	}
	if id == kf.Active {
		return fmt.Errorf("retire %s: %w", id, ErrActiveKey)
	}
	i := slices.IndexFunc(kf.Keys, func(e keyFileEntry) bool { return e.ID == id })
	if i < 0 {
		return fmt.Errorf("retire %s: %w", id, ErrUnknownKey)
	}
	kf.Keys = slices.Delete(kf.Keys, i, i+1)
	return k.commit(kf)
}

// commit checks kf, writes it and installs it; k.mu is held.
func (k *Keyring) commit(kf *keyFile) error {
	next := &Keyring{}
	if err := next.install(kf); err != nil {
		return fmt.Errorf("master key file %s: %w", k.path, err)
	}
	if err := replaceKeyFile(k.path, kf); err != nil {
		return err
	}
	k.keys, k.order, k.active = next.keys, next.order, next.active
	return nil
}

// key returns the master key id, or ErrUnknownKey.
func (k *Keyring) key(id string) (*masterKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	mk, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("master key %q: %w", id, ErrUnknownKey)
	}
	return mk, nil
}

// activeKey returns the key new envelopes are sealed under.
func (k *Keyring) activeKey() *masterKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[k.active]
}
