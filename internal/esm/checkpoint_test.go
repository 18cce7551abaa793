package esm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// TestCheckpointFenced: two readers of one mapping (a node that took it over, and the node it
// took it from, late): a checkpoint is saved by compare-and-set on the revision its reader
// loaded, so the late reader's save is refused and ends its read (errCheckpointMoved) instead
// of moving the mapping's position back, and a reader loading again starts from the newer one.
func TestCheckpointFenced(t *testing.T) {
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Keyring: keys, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	m := New(Config{JS: st.JetStream(), Checkpoints: st.Checkpoints()})
	if _, err := st.Checkpoints().Put(ctx, "m1", mustJSON(checkpoint{Start: 1})); err != nil {
		t.Fatal(err)
	}
	reader := func() (*streamPoller, *error) {
		p := &streamPoller{m: m, id: "m1", log: slog.New(slog.DiscardHandler),
			es: lambda.EventSourceMapping{ParallelizationFactor: 2, StartingPosition: "TRIM_HORIZON"}}
		if err := p.loadCheckpoint(ctx, nil); err != nil {
			t.Fatal(err)
		}
		cause := new(error)
		p.abort = func(err error) { *cause = err }
		return p, cause
	}
	stored := func() checkpoint {
		doc, _, err := st.Checkpoints().Get(ctx, "m1")
		if err != nil {
			t.Fatal(err)
		}
		var cp checkpoint
		if err := json.Unmarshal(doc, &cp); err != nil {
			t.Fatal(err)
		}
		return cp
	}

	late, lateCause := reader()
	owner, ownerCause := reader()
	owner.done(ctx, &lane{idx: 0}, 20)
	owner.done(ctx, &lane{idx: 1}, 25)
	if *ownerCause != nil {
		t.Fatalf("the owner's saves ended its read: %v", *ownerCause)
	}
	late.done(ctx, &lane{idx: 0}, 10)
	if !errors.Is(*lateCause, errCheckpointMoved) {
		t.Fatalf("the late reader's save: cause %v, want errCheckpointMoved", *lateCause)
	}
	if got := stored(); got.Lanes[0] != 20 || got.Lanes[1] != 25 {
		t.Fatalf("stored checkpoint %+v; want the owner's lanes [20 25]", got)
	}
	again, _ := reader()
	if again.cp.Lanes[0] != 20 || again.cp.resume() != 21 {
		t.Fatalf("a reader loading again has %+v (resume %d); want the owner's position", again.cp, again.cp.resume())
	}
	// The owner goes on saving from its own revision.
	owner.done(ctx, &lane{idx: 0}, 30)
	if *ownerCause != nil || stored().Lanes[0] != 30 {
		t.Fatalf("the owner's next save: cause %v, stored %+v", *ownerCause, stored())
	}
}
