package git_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/sshsig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestSignedCommits: with option sign-key, git itself, given the switch's
// public key in an allowed-signers file, shows every commit cfgsnap made as
// a good signature by leaf1@cfgsnap, and a commit whose message was changed
// afterwards as a bad one.
func TestSignedCommits(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, r := p.open(t)
			dir := t.TempDir()
			c.SignKey = filepath.Join(dir, "sign.key")
			testenv.NeedCommand(t, "ssh-keygen")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "leaf1@cfgsnap", "-f", c.SignKey).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v: %s", err, out)
			}
			s, err := sshsig.Load(c.SignKey)
			if err != nil {
				t.Fatal(err)
			}
			allowed := filepath.Join(dir, "allowed_signers")
			os.WriteFile(allowed, []byte("leaf1@cfgsnap "+s.AuthorizedKey()+"\n"), 0o600)
			verifying := []string{"-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile=" + allowed}

			d := newDest(t, target, c, (&dialer{}).dial, t.Logf)
			v1 := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
			save(t, d, record(v1), v1)
			v2 := []byte(strings.Replace(string(v1), `"admin-state": "enable"`, `"admin-state": "disable"`, 1))
			rec := record(v2)
			rec.LastChange = lastChange.Add(time.Hour)
			save(t, d, rec, v2)

			// %G? is G for a good signature by an allowed signer, %GS the signer.
			got := r.git(append(verifying, "log", "--format=%G? %GS", "main")...)
			if got != "G leaf1@cfgsnap\nG leaf1@cfgsnap\n" {
				t.Errorf("git log's signature status of the two commits:\n%s\nwant G leaf1@cfgsnap for each", got)
			}
			if shown := r.git(append(verifying, "log", "-1", "--show-signature", "main")...); !strings.Contains(shown, `Good "git" signature for leaf1@cfgsnap with ED25519 key`) {
				t.Errorf("git log --show-signature:\n%s", shown)
			}
			r.fsck()

			// The same commit, signature and all, with one word of its message
			// changed, as someone rewriting history would.
			raw := r.git("cat-file", "commit", "main")
			forged := strings.Replace(raw, "enable e1-1", "enable e1-2", 1)
			if forged == raw {
				t.Fatal("the commit message has no comment to change")
			}
			h := strings.TrimSpace(run(t, forged, "git", "--git-dir="+r.dir, "hash-object", "-t", "commit", "-w", "--stdin"))
			if got := r.git(append(verifying, "log", "-1", "--format=%G?", h)...); got != "B\n" {
				t.Errorf("the changed commit's signature status %q, want B (bad)", got)
			}
			verify := gitCmd(append([]string{"--git-dir=" + r.dir}, append(verifying, "verify-commit", h)...)...)
			if out, err := verify.CombinedOutput(); err == nil {
				t.Errorf("git verify-commit accepted the changed commit:\n%s", out)
			}
		})
	}
}
