package desttest

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
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

// SSH tests the destinations of one SSH scheme (sftp, scp) against a real sshd
// on this machine: it builds them, runs the suite, and holds the cases that every
// SSH destination must pass beyond the suite. Each destination's own test calls
// them from test functions of its own, beside the cases of its protocol.
type SSH[D destination.Destination] struct {
	Scheme string
	New    func(u *url.URL, base sshclient.Config) (D, error)
}

// SSHConfig is what a user with a correct setup for s gives: its client key and
// known_hosts.
func SSHConfig(s *sshd.Server) sshclient.Config {
	return sshclient.Config{
		Identities: []string{s.ClientKey()},
		KnownHosts: s.KnownHosts(),
		Timeout:    5 * time.Second,
	}
}

// Dest returns the destination for the path p on s, written as sshd.Server.URL
// takes it, and closes it when t ends.
func (h SSH[D]) Dest(t *testing.T, s *sshd.Server, p string, c sshclient.Config) D {
	t.Helper()
	u, err := url.Parse(s.URL(h.Scheme, p))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.New(u, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Run runs the suite against s.
func (h SSH[D]) Run(t *testing.T, s *sshd.Server) {
	Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		return h.Dest(t, s, root, SSHConfig(s)), func() map[string][]byte { return ReadTree(t, root) }
	})
}

// RunEncrypted runs the encryption cases (RunEncrypted) against s.
func (h SSH[D]) RunEncrypted(t *testing.T, s *sshd.Server) {
	RunEncrypted(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		return h.Dest(t, s, root, SSHConfig(s)), func() map[string][]byte { return ReadTree(t, root) }
	})
}

// RunPruner runs the Pruner suite against s; D must be a destination.Pruner.
func (h SSH[D]) RunPruner(t *testing.T, s *sshd.Server) {
	RunPruner(t, func(t *testing.T) (destination.Pruner, Store) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		p, ok := any(h.Dest(t, s, root, SSHConfig(s))).(destination.Pruner)
		if !ok {
			t.Fatalf("%s destinations are not Pruners", h.Scheme)
		}
		return p, LocalStore(t, root)
	})
}

// PrivateModes checks that the folders a Save creates are 0700 and its files
// 0600, and that it leaves the mode of a folder that exists alone.
func (h SSH[D]) PrivateModes(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	// A folder that exists is the user's: its mode stays.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "srl")
	d := h.Dest(t, s, root, SSHConfig(s))
	if err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}")); err != nil {
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

// OneConnectionForMany checks that a backlog is delivered over one connection,
// made only when there is something to send.
func (h SSH[D]) OneConnectionForMany(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := SSHConfig(s)
	var dials atomic.Int32
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	d := h.Dest(t, s, t.TempDir(), c)
	if n := dials.Load(); n != 0 {
		t.Fatalf("New connected %d times before any Save", n)
	}
	for _, name := range []string{"a.json", "b.json", "c/d.json"} {
		if err := d.Save(t.Context(), snapshot.Record{Name: name, Size: 2}, strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("3 saves opened %d connections, want 1", n)
	}
}

// ServerRestart checks that when the server goes away between two snapshots, that
// Save fails as a delivery problem, and the same destination delivers again once
// the server is back.
func (h SSH[D]) ServerRestart(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	root := t.TempDir()
	d := h.Dest(t, s, root, SSHConfig(s))
	if err := d.Save(t.Context(), snapshot.Record{Name: "one.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	err := d.Save(t.Context(), snapshot.Record{Name: "two.json", Size: 2}, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver {
		t.Fatalf("with the server down: %v (kind %d), want a Deliver error", err, fail.KindOf(err))
	}
	s.Start()
	if err := d.Save(t.Context(), snapshot.Record{Name: "two.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatalf("after the server is back: %v", err)
	}
	if got := ReadTree(t, root); len(got) != 2 || string(got["two.json"]) != "{}" {
		t.Fatalf("server holds %v", got)
	}
}

// HomeRelative checks that /~/ paths start in the login folder.
func (h SSH[D]) HomeRelative(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	dir, err := os.MkdirTemp(s.Home(), ".cfgsnap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := h.Dest(t, s, "/~/"+filepath.Base(dir)+"/srl", SSHConfig(s))
	if err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if got := ReadTree(t, dir); len(got) != 1 || string(got["srl/leaf1/x.json"]) != "{}" {
		t.Fatalf("%s holds %v, want srl/leaf1/x.json", dir, got)
	}
}
