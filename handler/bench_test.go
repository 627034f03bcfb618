package handler_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// BenchmarkHandle is what run-script waits for, minus process start-up: decode
// and check the event, queue it durably (fsync) and report. The goal is well
// under 100 ms; run-script gives up at about 10 s.
func BenchmarkHandle(b *testing.B) {
	// As a test's switch: its stand-in sr_cli, a spool still to make.
	s := &sw{t: b, dir: b.TempDir(), out: b.TempDir(), spool: filepath.Join(b.TempDir(), "spool")}
	stand, err := os.ReadFile("../lab/sim/sr_cli")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "sr_cli"), stand, 0o755); err != nil {
		b.Fatal(err)
	}
	raw := s.event(time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC), nil)
	env := handler.Env{Worker: func(*option.Config, []string) error { return nil }}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handler.Handle(b.Context(), raw, option.New(), env); err != nil {
			b.Fatal(err)
		}
	}
}
