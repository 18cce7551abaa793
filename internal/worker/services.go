package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flint-run/flint/internal/sandbox"
)

// services returns an HTTP server, not yet serving, for each of the Manager's services on inst.
func (p *Pool) services(inst sandbox.Instance, info EnvInfo) ([]*http.Server, error) {
	if len(p.m.cfg.Services) == 0 {
		return nil, nil
	}
	errLog := slog.NewLogLogger(p.log.With("env", info.ID).Handler(), slog.LevelDebug)
	srvs := make([]*http.Server, 0, len(p.m.cfg.Services))
	for _, svc := range p.m.cfg.Services {
		if inst.Listener(svc.Port.Number) == nil {
			return nil, fmt.Errorf("the %s sandbox has no listener for port %d", p.m.cfg.Backend.Name(), svc.Port.Number)
		}
		if svc.Handler == nil {
			return nil, fmt.Errorf("service on port %d has no handler", svc.Port.Number)
		}
		srvs = append(srvs, &http.Server{
			Handler: svc.Handler(info),
			// Clients are the function's SDK calls on loopback: anything slower is stuck.
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
		})
	}
	return srvs, nil
}

// stopServices shuts the environment's service servers down once it is destroyed (its sandbox
// has closed their listeners), letting requests in flight finish for a few seconds.
func (e *env) stopServices() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range e.services {
		if err := srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			_ = srv.Close()
		}
	}
}
