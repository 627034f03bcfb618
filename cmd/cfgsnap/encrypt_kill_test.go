package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/bigconfig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestKillDuringEncryptedSave kills cfgsnap while it encrypts a 64 MiB
// snapshot to a file target: never a partial file under NAME.age, the
// snapshot stays spooled, and a flush then stores it whole, decrypting to
// the configuration.
func TestKillDuringEncryptedSave(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and writes 64 MiB several times")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(testenv.NeedCommand(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "running.json")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, bigconfig.New(t, 64<<20, "leaf1")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	config, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	backups := filepath.Join(dir, "backups")
	opts := filepath.Join(dir, "options.json")
	b, _ := json.Marshal(map[string]any{"source": "file:" + src, "sr-cli": "/nonexistent", "netns": "none",
		"spool-dir": filepath.Join(dir, "spool"), "spool-max-bytes": "256MiB", "target": "file://" + backups, "encrypt-to": strings.TrimSpace(string(pub))})
	write(t, opts, b, 0o600)

	partShows := func() bool {
		for _, f := range files(t, backups) {
			if _, ok := finalOf(f); ok {
				return true
			}
		}
		return false
	}
	for i, frac := range []float64{0.3, 0.7} {
		cmd := "snapshot"
		if i > 0 {
			cmd = "flush"
		}
		killed, took := killDuring(t, bin, []string{cmd, "--options", opts}, partShows, int64(frac*float64(len(config))), nil)
		t.Logf("%s killed=%v after %v", cmd, killed, took.Round(time.Millisecond))
		if i == 0 && !killed {
			t.Fatal("the snapshot finished before it could be killed")
		}
		t.Logf("after the kill the target holds %q", files(t, backups))
		if i == 0 && !partShows() {
			t.Fatal("killed, but not during the save: no temporary file on the target")
		}
		for _, f := range files(t, backups) {
			if _, temp := finalOf(f); temp {
				continue
			}
			if !strings.HasSuffix(f, ".json.age") {
				t.Errorf("after the kill the target holds %s, neither NAME.age nor its temporary", f)
				continue
			}
			if got := decrypt(t, key, filepath.Join(backups, f)); !bytes.Equal(got, config) {
				t.Fatalf("after the kill %s holds %d bytes that are not the configuration: a partial file under the final name", f, len(got))
			}
		}
	}
	out, err := exec.Command(bin, "flush", "--options", opts).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "; 0 pending") {
		t.Fatalf("final flush: %v: %s", err, out)
	}
	stored := files(t, backups)
	if len(stored) != 1 || !strings.HasSuffix(stored[0], ".json.age") {
		t.Fatalf("after the final flush the target holds %q; want one NAME.age, no temporary", stored)
	}
	if got := decrypt(t, key, filepath.Join(backups, stored[0])); !bytes.Equal(got, config) {
		t.Errorf("the stored snapshot decrypts to %d bytes that are not the configuration", len(got))
	}
	if _, err := os.Stat(filepath.Join(backups, strings.TrimSuffix(stored[0], ".age"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the snapshot is also in the clear: %v", err)
	}
}

// decrypt runs the real age CLI on file with the private key file key.
func decrypt(t *testing.T, key, file string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.NeedCommand(t, "age"), "-d", "-i", key, file).Output()
	if err != nil {
		t.Fatalf("age -d -i %s %s: %v", key, file, err)
	}
	return out
}
