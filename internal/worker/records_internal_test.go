package worker

import "testing"

// TestOutcomeLabels pins the words outcomes are written as: the Observer's outcome label (a
// metrics label) and REPORT's Status, the same strings as before outcomes were typed.
func TestOutcomeLabels(t *testing.T) {
	for _, tc := range []struct {
		o             outcome
		label, status string
	}{
		{outcomeSuccess, "success", ""},
		{outcomeError, "error", "error"},
		{outcomeTimeout, "timeout", "timeout"},
		{outcomeAborted, "error", "error"},
		{outcomeNotDelivered, "not delivered", "not delivered"},
		{outcome(200), "unknown", "unknown"},
	} {
		if got := tc.o.String(); got != tc.label {
			t.Errorf("outcome(%d).String() = %q, want %q", tc.o, got, tc.label)
		}
		if got := tc.o.reportStatus(); got != tc.status {
			t.Errorf("outcome(%d).reportStatus() = %q, want %q", tc.o, got, tc.status)
		}
	}
}
