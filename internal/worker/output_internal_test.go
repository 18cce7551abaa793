package worker

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCaptureExtensionSpans: output an extension sent another way (capture.write) lands after
// what the pipe held, and takeMarked says where, also once the buffer dropped its oldest half.
func TestCaptureExtensionSpans(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCapture(r)
	if err != nil {
		t.Fatal(err)
	}
	go c.run()
	defer func() { w.Close(); c.close() }()

	_, _ = w.WriteString("fn 1\n")
	c.write([]byte("ext 1\n"))
	_, _ = w.WriteString("fn 2\n")
	out, ext := c.takeMarked()
	if got, want := string(out), "fn 1\next 1\nfn 2\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if diff := cmp.Diff([][2]int{{5, 11}}, ext); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
	if out, ext := c.takeMarked(); out != nil || ext != nil {
		t.Errorf("second take = %q %v, want nothing", out, ext)
	}

	// Past maxOutput the oldest half goes; the spans move with what stays.
	big := strings.Repeat("x", maxOutput/2) + "\n"
	c.write([]byte("ext 2\n"))
	c.write([]byte(big))
	c.write([]byte(big))
	out, ext = c.takeMarked()
	for _, sp := range ext {
		if sp[0] < 0 || sp[1] > len(out) || sp[0] >= sp[1] {
			t.Fatalf("span %v outside the output's %d bytes", sp, len(out))
		}
	}
	if n := len(ext); n == 0 || string(out[ext[n-1][0]:ext[n-1][1]]) != big {
		t.Errorf("the last span is not the last write: %v", ext)
	}
}
