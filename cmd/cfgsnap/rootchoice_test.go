package main_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestEventCannotChooseWhatRootRuns replays the reproductions against
// the real binary, run as root as the event handler runs it (sudo): options in
// the event that would make root run another user's program, write through
// another user's links, or read a root-only file and ship it are refused with
// exit 2 before anything is queued, and nothing is run, written or shipped.
func TestEventCannotChooseWhatRootRuns(t *testing.T) {
	testenv.NeedRoot(t)
	bin := buildBinary(t)
	root := t.TempDir()
	out := filepath.Join(root, "backups")
	spool := filepath.Join(root, "spool")

	// Another user's folder, program and spool, with links planted at the
	// names root would write.
	theirs := filepath.Join(root, "x")
	testenv.MkdirAs(t, theirs, 0o755, testenv.Nobody)
	canary := filepath.Join(root, "ran-as-root")
	evil := filepath.Join(theirs, "evil.sh")
	testenv.WriteFileAs(t, evil, "#!/bin/sh\ntouch "+canary+"\necho '{}'\n", 0o755, testenv.Nobody)
	victim := filepath.Join(root, "victim")
	testenv.WriteFileAs(t, victim, `{"secret": "root only"}`+"\n", 0o600, 0)
	theirSpool := filepath.Join(theirs, "spool")
	testenv.MkdirAs(t, theirSpool, 0o755, testenv.Nobody)
	for _, name := range []string{"lock", "worker.log", "status", "pending"} {
		if err := os.Symlink(victim, filepath.Join(theirSpool, name)); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		what string
		opts map[string]any
		says string
	}{
		{"a program of another user's as sr-cli", map[string]any{"sr-cli": evil}, "owned by uid 65534"},
		{"a spool of another user's, links planted", map[string]any{"spool-dir": theirSpool}, "owned by uid 65534"},
		{"a root-only file as the source", map[string]any{"source": "file:" + victim}, "SR Linux's own configuration files"},
		{"a root-only file as a password", map[string]any{"target": "https://git.example/x.git", "git-password-file": victim}, "only files in cfgsnap's folder"},
		{"a program as the script's binary", map[string]any{"binary": evil}, "BINARY at the top of cfgsnap.py"},
		{"the JSON-RPC password to another host", map[string]any{"source": "jsonrpc", "jsonrpc-url": "https://198.51.100.7/jsonrpc"}, "only at this switch"},
	} {
		t.Run(c.what, func(t *testing.T) {
			opts := map[string]any{"target": "file://" + out, "netns": "none", "spool-dir": spool, "sudo": "false"}
			for k, v := range c.opts {
				opts[k] = v
			}
			ev, _ := json.Marshal(map[string]any{
				"paths":   []any{map[string]any{"path": "system configuration last-change", "value": time.Now().UTC().Format(srlTime)}},
				"options": opts,
			})
			cmd := exec.Command(bin, "handle", hex.EncodeToString(ev))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), c.says) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("handle: %v, stdout %q, stderr %q; want exit 2 and one line saying %q", err, stdout.String(), stderr.String(), c.says)
			}
		})
	}
	// Give a worker, had one started, the time to do harm.
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("another user's program ran as root")
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != `{"secret": "root only"}`+"\n" {
		t.Errorf("the root-only victim file changed: %q, %v", b, err)
	}
	if st, err := os.Stat(victim); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the victim's mode changed: %v", err)
	}
	if got := files(t, out); len(got) != 0 {
		t.Errorf("the target received %q; nothing may be shipped", got)
	}
	if jobs, _ := filepath.Glob(filepath.Join(spool, "jobs", "*")); len(jobs) != 0 {
		t.Errorf("events were queued: %q", jobs)
	}
}
