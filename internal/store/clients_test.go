package store_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/store"
)

func openStore(t *testing.T, opts store.Options) (*store.Store, error) {
	t.Helper()
	keys, err := crypt.LoadKeyring(filepath.Join(t.TempDir(), "master.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir, opts.Keyring, opts.Log = t.TempDir(), keys, slog.New(slog.DiscardHandler)
	s, err := store.Open(context.Background(), opts)
	if err == nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

// TestOutsideNATSNeedsAToken: a store opened to outside clients without a token is refused.
func TestOutsideNATSNeedsAToken(t *testing.T) {
	if _, err := openStore(t, store.Options{Listen: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Open without a token = %v", err)
	}
}

// TestOutsideNATSStreams classifies streams for outside clients by name and subjects, at the
// time of each request: an event source's or destination's stream is readable, a queue only
// described, anything else (Flint's names, other subjects, no subjects) not theirs; requests
// outside the readers' set find no responder at all.
func TestOutsideNATSStreams(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s, err := openStore(t, store.Options{Listen: "127.0.0.1:0", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	internal := s.JetStream()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "dest", Subjects: []string{"flint.destinations.dest"}},
		{Name: "both", Subjects: []string{"flint.destinations.both", "flint.streams.both.>"}},
		{Name: "jobs", Subjects: []string{"flint.queues.jobs"}, Retention: jetstream.WorkQueuePolicy},
		{Name: "sneaky", Subjects: []string{"flint.destinations.sneaky", "flint.async.>"}},
		{Name: "FLINT_X", Subjects: []string{"flint.destinations.x"}},
		{Name: "mirror", Mirror: &jetstream.StreamSource{Name: "dest"}},
	} {
		if _, err := internal.CreateStream(ctx, cfg); err != nil {
			t.Fatalf("%s: %v", cfg.Name, err)
		}
	}
	if _, err := internal.Publish(ctx, "flint.destinations.dest", []byte("record")); err != nil {
		t.Fatal(err)
	}

	url := strings.Replace(s.ClientURL(), "0.0.0.0", "127.0.0.1", 1)
	nc, err := nats.Connect(url, nats.Token("tok"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(err error) bool { return err != nil && strings.Contains(err.Error(), "not open to NATS clients") }
	for _, tc := range []struct {
		stream         string
		info, consumer bool
	}{
		{"dest", true, true},
		{"both", true, true},
		{"jobs", true, false},
		{"sneaky", false, false},
		{"FLINT_X", false, false},
		{"mirror", false, false},
		{"KV_flint_functions", false, false},
		{"OBJ_flint_code", false, false},
	} {
		_, err := js.Stream(ctx, tc.stream)
		if tc.info && err != nil || !tc.info && !refused(err) {
			t.Errorf("info %s: %v, want allowed %v", tc.stream, err, tc.info)
		}
		_, err = js.OrderedConsumer(ctx, tc.stream, jetstream.OrderedConsumerConfig{})
		if tc.consumer && err != nil || !tc.consumer && !refused(err) {
			t.Errorf("consumer on %s: %v, want allowed %v", tc.stream, err, tc.consumer)
		}
	}
	// A stream that does not exist yet is JetStream's to answer: a reader waiting for a
	// destination sees "not found".
	if _, err := js.Stream(ctx, "later"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("info of a missing stream: %v", err)
	}
	// Reading works end to end: a pull consumer fetches and acknowledges.
	cons, err := js.CreateOrUpdateConsumer(ctx, "dest", jetstream.ConsumerConfig{Durable: "r", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil || string(msg.Data()) != "record" {
		t.Fatalf("next: %v", err)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Errorf("ack: %v", err)
	}
	// Administration finds no responder in the clients' account.
	short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
	defer cancelShort()
	if err := js.DeleteStream(short, "dest"); err == nil {
		t.Error("an outside client deleted a stream")
	}
	if _, err := js.AccountInfo(short); err == nil {
		t.Error("an outside client read the account's JetStream info")
	}
	if _, err := internal.Stream(ctx, "dest"); err != nil {
		t.Errorf("dest after the attempts: %v", err)
	}
}
