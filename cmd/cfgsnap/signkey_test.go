package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestSignKeyRefusedAtHandle: a signing key cfgsnap cannot sign with is
// refused by handle in one line with exit 2, before anything is queued.
func TestSignKeyRefusedAtHandle(t *testing.T) {
	spool := t.TempDir()
	testenv.NeedCommand(t, "ssh-keygen")
	key := func(name string, args ...string) string {
		file := filepath.Join(spool, name)
		args = append([]string{"-q", "-t", "ed25519", "-C", "leaf1@cfgsnap", "-f", file}, args...)
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		return file
	}
	public := key("sign.key", "-N", "") + ".pub"
	locked := key("locked.key", "-N", "a passphrase")
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"missing", []string{"--sign-key=" + filepath.Join(spool, "missing.key"), eventWith(map[string]any{"target": "file:///srv/srl"})}, "missing.key"},
		{"a public key, from the instance", []string{eventWith(map[string]any{"target": "file:///srv/srl", "sign-key": public})}, "not an OpenSSH private key"},
		{"passphrase", []string{"--target=file:///srv/srl", "--sign-key=" + locked, eventWith(map[string]any{})}, "passphrase"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, code, line := cli(t, append([]string{"handle", "--spool-dir=" + spool, "--netns=none"}, c.args...)...)
			if code != fail.Usage || !strings.Contains(line, c.says) || strings.Contains(line, "PRIVATE KEY") {
				t.Errorf("exit %d %q; want exit 2 in one line saying %q", code, line, c.says)
			}
			if jobs, _ := os.ReadDir(filepath.Join(spool, "jobs")); len(jobs) != 0 {
				t.Errorf("the refused event was queued: %v", jobs)
			}
		})
	}
}
