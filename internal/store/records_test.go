package store_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/flint-run/flint/internal/store"
)

// TestRecordsPutLastWriterWins: Put replaces a document whoever else writes it meanwhile (two
// writers of one node's heartbeat key got "revision conflict" from a read-then-update).
func TestRecordsPutLastWriterWins(t *testing.T) {
	s, err := openStore(t, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				doc, _ := json.Marshal(map[string]int{"writer": w, "n": i})
				if _, err := s.Nodes().Put(ctx, "same", doc); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Put: %v", err)
	}
}
