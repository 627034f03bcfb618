package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// sshKey makes an ed25519 key pair with the real ssh-keygen and returns the
// private key file and the public key line.
func sshKey(t *testing.T, dir string) (key, pub string) {
	t.Helper()
	key = filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(testenv.NeedCommand(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "alice@netops", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(b))
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ageDecrypt runs the real age CLI on file with the private key file key.
func ageDecrypt(t *testing.T, key, file string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(testenv.NeedCommand(t, "age"), "-d", "-i", key, file)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("age -d -i %s %s: %v: %s", key, file, err, errb.String())
	}
	return out.Bytes()
}

// TestEncryptToRefusedAtHandle: recipients that age cannot use, and targets
// that would get the configuration in the clear, are refused by handle in
// one line with exit 2, before anything is queued: from flags (root's) and
// from the instance's options alike.
func TestEncryptToRefusedAtHandle(t *testing.T) {
	spool := t.TempDir()
	_, pub := sshKey(t, t.TempDir())
	privateInSpool := filepath.Join(spool, "team.recipients")
	key, _ := sshKey(t, spool)
	if b, err := os.ReadFile(key); err != nil || os.WriteFile(privateInSpool, b, 0o600) != nil {
		t.Fatal("copying the private key", err)
	}
	ecdsa := filepath.Join(t.TempDir(), "id_ecdsa")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	ecdsaPub, err := os.ReadFile(ecdsa + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "team.recipients")
	writeFile(t, outside, []byte(pub+"\n"))
	event := eventWith
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"bad key by flag", []string{"--target=file:///srv/srl", "--encrypt-to=age1notakey", event(nil)}, "not an age recipient"},
		{"ecdsa key from the instance", []string{event(map[string]any{"target": "file:///srv/srl", "encrypt-to": []string{pub, strings.TrimSpace(string(ecdsaPub))}})}, "age encrypts only to ssh-ed25519 and ssh-rsa keys"},
		{"git target", []string{event(map[string]any{"target": []string{"file:///srv/srl", "git@git.example.net:netops/configs.git"}, "encrypt-to": pub})}, "diffs and blame"},
		{"webhook with the configuration", []string{"--webhook-include-config", event(map[string]any{"target": "https://hooks.example.net/cfgsnap", "encrypt-to": pub})}, "drop webhook-include-config"},
		{"file outside cfgsnap's folder from the instance", []string{event(map[string]any{"target": "file:///srv/srl", "encrypt-to": outside})}, "only files in cfgsnap's folder"},
		{"private key in a file", []string{"--target=file:///srv/srl", "--encrypt-to=" + privateInSpool, event(nil)}, "line 1: a private key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, code, line := cli(t, append([]string{"handle", "--spool-dir=" + spool}, c.args...)...)
			if code != fail.Usage || !strings.Contains(line, c.says) || strings.Contains(line, "PRIVATE") || len(line) > 600 {
				t.Errorf("exit %d %q; want exit 2 in one line saying %q", code, line, c.says)
			}
			if jobs, _ := os.ReadDir(filepath.Join(spool, "jobs")); len(jobs) != 0 {
				t.Errorf("the refused event was queued: %v", jobs)
			}
		})
	}
}

// TestEncryptedSnapshot: a snapshot to a file target with encrypt-to lands as
// NAME.age only, which the real age CLI decrypts with the SSH key of one
// recipient and the age key of another (from root's file of recipients) to
// the configuration, byte for byte; the webhook beside it gets the record
// with the plaintext's size and sha256 and where the .age file is, and not
// the configuration.
func TestEncryptedSnapshot(t *testing.T) {
	dir := t.TempDir()
	sshPriv, sshPub := sshKey(t, dir)
	ageKey := filepath.Join(dir, "bob.agekey")
	if out, err := exec.Command(testenv.NeedCommand(t, "age-keygen"), "-o", ageKey).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	agePub, err := exec.Command("age-keygen", "-y", ageKey).Output()
	if err != nil {
		t.Fatal(err)
	}
	recipients := filepath.Join(dir, "team.recipients")
	writeFile(t, recipients, append([]byte("# bob\n"), agePub...))
	secret := filepath.Join(dir, "webhook-secret")
	writeFile(t, secret, []byte("s3cret\n"))

	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
	}))
	defer hook.Close()

	config := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
	src := filepath.Join(dir, "running.json")
	writeFile(t, src, config)
	backups := filepath.Join(dir, "backups")
	out, code, line := cli(t, "snapshot", "--source=file:"+src, "--sr-cli=/nonexistent", "--netns=none", "--spool-dir="+filepath.Join(dir, "spool"),
		"--target=file://"+backups, "--target="+hook.URL+"/cfgsnap", "--webhook-secret-file="+secret,
		"--encrypt-to="+sshPub, "--encrypt-to="+recipients)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, line)
	}
	var stored, records []string
	filepath.WalkDir(backups, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(backups, p)
			if strings.HasSuffix(p, ".rec.json") {
				records = append(records, filepath.ToSlash(rel))
			} else {
				stored = append(stored, filepath.ToSlash(rel))
			}
		}
		return err
	})
	if len(stored) != 1 || !strings.HasSuffix(stored[0], ".json.age") {
		t.Fatalf("the target holds %q; want one NAME.age and nothing in the clear but its record (%s)", stored, out)
	}
	// The record stays readable, and holds the plaintext's hash, not the configuration.
	sum := sha256.Sum256(config)
	if rec, err := os.ReadFile(filepath.Join(backups, strings.TrimSuffix(stored[0], ".age")+".rec.json")); len(records) != 1 || err != nil ||
		!bytes.Contains(rec, []byte(hex.EncodeToString(sum[:]))) || bytes.Contains(rec, config[:min(len(config), 64)]) {
		t.Errorf("records %q beside %s: %v; want NAME.rec.json in the clear with the configuration's sha256, and no configuration", records, stored[0], err)
	}
	ct := filepath.Join(backups, stored[0])
	for _, key := range []string{sshPriv, ageKey} {
		if got := ageDecrypt(t, key, ct); !bytes.Equal(got, config) {
			t.Errorf("age -d -i %s: %d bytes that are not the configuration's %d", filepath.Base(key), len(got), len(config))
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("the webhook got %d posts", len(bodies))
	}
	var rec struct {
		Name, SHA256 string
		Size         int64
		Stored       []string
		Config       *string
	}
	if err := json.Unmarshal(bodies[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.SHA256 != hex.EncodeToString(sum[:]) || rec.Size != int64(len(config)) || rec.Config != nil ||
		len(rec.Stored) != 1 || rec.Stored[0] != "file://"+backups+"/"+stored[0] || rec.Name+".age" != stored[0] {
		t.Errorf("the webhook got %s; want the plaintext's sha256 and size, stored at the .age file, no config", bodies[0])
	}
}
