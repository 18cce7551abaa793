package logs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serveLogs serves s on a real HTTP server on 127.0.0.1:0 the way the API layer mounts it.
func serveLogs(t *testing.T, s *Store, writeTimeout time.Duration) (base string, client *http.Client) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flint/v1/functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		s.WriteHTTP(w, r, r.PathValue("name"))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Config.WriteTimeout = writeTimeout
	srv.Config.IdleTimeout = 30 * time.Second
	srv.Start()
	tr := &http.Transport{ResponseHeaderTimeout: waitLimit}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close() // waits for handlers, including followers, to return
	})
	return srv.URL + "/flint/v1/functions/", &http.Client{Transport: tr}
}

func TestWriteHTTP(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	for n := 1; n <= 3; n++ {
		s.Append("fn", text("fn", n))
	}
	s.Append("other", text("other", 1))
	run(t, s)()
	base, client := serveLogs(t, s, 30*time.Second)

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"all", "fn/logs", 200, strings.Join(texts("fn", 1, 2, 3), "")},
		{"tail", "fn/logs?tail=2", 200, strings.Join(texts("fn", 2, 3), "")},
		{"tail zero is all", "fn/logs?tail=0", 200, strings.Join(texts("fn", 1, 2, 3), "")},
		{"no logs", "quiet/logs", 200, ""},
		{"bad tail", "fn/logs?tail=-1", 400, "tail must be a non-negative integer\n"},
		{"bad follow", "fn/logs?follow=maybe", 400, "follow must be true or false\n"},
		{"bad name", "fn.x/logs", 400, ErrBadFunctionName.Error() + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := string(body); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
			if got, want := resp.Header.Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
		})
	}
}

func TestWriteHTTPFollow(t *testing.T) {
	js := startJetStream(t)
	s := newStore(t, js, StoreConfig{})
	run(t, s)
	for n := 1; n <= 2; n++ {
		s.Append("fn", text("fn", n))
	}
	waitStored(t, s, "fn", 2)
	// A short WriteTimeout, as the API server might set: a follow must outlive it.
	const writeTimeout = 100 * time.Millisecond
	base, client := serveLogs(t, s, writeTimeout)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"fn/logs?follow=true&tail=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}

	readRecord := func(want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("read followed record: %v", err)
		}
		if string(got) != string(want) {
			t.Errorf("followed record = %q, want %q", got, want)
		}
	}
	readRecord(text("fn", 2))    // tail=1: the newest stored record, flushed at once
	time.Sleep(3 * writeTimeout) // outlast the server's write deadline
	s.Append("other", text("other", 1))
	s.Append("fn", text("fn", 3))
	readRecord(text("fn", 3)) // a new record, flushed as it is stored

	cancel() // the client goes away; the handler must return (serveLogs' cleanup waits for it)
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("body read after cancel succeeded, want an error")
	}
}
