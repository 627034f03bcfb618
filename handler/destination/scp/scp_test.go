package scp_test

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
	"github.com/cfgsnap/cfgsnap/handler/destination/scp"
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

func newDest(t *testing.T, s *sshd.Server, root string, c sshclient.Config) *scp.Destination {
	t.Helper()
	u, err := url.Parse(s.URL("scp", root))
	if err != nil {
		t.Fatal(err)
	}
	d, err := scp.New(u, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func conformance(t *testing.T, s *sshd.Server) {
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		return newDest(t, s, root, sshConfig(s)), func() map[string][]byte { return readTree(t, root) }
	})
}

func TestConformance(t *testing.T) {
	conformance(t, sshd.New(t, sshd.Options{}))
}

// SCP is for servers without SFTP: it must not lean on the subsystem.
func TestConformanceWithoutSFTP(t *testing.T) {
	conformance(t, sshd.New(t, sshd.Options{NoSFTP: true}))
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

// The target path reaches a shell on the server: nothing in it may expand.
func TestShellCharactersInPath(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	root := filepath.Join(base, "it's $HOME `id` ; rm -rf x", "srl")
	d := newDest(t, s, root, sshConfig(s))
	if err := d.Save(t.Context(), "leaf1/x.json", 2, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, base)
	want := "it's $HOME `id` ; rm -rf x/srl/leaf1/x.json"
	if len(got) != 1 || string(got[want]) != "{}" {
		t.Fatalf("server holds %v, want only %q", got, want)
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
	d := newDest(t, s, t.TempDir(), c)
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

// The server's own refusal reaches the user.
func TestServerRefusal(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	blocker := filepath.Join(base, "leaf1")
	if err := os.WriteFile(blocker, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDest(t, s, base, sshConfig(s))
	err := d.Save(t.Context(), "leaf1/x.json", 2, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "Not a directory") {
		t.Fatalf("got %v (kind %d), want a Deliver error with the server's reason", err, fail.KindOf(err))
	}
	if got := readTree(t, base); len(got) != 1 {
		t.Fatalf("server holds %v", got)
	}
}

// An account limited to SFTP does not speak SCP: Save must say so promptly,
// whether the server answers with a message or waits for SFTP packets.
func TestSFTPOnlyAccount(t *testing.T) {
	for _, force := range []string{"ForceCommand internal-sftp", "ForceCommand " + sshd.SFTPServerPath} {
		t.Run(force, func(t *testing.T) {
			s := sshd.New(t, sshd.Options{Config: []string{force}})
			c := sshConfig(s)
			c.Timeout = time.Second
			d := newDest(t, s, t.TempDir(), c)
			start := time.Now()
			err := d.Save(t.Context(), "x.json", 2, strings.NewReader("{}"))
			if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "sftp://") {
				t.Fatalf("got %v (kind %d), want a Deliver error that suggests sftp://", err, fail.KindOf(err))
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
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
	u, err := url.Parse(s.URL("scp", "/~/"+filepath.Base(dir)+"/srl"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := scp.New(u, sshConfig(s))
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
	for _, raw := range []string{"scp://backup:pw@10.0.0.5/srl", "scp://10.0.0.5/srl#x", "sftp://10.0.0.5/srl", "scp://10.0.0.5/~/../etc"} {
		u, _ := url.Parse(raw)
		if _, err := scp.New(u, sshclient.Config{}); fail.KindOf(err) != fail.Usage {
			t.Errorf("%s: got %v, want a Usage error", raw, err)
		}
	}
}
