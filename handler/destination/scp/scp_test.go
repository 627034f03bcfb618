package scp_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/scp"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

var target = desttest.SSH[*scp.Destination]{Scheme: "scp", New: scp.New}

func TestConformance(t *testing.T) {
	target.Run(t, sshd.New(t, sshd.Options{}))
}

// SCP is for servers without SFTP: it must not lean on the subsystem.
func TestConformanceWithoutSFTP(t *testing.T) {
	target.Run(t, sshd.New(t, sshd.Options{NoSFTP: true}))
}

func TestPrivateModes(t *testing.T) { target.PrivateModes(t) }

// The target path reaches a shell on the server: nothing in it may expand.
func TestShellCharactersInPath(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	root := filepath.Join(base, "it's $HOME `id` ; rm -rf x", "srl")
	d := target.Dest(t, s, root, desttest.SSHConfig(s))
	if err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	got := desttest.ReadTree(t, base)
	want := "it's $HOME `id` ; rm -rf x/srl/leaf1/x.json"
	if len(got) != 1 || string(got[want]) != "{}" {
		t.Fatalf("server holds %v, want only %q", got, want)
	}
}

func TestOneConnectionForMany(t *testing.T) { target.OneConnectionForMany(t) }

func TestServerRestart(t *testing.T) { target.ServerRestart(t) }

// The server's own refusal reaches the user.
func TestServerRefusal(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	base := t.TempDir()
	blocker := filepath.Join(base, "leaf1")
	if err := os.WriteFile(blocker, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := target.Dest(t, s, base, desttest.SSHConfig(s))
	err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "Not a directory") {
		t.Fatalf("got %v (kind %d), want a Deliver error with the server's reason", err, fail.KindOf(err))
	}
	if got := desttest.ReadTree(t, base); len(got) != 1 {
		t.Fatalf("server holds %v", got)
	}
}

// An account limited to SFTP does not speak SCP: Save must say so promptly,
// whether the server answers with a message or waits for SFTP packets.
func TestSFTPOnlyAccount(t *testing.T) {
	for _, force := range []string{"ForceCommand internal-sftp", "ForceCommand " + sshd.SFTPServerPath} {
		t.Run(force, func(t *testing.T) {
			s := sshd.New(t, sshd.Options{Config: []string{force}})
			c := desttest.SSHConfig(s)
			c.Timeout = time.Second
			d := target.Dest(t, s, t.TempDir(), c)
			start := time.Now()
			err := d.Save(t.Context(), snapshot.Record{Name: "x.json", Size: 2}, strings.NewReader("{}"))
			if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "sftp://") {
				t.Fatalf("got %v (kind %d), want a Deliver error that suggests sftp://", err, fail.KindOf(err))
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func TestHomeRelative(t *testing.T) { target.HomeRelative(t) }

func TestNew(t *testing.T) {
	for _, raw := range []string{"scp://backup:pw@10.0.0.5/srl", "scp://10.0.0.5/srl#x", "sftp://10.0.0.5/srl", "scp://10.0.0.5/~/../etc"} {
		u, _ := url.Parse(raw)
		if _, err := scp.New(u, sshclient.Config{}); fail.KindOf(err) != fail.Usage {
			t.Errorf("%s: got %v, want a Usage error", raw, err)
		}
	}
}

func TestHostileFolder(t *testing.T) { target.RunHostile(t, sshd.New(t, sshd.Options{})) }
