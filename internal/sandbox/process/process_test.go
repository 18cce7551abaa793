package process_test

import (
	"testing"

	"github.com/flint-run/flint/internal/sandbox/process"
	"github.com/flint-run/flint/internal/sandbox/sandboxtest"
)

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, process.New("127.0.0.1"))
}
