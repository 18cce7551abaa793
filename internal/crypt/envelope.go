package crypt

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// envelopeVersion is the format Seal writes: AES-256-GCM data key wrapped by AES-256-GCM.
const envelopeVersion = 1

// Envelope is a sealed value as stored: the ciphertext under a one-off data key, and that data
// key wrapped by master key KeyID. It holds no plaintext and may be stored and logged freely.
type Envelope struct {
	Version    int    `json:"v"`
	KeyID      string `json:"kid"`         // master key that wrapped the data key
	WrapNonce  []byte `json:"wrap_nonce"`  // GCM nonce of the wrapping
	WrappedKey []byte `json:"wrapped_key"` // the data key sealed under the master key
	Nonce      []byte `json:"nonce"`       // GCM nonce of the value
	Ciphertext []byte `json:"ciphertext"`  // the value sealed under the data key, with its tag
}

// IsZero reports whether e is the zero Envelope (nothing was sealed).
func (e Envelope) IsZero() bool { return e.KeyID == "" && e.Ciphertext == nil }

// Domain separation for GCM's additional data: a wrapped key never opens as a value, and the
// wrapping is bound to the master key id written beside it.
func wrapAAD(keyID string) []byte { return []byte("flint/crypt/v1 data key\x00" + keyID) }

func valueAAD(aad []byte) []byte {
	return append([]byte("flint/crypt/v1 value\x00"), aad...)
}

// Seal encrypts plaintext under a fresh data key wrapped by the active master key. aad (the ARN
// of the record the value belongs to) must be given again to Open: an envelope copied to
// another record does not open there.
func (k *Keyring) Seal(plaintext, aad []byte) (Envelope, error) {
	mk := k.activeKey()
	dk := make([]byte, KeySize)
	defer clear(dk)
	if _, err := io.ReadFull(rand.Reader, dk); err != nil {
		return Envelope{}, fmt.Errorf("seal: generate data key: %w", err)
	}
	e := Envelope{Version: envelopeVersion, KeyID: mk.id}
	var err error
	if e.WrapNonce, err = nonce(mk.aead.NonceSize()); err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	e.WrappedKey = mk.aead.Seal(nil, e.WrapNonce, dk, wrapAAD(mk.id))
	aead, err := newGCM(dk)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	if e.Nonce, err = nonce(aead.NonceSize()); err != nil {
		return Envelope{}, fmt.Errorf("seal: %w", err)
	}
	e.Ciphertext = aead.Seal(nil, e.Nonce, plaintext, valueAAD(aad))
	return e, nil
}

// Open decrypts e, which must have been sealed with the same aad. It fails with ErrUnknownKey
// when its master key is not in the ring and ErrDecrypt when it was altered or moved.
func (k *Keyring) Open(e Envelope, aad []byte) ([]byte, error) {
	dk, err := k.unwrap(e)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	defer clear(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	if len(e.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("open envelope: malformed nonce: %w", ErrDecrypt)
	}
	pt, err := aead.Open(nil, e.Nonce, e.Ciphertext, valueAAD(aad))
	if err != nil {
		// GCM's own error says nothing more; ErrDecrypt is what callers branch on.
		return nil, fmt.Errorf("open envelope (master key %s): value: %w", e.KeyID, ErrDecrypt)
	}
	return pt, nil
}

// unwrap returns e's data key; the caller clears it.
func (k *Keyring) unwrap(e Envelope) ([]byte, error) {
	if e.Version != envelopeVersion {
		return nil, fmt.Errorf("unsupported envelope version %d", e.Version)
	}
	mk, err := k.key(e.KeyID)
	if err != nil {
		return nil, err
	}
	if len(e.WrapNonce) != mk.aead.NonceSize() {
		return nil, fmt.Errorf("master key %s: malformed wrap nonce: %w", e.KeyID, ErrDecrypt)
	}
	dk, err := mk.aead.Open(nil, e.WrapNonce, e.WrappedKey, wrapAAD(e.KeyID))
	if err != nil {
		return nil, fmt.Errorf("master key %s: data key: %w", e.KeyID, ErrDecrypt)
	}
	if len(dk) != KeySize {
		clear(dk)
		return nil, fmt.Errorf("master key %s: data key is %d bytes: %w", e.KeyID, len(dk), ErrDecrypt)
	}
	return dk, nil
}

// Rewrap re-wraps e's data key under the active master key, leaving its ciphertext as it is;
// changed is false when e is already under the active key. It checks the wrapping, not the
// value (it has no aad): a record rewrapped by mistake under the wrong aad still fails to Open.
func (k *Keyring) Rewrap(e Envelope) (Envelope, bool, error) {
	mk := k.activeKey()
	if e.KeyID == mk.id {
		return e, false, nil
	}
	dk, err := k.unwrap(e)
	if err != nil {
		return Envelope{}, false, fmt.Errorf("rewrap envelope: %w", err)
	}
	defer clear(dk)
	out := e
	out.KeyID = mk.id
	if out.WrapNonce, err = nonce(mk.aead.NonceSize()); err != nil {
		return Envelope{}, false, fmt.Errorf("rewrap envelope: %w", err)
	}
	out.WrappedKey = mk.aead.Seal(nil, out.WrapNonce, dk, wrapAAD(mk.id))
	return out, true, nil
}

// SealMap seals a map (a function's environment variables) as its JSON.
func (k *Keyring) SealMap(m map[string]string, aad []byte) (Envelope, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal map: %w", err)
	}
	defer clear(b)
	return k.Seal(b, aad)
}

// OpenMap opens an envelope made by SealMap.
func (k *Keyring) OpenMap(e Envelope, aad []byte) (map[string]string, error) {
	b, err := k.Open(e, aad)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		// json's syntax errors quote no input, but say only what failed, to be sure.
		return nil, errors.New("open map: sealed value is not a JSON object of strings")
	}
	return m, nil
}

func nonce(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	return b, nil
}
