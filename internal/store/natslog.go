package store

import (
	"context"
	"fmt"
	"log/slog"
)

// natsLog passes the embedded NATS server's own log to Flint's (the store's, marked nats=true):
// its warnings and errors (a stream's raft group without a leader, a duplicate assignment, a
// catch-up that failed) explain what Flint's parts only see as requests without an answer. Its
// notices (leader elections, the start banner) are debug.
type natsLog struct{ log *slog.Logger }

func (l natsLog) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l natsLog) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l natsLog) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l natsLog) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l natsLog) Fatalf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l natsLog) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l natsLog) Tracef(format string, v ...any)  {}
