package sftp_test

import (
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/sftp"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

var target = desttest.SSH[*sftp.Destination]{Scheme: "sftp", New: sftp.New}

func TestConformance(t *testing.T) {
	target.Run(t, sshd.New(t, sshd.Options{}))
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
	if fail.KindOf(err) != fail.Trust || !strings.Contains(err.Error(), s.Fingerprint()) {
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
