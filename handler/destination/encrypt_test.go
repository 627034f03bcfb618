package destination_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// authorizedKey is pub as a line of authorized_keys, without its newline.
func authorizedKey(t *testing.T, pub any) string {
	t.Helper()
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " alice@netops"
}

func recipients(t *testing.T, values ...string) *destination.Recipients {
	t.Helper()
	rs, err := destination.ReadRecipients(values)
	if err != nil {
		t.Fatalf("ReadRecipients(%q): %v", values, err)
	}
	return rs
}

// TestEncryptedSize: the size that a destination is told before the first
// byte is sent is the size of what arrives, for every kind of recipient and
// at every chunk boundary; and what arrives decrypts to what was saved.
func TestEncryptedSize(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	sets := map[string][]string{
		"x25519":      {x.Recipient().String()},
		"pq":          {pq.Recipient().String()},
		"ssh-ed25519": {authorizedKey(t, edPub)},
		"x25519+ssh":  {x.Recipient().String(), authorizedKey(t, edPub)},
	}
	for _, bits := range []int{2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		sets[fmt.Sprintf("ssh-rsa-%d", bits)] = []string{authorizedKey(t, &k.PublicKey), x.Recipient().String()}
	}
	const chunk = 64 << 10
	for name, values := range sets {
		rs := recipients(t, values...)
		for _, n := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 3*chunk + 17} {
			plain := bytes.Repeat([]byte{'x'}, n)
			r, err := rs.Encrypt(bytes.NewReader(plain))
			if err != nil {
				t.Fatal(err)
			}
			ct, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := rs.Size(int64(n)); got != int64(len(ct)) {
				t.Errorf("%s, %d bytes: Size says %d, encrypted is %d", name, n, got, len(ct))
			}
			if name == "x25519" || name == "x25519+ssh" || strings.HasPrefix(name, "ssh-rsa") {
				dr, err := age.Decrypt(bytes.NewReader(ct), x)
				if err != nil {
					t.Fatalf("%s, %d bytes: %v", name, n, err)
				}
				if got, _ := io.ReadAll(dr); !bytes.Equal(got, plain) {
					t.Errorf("%s, %d bytes: decrypts to %d other bytes", name, n, len(got))
				}
			}
		}
	}
}

// TestReadRecipientsRefuses: what age could not encrypt to is refused in one
// line that says what to give instead, and never shows a private key or a
// line of a file.
func TestReadRecipientsRefuses(t *testing.T) {
	dir := t.TempDir()
	x, _ := age.GenerateX25519Identity()
	pq, _ := age.GenerateHybridIdentity()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecdsaKey := authorizedKey(t, &ec.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const sshPrivate = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n"
	for _, c := range []struct {
		name   string
		values []string
		says   string
		secret string // must not show
	}{
		{"none", nil, "names no recipient", ""},
		{"age private key", []string{x.String()}, "private key", x.String()[15:]},
		{"SSH private key inline", []string{sshPrivate}, "private key", "b3BlbnNzaC1rZXkt"},
		{"not a key", []string{"alice@netops"}, "absolute path of a file", ""},
		{"two keys in one value", []string{authorizedKey(t, edPub) + "\nssh-ed25519 AAAAjunk"}, "several lines", ""},
		{"relative path", []string{"team.recipients"}, "absolute path of a file", ""},
		{"bad age key", []string{"age1notakey"}, "not an age recipient", ""},
		{"bad SSH key", []string{"ssh-ed25519 AAAAnotbase64!"}, "not an SSH public key", ""},
		{"ecdsa", []string{ecdsaKey}, "only to ssh-ed25519 and ssh-rsa", ""},
		{"post-quantum beside classic", []string{pq.Recipient().String(), x.Recipient().String()}, "cannot be used together", ""},
		{"missing file", []string{filepath.Join(dir, "missing")}, "does not exist", ""},
		{"empty file", []string{file("empty", "# nobody yet\n\n")}, "holds no recipient", ""},
		{"private key in a file", []string{file("id_ed25519", sshPrivate)}, "line 1: a private key", "b3BlbnNzaC1rZXkt"},
		{"ecdsa in a file", []string{file("team", "# netops\n"+x.Recipient().String()+"\n"+ecdsaKey+"\n")}, "line 3: an ecdsa-sha2-nistp256 key", ecdsaKey[20:60]},
		{"junk in a file", []string{file("junk", "password=hunter2\n")}, "line 1: not a recipient", "hunter2"},
	} {
		_, err := destination.ReadRecipients(c.values)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", c.name)
		case fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), c.says):
			t.Errorf("%s: %v (kind %d); want one usage line saying %q", c.name, err, fail.KindOf(err), c.says)
		case c.secret != "" && strings.Contains(err.Error(), c.secret):
			t.Errorf("%s: the error shows what it must not: %v", c.name, err)
		}
	}
	// What age -R reads: comments, blank lines, spaces around keys.
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	p := file("ok", "# netops\n\n  "+x.Recipient().String()+"  \n# bob\n"+authorizedKey(t, ed)+"\n")
	if _, err := destination.ReadRecipients([]string{p, pq.Recipient().String()}); err == nil || !strings.Contains(err.Error(), "together") {
		t.Errorf("a file's classic keys beside a post-quantum one: %v", err)
	}
	recipients(t, p, authorizedKey(t, ed))
}

// sizes is a Destination that checks and counts what it is sent.
type sizes struct {
	rec  snapshot.Record
	data bytes.Buffer
	keep bool // keep the data, else count it only
}

func (s *sizes) String() string { return "file:///srv/backups" }
func (s *sizes) Close() error   { return nil }
func (s *sizes) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	s.rec = rec
	s.data.Reset()
	w := io.Discard
	if s.keep {
		w = &s.data
	}
	return destination.Copy(ctx, w, r, rec.Size)
}

// zeros yields n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), z.n))
	clear(p[:k])
	z.n -= int64(k)
	return k, nil
}

// TestEncryptionWrapper: the destination inside gets NAME.age, of the exact
// encrypted size and without the plaintext's sha256, which S3 would take for
// the digest of the bytes; Location, the log and retries speak of NAME.age;
// and the snapshot streams through in constant memory.
func TestEncryptionWrapper(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	rs := recipients(t, x.Recipient().String())
	inner := &sizes{keep: true}
	var l logs
	m := newMemory()
	m.saveErr, m.failSaves = fail.New(fail.Deliver, "connection reset"), 1
	for _, d := range []destination.Destination{inner, m} {
		w := destination.WithLog(destination.WithRetry(destination.WithEncryption(d, rs), 2, time.Millisecond, l.logf), l.logf)
		rec := snapshot.Record{Host: "leaf1", Name: "leaf1/leaf1_20250920T110208.456Z_admin.json", Size: 100, SHA256: strings.Repeat("ab", 32)}
		if err := w.Save(t.Context(), rec, bytes.NewReader(bytes.Repeat([]byte("y"), 100))); err != nil {
			t.Fatal(err)
		}
		if got := destination.Location(w, rec); got != d.String()+"/"+rec.Name+".age" {
			t.Errorf("Location = %s", got)
		}
	}
	if inner.rec.Name != "leaf1/leaf1_20250920T110208.456Z_admin.json.age" || inner.rec.Size != rs.Size(100) || inner.rec.SHA256 != "" || inner.rec.Host != "leaf1" {
		t.Errorf("the destination inside got %+v", inner.rec)
	}
	for name, ct := range map[string][]byte{"sent": inner.data.Bytes(), "retried": []byte(m.files["leaf1/leaf1_20250920T110208.456Z_admin.json.age"])} {
		r, err := age.Decrypt(bytes.NewReader(ct), x)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := io.ReadAll(r); !bytes.Equal(got, bytes.Repeat([]byte("y"), 100)) {
			t.Errorf("%s: decrypts to %q", name, got)
		}
	}
	log := strings.Join(l, "\n")
	if !strings.Contains(log, "saved leaf1/leaf1_20250920T110208.456Z_admin.json.age (100 bytes)") ||
		!strings.Contains(log, "leaf1/leaf1_20250920T110208.456Z_admin.json.age: try 1 of 2 failed") {
		t.Errorf("the log does not name NAME.age:\n%s", log)
	}

	// 256 MiB through the wrapper: what it allocates does not grow with it.
	const size = 256 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := destination.WithEncryption(&sizes{}, rs)
	if err := w.Save(t.Context(), snapshot.Record{Name: "big.json", Size: size}, &zeros{n: size}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("encrypting %d MiB allocated %d MiB; want it streamed", size>>20, alloc>>20)
	}
}
