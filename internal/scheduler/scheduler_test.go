package scheduler

import (
	"testing"
	"time"
)

func TestContextAttributes(t *testing.T) {
	occ := time.Date(2026, 3, 22, 18, 59, 43, 500e6, time.FixedZone("x", 3600))
	arn := "arn:aws:scheduler:us-east-1:000000000000:schedule/default/s"
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{`{"t":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>","arn":"<aws.scheduler.schedule-arn>","n":<aws.scheduler.attempt-number>}`,
			`{"t":"2026-03-22T17:59:43Z","id":"ID","arn":"` + arn + `","n":1}`},
		{`<aws.scheduler.unknown>`, `<aws.scheduler.unknown>`},
	}
	for _, tt := range tests {
		if got := ContextAttributes(tt.in, arn, occ, "ID"); got != tt.want {
			t.Errorf("ContextAttributes(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
