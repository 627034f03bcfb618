package desttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// sealer encrypts as option encrypt-to has a target do (WithEncryption), to
// a key whose private half the suite holds, and reads back what it wrote.
type sealer struct {
	id *age.X25519Identity
	rs *destination.Recipients
}

func newSealer(t *testing.T, more ...string) sealer {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := destination.ReadRecipients(append([]string{id.Recipient().String()}, more...))
	if err != nil {
		t.Fatal(err)
	}
	return sealer{id: id, rs: rs}
}

// open decrypts b, the file name holds, and fails the test if it cannot.
func (s sealer) open(t testing.TB, name string, b []byte) []byte {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(b), s.id)
	var out bytes.Buffer
	if err == nil {
		_, err = out.ReadFrom(r)
	}
	if err != nil {
		t.Errorf("%s (%d bytes) does not decrypt: %v", name, len(b), err)
		return b
	}
	return out.Bytes()
}

// view is files as the user reads them: each .age file decrypted and, when
// strip is set, under the name it was saved as (without .age); every other
// file (a temporary, a file someone else put there) as it is.
func (s sealer) view(t testing.TB, files map[string][]byte, strip bool) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, b := range files {
		base, sealed := strings.CutSuffix(name, destination.EncryptedSuffix)
		if !sealed {
			out[name] = b
			continue
		}
		if strip {
			name = base
		}
		out[name] = s.open(t, name, b)
	}
	return out
}

// pruner is p with every Save encrypted, as retention sees a target with
// encrypt-to: it lists and removes through p, and finds the suffix .age
// through Unwrap.
func (s sealer) pruner(p destination.Pruner) destination.Pruner {
	return sealedPruner{Pruner: p, sealed: destination.WithEncryption(p, s.rs)}
}

type sealedPruner struct {
	destination.Pruner                         // lists and removes
	sealed             destination.Destination // saves
}

func (s sealedPruner) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	return s.sealed.Save(ctx, rec, r)
}

func (s sealedPruner) Unwrap() destination.Destination { return s.sealed }

// store is st as the user reads it: .age files decrypted, under their names.
func (s sealer) store(t *testing.T, st Store) Store {
	return Store{Files: func() map[string][]byte { return s.view(t, st.Files(), false) }, Put: st.Put}
}

// RunEncrypted runs what option encrypt-to promises at a destination that
// keeps files (file, sftp, scp, s3), with WithEncryption around each
// destination that newDest makes:
//
//   - the suite (Run) holds: every snapshot lands as NAME.age and decrypts to
//     exactly what was saved, and a failed, short or cancelled save leaves
//     nothing under any name;
//   - the real age CLI (age -d -i KEY) decrypts what was stored, byte for
//     byte, with each kind of key that may be a recipient (an SSH ed25519 or
//     RSA private key, an age key), given inline or in a file of recipients;
//     and a key that is not a recipient fails to.
func RunEncrypted(t *testing.T, newDest NewFunc) {
	ageCLI := testenv.NeedCommand(t, "age")
	k := newTeam(t)
	t.Run("Suite", func(t *testing.T) {
		s := newSealer(t, k.pub["ed25519"], k.pub["rsa"])
		Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
			d, stored := newDest(t)
			return destination.WithEncryption(d, s.rs), func() map[string][]byte { return s.view(t, stored(), true) }
		})
	})

	recipients := filepath.Join(t.TempDir(), "team.recipients")
	write(t, recipients, "# netops: who may read the switch backups\n\n"+k.pub["ed25519"]+"\n  # alice's age key\n"+k.pub["age"]+"\n"+k.pub["rsa"]+"\n")
	for _, c := range []struct {
		name    string
		to      []string
		readers []string // the keys that decrypt; the others must not
		size    int
	}{
		{"SSHEd25519", []string{k.pub["ed25519"]}, []string{"ed25519"}, 3*64<<10 + 17},
		{"SSHRSA", []string{k.pub["rsa"]}, []string{"rsa"}, 64 << 10},
		{"AgeX25519", []string{k.pub["age"]}, []string{"age"}, 1000},
		{"FileOfRecipients", []string{recipients}, []string{"ed25519", "age", "rsa"}, 2*64<<10 + 1},
		{"Empty", []string{k.pub["ed25519"], k.pub["age"]}, []string{"ed25519", "age"}, 0},
	} {
		t.Run("AgeCLI"+c.name, func(t *testing.T) {
			d, stored := newDest(t)
			t.Cleanup(func() { d.Close() })
			rs, err := destination.ReadRecipients(c.to)
			if err != nil {
				t.Fatal(err)
			}
			name := "leaf1/leaf1_20250920T110208.456Z_admin.json"
			data := random(t, c.size)
			// A record as cfgsnap keeps it, with the plaintext's sha256: not
			// the digest of what is stored, which S3 checks.
			sum := sha256.Sum256(data)
			rec := snapshot.Record{Host: "leaf1", User: "admin", Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
			if err := destination.WithEncryption(d, rs).Save(ctx(t), rec, bytes.NewReader(data)); err != nil {
				t.Fatalf("Save: %v", err)
			}
			files := stored()
			if _, ok := files[name]; ok || len(files) != 1 {
				t.Fatalf("the server holds %v; want only %s.age, and the snapshot in the clear nowhere", names(files), name)
			}
			ct := filepath.Join(t.TempDir(), "snapshot.age")
			write(t, ct, string(files[name+destination.EncryptedSuffix]))
			for _, who := range []string{"ed25519", "rsa", "age", "stranger"} {
				out := filepath.Join(t.TempDir(), "snapshot.json")
				msg, err := exec.Command(ageCLI, "-d", "-i", k.key[who], "-o", out, ct).CombinedOutput()
				got, _ := os.ReadFile(out)
				switch reads := slices.Contains(c.readers, who); {
				case reads && err != nil:
					t.Errorf("age -d -i %s key: %v: %s", who, err, msg)
				case reads && !bytes.Equal(got, data):
					t.Errorf("age -d -i %s key gives %d bytes that are not the %d saved", who, len(got), len(data))
				case !reads && (err == nil || !strings.Contains(string(msg), "no identity matched")):
					t.Errorf("age -d -i %s key, not a recipient: %v: %s; want it refused: no identity matched", who, err, msg)
				}
			}
		})
	}
}

// team holds a team's keys, made by the real tools: private key files (key)
// and the public keys that encrypt-to takes (pub), by kind; "stranger" is
// a key that no snapshot is encrypted to.
type team struct{ key, pub map[string]string }

func newTeam(t *testing.T) team {
	t.Helper()
	sshKeygen := testenv.NeedCommand(t, "ssh-keygen")
	ageKeygen := testenv.NeedCommand(t, "age-keygen")
	dir := t.TempDir()
	k := team{key: map[string]string{}, pub: map[string]string{}}
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, kind := range []string{"ed25519", "rsa", "stranger"} {
		k.key[kind] = filepath.Join(dir, "id_"+kind)
		typ := map[string]string{"ed25519": "ed25519", "rsa": "rsa", "stranger": "ed25519"}[kind]
		run(sshKeygen, "-q", "-t", typ, "-N", "", "-C", kind+"@netops", "-f", k.key[kind])
		pub, err := os.ReadFile(k.key[kind] + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		k.pub[kind] = strings.TrimSpace(string(pub))
	}
	k.key["age"] = filepath.Join(dir, "alice.agekey")
	run(ageKeygen, "-o", k.key["age"])
	k.pub["age"] = strings.TrimSpace(run(ageKeygen, "-y", k.key["age"]))
	return k
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
