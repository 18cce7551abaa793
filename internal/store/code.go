package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Put stores a code package under key (its hex SHA-256) unless it is already there.
func (r Code) Put(ctx context.Context, key string, zip []byte) error {
	// A write: refused before its first read when this node lost the quorum.
	if err := r.s.refuse(); err != nil {
		return err
	}
	if stored, err := r.stored(ctx, key); err == nil && stored {
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
	// nats.go gives up on a package whose chunks take over 5 s to come (a copy far behind on a
	// loaded host: TestClusterStore saw "read pipe: i/o timeout" in a CI run): read again, a
	// few times, while ctx allows.
	for try := 0; try < 3 && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil; try++ {
		b, err = r.s.code.GetBytes(ctx, key)
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) && r.s.replicas > 1 {
		// This node's copy may be behind the package's store (nats.go reads an object's
		// description by direct get, see leaderread.go): if the leader has it, this copy will.
		if stored, serr := r.stored(ctx, key); serr == nil && stored {
			for wait := 20 * time.Millisecond; errors.Is(err, jetstream.ErrObjectNotFound) && wait <= 2*time.Second; wait *= 2 {
				if err := sleep(ctx, wait); err != nil {
					return nil, fmt.Errorf("get code %s: %w", key, err)
				}
				b, err = r.s.code.GetBytes(ctx, key)
			}
		}
	}
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("code %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get code %s: %w", key, err)
	}
	return b, nil
}

// stored reports whether a code package is stored, as the object store's leader knows it on a
// replicated store (a copy behind a deletion would say a package deleted a moment ago is still
// there, and Put would skip storing it again).
func (r Code) stored(ctx context.Context, key string) (bool, error) {
	if r.s.replicas > 1 {
		m, err := lastFromLeader(ctx, r.s.nc, "$JS.API.STREAM.MSG.GET.OBJ_"+codeBucket, "$O."+codeBucket+".M."+base64.URLEncoding.EncodeToString([]byte(key)))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return false, nil
		case err == nil:
			var info jetstream.ObjectInfo
			if err := json.Unmarshal(m.Data, &info); err != nil {
				return false, fmt.Errorf("decode the description of code %s: %w", key, err)
			}
			return !info.Deleted, nil
		case !errors.Is(err, errNoLeaderAnswer):
			return false, fmt.Errorf("code %s: %w", key, err)
		}
		// No leader to ask: this node's copy answers.
	}
	_, err := r.s.code.GetInfo(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
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
