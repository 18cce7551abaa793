// Package crypt seals Flint's sensitive values at rest (function environment variables, Secrets
// Manager secret versions) with envelope encryption: every item gets a fresh AES-256-GCM data
// key, and that data key is stored wrapped (AES-256-GCM again) under a master key from a
// Keyring.
//
// # Threat model
//
// Flint keeps its registry in JetStream files under the data directory, and operators copy that
// directory into backups, snapshots and bug reports. Anyone who reads those files must learn
// nothing of the values: the files hold only envelopes. The master key is the one thing that
// opens them, so it must not travel with the data: in production give it in the environment
// (FLINT_MASTER_KEY, read by cmd and passed to LoadKeyring) or keep the key file on a different
// volume from the data directory and out of its backups. A key file beside the data, the
// default for a first start, still keeps values out of JetStream's files and out of backups of
// the JetStream directory alone, but not out of a backup of the whole directory.
//
// Each envelope is bound to the record it belongs to by GCM's additional data (the function or
// secret ARN, chosen by the caller), so someone who can write the store cannot move an envelope
// to another record and have Flint hand its value to the wrong function. The crypt does not
// protect against someone who can read Flint's memory or its environment: they have the master
// key.
//
// # Rotation
//
// Master keys are versioned. Rotate adds a new active key; old keys stay in the ring so old
// envelopes still open. Rewrap re-wraps an envelope's data key under the active key without
// touching its ciphertext, so every stored record can be moved to the new key while Flint runs;
// after that Retire removes the old key. Key ids are derived from the key bytes, so the same key
// has the same id whether it is read from the key file or from the environment, and moving keys
// from one to the other needs no rewrap. DerivedKeys gives keys derived from the master keys for
// secrets that must survive restarts without being stored (the download-link key).
//
// The package knows nothing of the store or HTTP; it never logs, and its errors never carry
// plaintext or key material.
package crypt
