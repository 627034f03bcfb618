package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// TestRedactRefusedAtHandle: redaction without a usable key is refused by
// handle in one line with exit 2, before anything is queued.
func TestRedactRefusedAtHandle(t *testing.T) {
	spool := t.TempDir()
	short := filepath.Join(spool, "redact.key")
	writeFile(t, short, []byte("too short\n"))
	event := eventWith
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"no key file", []string{"--target=file:///srv/srl", "--redact=default", event(map[string]any{})}, "redact-key-file is not"},
		{"key too short, from the instance", []string{event(map[string]any{"target": "file:///srv/srl", "redact": "default", "redact-key-file": short})}, "fewer than 16"},
		{"key missing", []string{"--target=file:///srv/srl", "--redact=system/tls/server-profile/key", "--redact-key-file=" + filepath.Join(spool, "missing.key"), event(map[string]any{})}, "missing.key"},
		{"a list key in a path", []string{"--target=file:///srv/srl", "--redact=system/aaa/authentication/user[username=admin]/password", event(map[string]any{})}, "without list keys"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, code, line := cli(t, append([]string{"handle", "--spool-dir=" + spool}, c.args...)...)
			if code != fail.Usage || !strings.Contains(line, c.says) || strings.Contains(line, "too short") {
				t.Errorf("exit %d %q; want exit 2 in one line saying %q", code, line, c.says)
			}
			if jobs, _ := os.ReadDir(filepath.Join(spool, "jobs")); len(jobs) != 0 {
				t.Errorf("the refused event was queued: %v", jobs)
			}
		})
	}
}
