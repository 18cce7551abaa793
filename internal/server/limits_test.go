package server_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/config"
	"github.com/flint-run/flint/internal/server"
)

// startSharing starts a server whose limits are kept in the cluster's concurrency ledger, as
// a node that joined a cluster does.
func startSharing(t testing.TB, node string, mutate func(*config.Config)) *server.Server {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Sandbox = "process"
	cfg.CgroupParent = "flint-test-" + filepath.Base(dir)
	mutate(&cfg)
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	s.ShareLimits(node)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSharedLimits: a node sharing its limits through the ledger enforces reserved and account
// concurrency through the real API as a single node does, and counts the slots another node
// leases: with another node holding one of 2 slots, 1 of 2 overlapping invokes is throttled;
// holding both, every invoke is, with Lambda's reason.
func TestSharedLimits(t *testing.T) {
	for _, tt := range []struct {
		name     string
		account  int
		reserved int32 // 0: none
		key      string
		reason   types.ThrottleReason
	}{
		{name: "reserved", account: 1000, reserved: 2, key: "function.fn", reason: types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded},
		{name: "account", account: 2, key: "account", reason: types.ThrottleReasonConcurrentInvocationLimitExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startSharing(t, "n1", func(c *config.Config) { c.AccountConcurrency = tt.account })
			c := newClient(s.URL())
			ctx := context.Background()
			createFunction(t, c, "fn", "provided.al2023", "bootstrap", goEchoZip)
			if tt.reserved > 0 {
				if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"),
					ReservedConcurrentExecutions: aws.Int32(tt.reserved)}); err != nil {
					t.Fatal(err)
				}
			}
			if throttled := concurrentInvokes(t, c, "fn", 3); throttled != 1 {
				t.Errorf("%d of 3 overlapping invokes throttled with a limit of 2, want 1", throttled)
			}

			// Another node of the cluster, on the same ledger.
			recs, err := server.LeaseRecords(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			other := cluster.NewLedger(cluster.LedgerConfig{Node: "n2", Records: recs})
			// take waits until n1 has given back the slots it stopped using (1–2 s).
			take := func() {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					err := other.Slots(tt.key).Take(ctx, 2)
					if err == nil {
						return
					}
					if !errors.Is(err, cluster.ErrLimit) || time.Now().After(deadline) {
						t.Fatalf("n2 taking a slot of %s: %v", tt.key, err)
					}
				}
			}
			take()
			if throttled := concurrentInvokes(t, c, "fn", 2); throttled != 1 {
				t.Errorf("%d of 2 overlapping invokes throttled with n2 holding 1 of 2 slots, want 1", throttled)
			}
			take()
			_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{}`)})
			var tm *types.TooManyRequestsException
			if !errors.As(err, &tm) || tm.Reason != tt.reason {
				t.Errorf("invoke with n2 holding both slots: %v, want TooManyRequestsException %s", err, tt.reason)
			}
		})
	}
}

// BenchmarkWarmInvokeShared is BenchmarkWarmInvoke/process on a node sharing its limits
// through the ledger: warm invokes admitted on slots the node holds (the first one leases it).
func BenchmarkWarmInvokeShared(b *testing.B) {
	s := startSharing(b, "n1", func(c *config.Config) { c.MemoryBudgetMB = 1 << 20 })
	createFunction(b, newClient(s.URL()), "echo", "provided.al2023", "bootstrap", goEchoZip,
		func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(1769) })
	url := s.URL() + "/2015-03-31/functions/echo/invocations"
	for _, c := range []int{1, 16} {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) { load(b, url, c) })
	}
}
