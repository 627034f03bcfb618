package sshsig_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/sshsig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// NewKey makes an ed25519 key with ssh-keygen, as a user would, and returns
// its private key file.
func newKey(t *testing.T, dir string, args ...string) string {
	t.Helper()
	testenv.NeedCommand(t, "ssh-keygen")
	file := filepath.Join(dir, "sign.key")
	args = append([]string{"-q", "-t", "ed25519", "-C", "leaf1@cfgsnap", "-f", file}, args...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return file
}

// TestVerifiedBySSHKeygen: ssh-keygen -Y verify accepts what Sign wrote, and
// refuses it for a changed message or another namespace.
func TestVerifiedBySSHKeygen(t *testing.T) {
	dir := t.TempDir()
	s, err := sshsig.Load(newKey(t, dir, "-N", ""))
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("leaf1@cfgsnap "+s.AuthorizedKey()+"\n"), 0o600)
	msg := bytes.Repeat([]byte("a line of configuration\n"), 100)
	sig, err := s.Sign("git", msg)
	if err != nil {
		t.Fatal(err)
	}
	sigFile := filepath.Join(dir, "msg.sig")
	os.WriteFile(sigFile, []byte(sig), 0o600)
	verify := func(namespace string, msg []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "leaf1@cfgsnap", "-n", namespace, "-s", sigFile)
		cmd.Stdin = bytes.NewReader(msg)
		out, err := cmd.CombinedOutput()
		t.Logf("ssh-keygen -Y verify -n %s: %s", namespace, bytes.TrimSpace(out))
		return err
	}
	if err := verify("git", msg); err != nil {
		t.Errorf("ssh-keygen refused the signature: %v", err)
	}
	if verify("git", append(msg, '.')) == nil {
		t.Error("ssh-keygen accepted the signature for a changed message")
	}
	if verify("cfgsnap", msg) == nil {
		t.Error("ssh-keygen accepted a git signature in namespace cfgsnap")
	}
	for i, line := range strings.Split(strings.TrimSuffix(sig, "\n"), "\n") {
		if len(line) > 70 {
			t.Errorf("armor line %d has %d characters, more than 70", i, len(line))
		}
	}
}

// TestBadKeys: every key cfgsnap cannot sign with is refused in one line,
// exit code 2, naming the file and what to do, without its content.
func TestBadKeys(t *testing.T) {
	dir := t.TempDir()
	locked := newKey(t, t.TempDir(), "-N", "secret phrase")
	public := filepath.Join(dir, "sign.pub")
	os.WriteFile(public, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtUGl9Kk6oUfGZ0bkXxQGNwHj8Fz0n6tZXcGx0aU3kV leaf1\n"), 0o600)
	testenv.NeedCommand(t, "ssh-keygen")
	rsa := filepath.Join(dir, "rsa.key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	for _, c := range []struct{ name, file, says string }{
		{"missing", filepath.Join(dir, "missing.key"), "does not exist"},
		{"a public key", public, "not an OpenSSH private key"},
		{"passphrase", locked, "passphrase"},
		{"rsa", rsa, "not ed25519"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := sshsig.Load(c.file)
			if fail.KindOf(err) != fail.Usage {
				t.Fatalf("Load: %v; want a usage error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, c.says) || !strings.Contains(msg, c.file) || strings.Contains(msg, "\n") || strings.Contains(msg, "AAAA") {
				t.Errorf("Load: %q; want one line naming the file and saying %q", msg, c.says)
			}
		})
	}
}
