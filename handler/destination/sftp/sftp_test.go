package sftp_test

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/sftp"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

var target = desttest.SSH[*sftp.Destination]{Scheme: "sftp", New: sftp.New}

func TestConformance(t *testing.T) {
	target.Run(t, sshd.New(t, sshd.Options{}))
}

func TestPrunerConformance(t *testing.T) {
	target.RunPruner(t, sshd.New(t, sshd.Options{}))
}

// A List or Remove that the server refuses fails with what it was doing, not
// "saving", and the destination keeps working. Retention over such a server
// logs the refusal and the Save still succeeds: the snapshot is stored.
func TestPrunerRefused(t *testing.T) {
	// Tests run as root, whom permissions do not stop: the server refuses the
	// requests instead.
	s := sshd.New(t, sshd.Options{Config: []string{"ForceCommand " + sshd.SFTPServerPath + " -P opendir,remove"}})
	root := t.TempDir()
	d := target.Dest(t, s, root, desttest.SSHConfig(s))
	if err := os.WriteFile(filepath.Join(root, "x.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := d.List(t.Context(), "")
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "listing the root folder") || strings.Contains(err.Error(), "saving") {
		t.Fatalf("refused List: %v (kind %d), want a Deliver error about listing", err, fail.KindOf(err))
	}
	err = d.Remove(t.Context(), "x.json")
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "removing x.json") || strings.Contains(err.Error(), "saving") {
		t.Fatalf("refused Remove: %v (kind %d), want a Deliver error about removing x.json", err, fail.KindOf(err))
	}

	var logged []string
	logf := func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	w, err := destination.WithRetention(d, destination.Retention{Keep: 1, Template: "{host}_{time}.json"}, time.Now, logf)
	if err != nil {
		t.Fatal(err)
	}
	rec := snapshot.Record{Host: "leaf1", LastChange: time.Now(), Size: 2}
	if rec.Name, err = snapshot.Name("{host}_{time}.json", rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(t.Context(), rec, strings.NewReader("{}")); err != nil {
		t.Fatalf("Save failed because pruning did: %v", err)
	}
	if got := desttest.ReadTree(t, root); len(got) != 2 || string(got[rec.Name]) != "{}" {
		t.Fatalf("server holds %v", got)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "listing") || !strings.Contains(logged[0], "nothing removed") {
		t.Fatalf("logged %q, want one line saying the listing failed", logged)
	}
}

// Remove takes files only: not a folder, nor a link, whose target stays.
func TestRemoveOnlyFiles(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "precious.json")
	for _, err := range []error{
		os.Mkdir(filepath.Join(root, "dir"), 0o700),
		os.WriteFile(outside, []byte("{}"), 0o600),
		os.Symlink(outside, filepath.Join(root, "link.json")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d := target.Dest(t, s, root, desttest.SSHConfig(s))
	if files, err := d.List(t.Context(), ""); err != nil || len(files) != 0 {
		t.Fatalf("List = %v, %v; want no files", files, err)
	}
	for _, name := range []string{"dir", "link.json"} {
		if err := d.Remove(t.Context(), name); err == nil || !strings.Contains(err.Error(), "removing "+name) {
			t.Errorf("Remove(%q) = %v, want an error about removing it", name, err)
		}
	}
	if got := desttest.ReadTree(t, root); len(got) != 1 {
		t.Errorf("server holds %v, want the link still", got)
	}
	if _, err := os.Stat(filepath.Join(root, "dir")); err != nil {
		t.Error(err)
	}
}

func TestPrivateModes(t *testing.T) { target.PrivateModes(t) }

func TestOneConnectionForMany(t *testing.T) { target.OneConnectionForMany(t) }

func TestServerRestart(t *testing.T) { target.ServerRestart(t) }

func TestHomeRelative(t *testing.T) { target.HomeRelative(t) }

// Trust errors keep their kind through Save, so they are not retried as if the
// network had failed.
func TestUnknownHostKeyIsTrust(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := desttest.SSHConfig(s)
	c.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(c.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	d := target.Dest(t, s, root, c)
	err := d.Save(t.Context(), snapshot.Record{Name: "x.json", Size: 2}, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Auth || !strings.Contains(err.Error(), s.Fingerprint()) {
		t.Fatalf("got %v (kind %d), want a Trust error with the fingerprint", err, fail.KindOf(err))
	}
	if got := desttest.ReadTree(t, root); len(got) != 0 {
		t.Fatalf("server holds %v", got)
	}
}

func TestNoSFTPSubsystem(t *testing.T) {
	s := sshd.New(t, sshd.Options{NoSFTP: true})
	d := target.Dest(t, s, t.TempDir(), desttest.SSHConfig(s))
	err := d.Save(t.Context(), snapshot.Record{Name: "x.json", Size: 2}, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "scp://") {
		t.Fatalf("got %v (kind %d), want a Deliver error that suggests scp://", err, fail.KindOf(err))
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

func TestHostileFolder(t *testing.T) { target.RunHostile(t, sshd.New(t, sshd.Options{})) }

// A Save whose connection is cut leaves its temporary file; the next Save of
// the same name removes it, but not one that belongs to someone else.
func TestLeftoverOfCutConnection(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	root := t.TempDir()
	newDest := func() destination.Destination { return target.Dest(t, s, root, desttest.SSHConfig(s)) }
	// cut starts a Save, and stops the server under it.
	cut := func() func() {
		gate := make(chan struct{})
		done := make(chan error, 1)
		d := newDest()
		go func() {
			done <- d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 1 << 20}, io.MultiReader(strings.NewReader(strings.Repeat("x", 100<<10)), gated(gate)))
		}()
		return func() {
			s.Stop()
			close(gate)
			if err := <-done; err == nil {
				t.Fatal("the Save succeeded although the server stopped")
			}
			s.Start()
		}
	}
	desttest.RunLeftovers(t, root, cut, newDest)
}

// gated blocks until its channel closes, then fails: a source that hangs.
type gated chan struct{}

func (g gated) Read([]byte) (int, error) {
	<-g
	return 0, io.ErrUnexpectedEOF
}

// BenchmarkSave64MiB is one 64 MiB snapshot to a real OpenSSH sftp-server on
// this machine: what createModes and the SSH channel cost per byte.
func BenchmarkSave64MiB(b *testing.B) {
	s := sshd.New(b, sshd.Options{})
	u := s.URL("sftp", b.TempDir())
	parsed, err := url.Parse(u)
	if err != nil {
		b.Fatal(err)
	}
	d, err := sftp.New(parsed, desttest.SSHConfig(s))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data := strings.Repeat("x", 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := d.Save(b.Context(), snapshot.Record{Name: "leaf1/x.json", Size: int64(len(data))}, strings.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
