package sftp_test

import (
	"context"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/sftp"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
)

// readTree lists the files below root as the server holds them, hidden ones included.
func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func sshConfig(s *sshd.Server) sshclient.Config {
	return sshclient.Config{
		Identities: []string{s.ClientKey()},
		KnownHosts: s.KnownHosts(),
		Timeout:    5 * time.Second,
	}
}

func newDest(t *testing.T, s *sshd.Server, root string, c sshclient.Config) *sftp.Destination {
	t.Helper()
	u, err := url.Parse(s.URL("sftp", root))
	if err != nil {
		t.Fatal(err)
	}
	d, err := sftp.New(u, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		return newDest(t, s, root, sshConfig(s)), func() map[string][]byte { return readTree(t, root) }
	})
}

func TestPrivateModes(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	// A folder that exists is the user's: its mode stays.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "srl")
	d := newDest(t, s, root, sshConfig(s))
	if err := d.Save(t.Context(), "leaf1/x.json", 2, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		base:                                   0o755 | fs.ModeDir,
		root:                                   0o700 | fs.ModeDir,
		filepath.Join(root, "leaf1"):           0o700 | fs.ModeDir,
		filepath.Join(root, "leaf1", "x.json"): 0o600,
	} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v (configs hold secrets)", p, st.Mode(), want)
		}
	}
}

// A backlog is delivered over one connection, made only when there is something to send.
func TestOneConnectionForMany(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := sshConfig(s)
	var dials atomic.Int32
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	root := t.TempDir()
	d := newDest(t, s, root, c)
	if n := dials.Load(); n != 0 {
		t.Fatalf("New connected %d times before any Save", n)
	}
	for _, name := range []string{"a.json", "b.json", "c/d.json"} {
		if err := d.Save(t.Context(), name, 2, strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("3 saves opened %d connections, want 1", n)
	}
}

// When the server goes away between two snapshots, that Save fails as a delivery
// problem, and the same destination delivers again once the server is back.
func TestServerRestart(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	root := t.TempDir()
	d := newDest(t, s, root, sshConfig(s))
	if err := d.Save(t.Context(), "one.json", 2, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	err := d.Save(t.Context(), "two.json", 2, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver {
		t.Fatalf("with the server down: %v (kind %d), want a Deliver error", err, fail.KindOf(err))
	}
	s.Start()
	if err := d.Save(t.Context(), "two.json", 2, strings.NewReader("{}")); err != nil {
		t.Fatalf("after the server is back: %v", err)
	}
	if got := readTree(t, root); len(got) != 2 || string(got["two.json"]) != "{}" {
		t.Fatalf("server holds %v", got)
	}
}

// Trust errors keep their kind through Save, so they are not retried as if the
// network had failed.
func TestUnknownHostKeyIsTrust(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := sshConfig(s)
	c.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(c.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	d := newDest(t, s, root, c)
	err := d.Save(t.Context(), "x.json", 2, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Trust || !strings.Contains(err.Error(), s.Fingerprint()) {
		t.Fatalf("got %v (kind %d), want a Trust error with the fingerprint", err, fail.KindOf(err))
	}
	if got := readTree(t, root); len(got) != 0 {
		t.Fatalf("server holds %v", got)
	}
}

func TestNoSFTPSubsystem(t *testing.T) {
	s := sshd.New(t, sshd.Options{NoSFTP: true})
	d := newDest(t, s, t.TempDir(), sshConfig(s))
	err := d.Save(t.Context(), "x.json", 2, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "scp://") {
		t.Fatalf("got %v (kind %d), want a Deliver error that suggests scp://", err, fail.KindOf(err))
	}
}

// /~/ paths start in the login folder.
func TestHomeRelative(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	dir, err := os.MkdirTemp(s.Home(), ".cfgsnap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u, err := url.Parse(s.URL("sftp", "/~/"+filepath.Base(dir)+"/srl"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := sftp.New(u, sshConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Save(t.Context(), "leaf1/x.json", 2, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); len(got) != 1 || string(got["srl/leaf1/x.json"]) != "{}" {
		t.Fatalf("%s holds %v, want srl/leaf1/x.json", dir, got)
	}
}

func TestNew(t *testing.T) {
	base := sshclient.Config{}
	for raw, want := range map[string]string{
		"sftp://backup@10.0.0.5/srl":      "sftp://backup@10.0.0.5/srl",
		"sftp://backup@10.0.0.5:2222/~/x": "sftp://backup@10.0.0.5:2222/~/x",
	} {
		u, _ := url.Parse(raw)
		d, err := sftp.New(u, base)
		if err != nil || d.String() != want {
			t.Errorf("%s: String %q, %v; want %q", raw, d.String(), err, want)
		}
	}
	for _, raw := range []string{"sftp://backup:pw@10.0.0.5/srl", "sftp://10.0.0.5/srl?x=1", "scp://10.0.0.5/srl", "sftp:///srl"} {
		u, _ := url.Parse(raw)
		if _, err := sftp.New(u, base); fail.KindOf(err) != fail.Usage {
			t.Errorf("%s: got %v, want a Usage error", raw, err)
		}
	}
}
