package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Put stores a code package under key (its hex SHA-256) unless it is already there.
func (r Code) Put(ctx context.Context, key string, zip []byte) error {
	// A write: refused before its first read when this node lost the quorum.
	if err := r.s.refuse(); err != nil {
		return err
	}
	if _, err := r.s.code.GetInfo(ctx, key); err == nil {
		return nil
	}
	if _, err := r.s.code.PutBytes(ctx, key, zip); err != nil {
		return fmt.Errorf("store code %s: %w", key, err)
	}
	return nil
}

// Get returns the code package stored under key.
func (r Code) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.s.code.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get code %s: %w", key, err)
	}
	return b, nil
}

// Delete removes a code package.
func (r Code) Delete(ctx context.Context, key string) error {
	if err := r.s.code.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete code %s: %w", key, err)
	}
	return nil
}

// StoredCode is one code package in the object store.
type StoredCode struct {
	Key     string
	ModTime time.Time
}

// codeListTimeout bounds one listing of the code bucket, and codeListAttempts how many are made:
// nats.go's object-store listing was seen to wait for the end of its watch forever on a loaded
// machine (a test hung 16 minutes in it, another until its 30 s context ended), and a new
// listing then answers at once.
const (
	codeListTimeout  = 15 * time.Second
	codeListAttempts = 3
)

// List returns every stored code package (its key and when it was stored).
func (r Code) List(ctx context.Context) ([]StoredCode, error) {
	var infos []*jetstream.ObjectInfo
	var err error
	for range codeListAttempts {
		lctx, cancel := context.WithTimeout(ctx, codeListTimeout)
		infos, err = r.s.code.List(lctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			break
		}
	}
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list code: %w", err)
	}
	out := make([]StoredCode, 0, len(infos))
	for _, in := range infos {
		if !in.Deleted {
			out = append(out, StoredCode{Key: in.Name, ModTime: in.ModTime})
		}
	}
	return out, nil
}
