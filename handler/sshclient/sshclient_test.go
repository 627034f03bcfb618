package sshclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// config is what a user with a correct setup for s would have.
func config(s *sshd.Server) sshclient.Config {
	return sshclient.Config{
		User:       s.User(),
		Addr:       s.Addr(),
		Identities: []string{s.ClientKey()},
		KnownHosts: s.KnownHosts(),
		Timeout:    5 * time.Second,
	}
}

// run proves the connection is usable: the server runs a command for us.
func run(t *testing.T, c *ssh.Client) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer sess.Close()
	out, err := sess.Output("echo connected")
	if err != nil || strings.TrimSpace(string(out)) != "connected" {
		t.Fatalf("remote echo: %q, %v", out, err)
	}
}

func dial(t *testing.T, c sshclient.Config) error {
	t.Helper()
	client, err := sshclient.Dial(context.Background(), c)
	if err == nil {
		run(t, client)
		client.Close()
	}
	return err
}

// wantErr checks an error's kind and that its message has each of parts.
func wantErr(t *testing.T, err error, kind fail.Kind, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("connected, want a %d error", kind)
	}
	if k := fail.KindOf(err); k != kind {
		t.Errorf("kind %d, want %d: %v", k, kind, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not mention %q: %v", p, err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostKeyChecks(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	port := strconv.Itoa(s.Port())

	t.Run("known key accepted", func(t *testing.T) {
		if err := dial(t, config(s)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown key refused with its fingerprint", func(t *testing.T) {
		c := config(s)
		// The same key, but for another port: known_hosts entries are per host and port.
		c.KnownHosts = writeFile(t, "known_hosts", knownhosts.Line([]string{"127.0.0.1:1"}, s.HostKey())+"\n")
		wantErr(t, dial(t, c), fail.Auth, s.Fingerprint(), "ssh-keyscan -p "+port+" 127.0.0.1 >> "+c.KnownHosts)
	})

	t.Run("missing known_hosts refused", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		wantErr(t, dial(t, c), fail.Auth, c.KnownHosts+" does not exist", s.Fingerprint())
	})

	t.Run("changed key refused", func(t *testing.T) {
		c := config(s)
		old := newKey(t).PublicKey()
		c.KnownHosts = writeFile(t, "known_hosts", "# old key\n"+knownhosts.Line([]string{s.Addr()}, old)+"\n")
		wantErr(t, dial(t, c), fail.Auth, "CHANGED", "man-in-the-middle", s.Fingerprint(), c.KnownHosts+":2")
	})

	t.Run("pinned fingerprint replaces known_hosts", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = filepath.Join(t.TempDir(), "missing")
		c.HostKey = s.Fingerprint()
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong pin refused", func(t *testing.T) {
		c := config(s)
		c.HostKey = ssh.FingerprintSHA256(newKey(t).PublicKey())
		wantErr(t, dial(t, c), fail.Auth, s.Fingerprint(), c.HostKey)
	})

	t.Run("malformed pin is a usage error", func(t *testing.T) {
		c := config(s)
		c.HostKey = "SHA256:not-a-fingerprint"
		wantErr(t, dial(t, c), fail.Usage, "SHA256:not-a-fingerprint")
	})

	t.Run("insecure accepts any key and warns every time", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = filepath.Join(t.TempDir(), "missing")
		c.Insecure = true
		var warnings []string
		c.Warnf = func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }
		for range 2 {
			if err := dial(t, c); err != nil {
				t.Fatal(err)
			}
		}
		if len(warnings) != 2 {
			t.Fatalf("%d warnings for 2 connections: %q", len(warnings), warnings)
		}
		for _, w := range warnings {
			if !strings.Contains(w, s.Fingerprint()) || !strings.Contains(w, "NOT verified") {
				t.Errorf("warning lacks the fingerprint or the risk: %q", w)
			}
		}
	})

	t.Run("insecure is not the default", func(t *testing.T) {
		c := sshclient.FromOptions(option.New(), nil, nil)
		if c.Insecure {
			t.Fatal("the default options skip host key checks")
		}
	})
}

// A server with several host key types presents the one the client prefers; the
// client must ask for the type known_hosts holds, or a correct entry is "changed",
// and otherwise prefer ed25519 as OpenSSH does, which is the key users pin.
func TestSeveralHostKeyTypes(t *testing.T) {
	s := sshd.New(t, sshd.Options{ECDSAHostKey: true})
	t.Run("known_hosts lists one type", func(t *testing.T) {
		if err := dial(t, config(s)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ed25519 pin", func(t *testing.T) {
		c := config(s)
		c.HostKey = s.Fingerprint()
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown host shows the ed25519 key", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = writeFile(t, "known_hosts", "")
		wantErr(t, dial(t, c), fail.Auth, "ssh-ed25519 "+s.Fingerprint())
	})
}

// A known_hosts entry of a type the server no longer has is a changed key too.
func TestHostKeyTypeGone(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	old, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c := config(s)
	c.KnownHosts = writeFile(t, "known_hosts", knownhosts.Line([]string{s.Addr()}, old)+"\n")
	wantErr(t, dial(t, c), fail.Auth, "ecdsa-sha2-nistp256", "man-in-the-middle", c.KnownHosts)
}

func TestIdentities(t *testing.T) {
	s := sshd.New(t, sshd.Options{})

	t.Run("missing files skipped", func(t *testing.T) {
		c := config(s)
		c.Identities = []string{filepath.Join(t.TempDir(), "id_rsa"), s.ClientKey()}
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("no usable identity", func(t *testing.T) {
		c := config(s)
		dir := t.TempDir()
		c.Identities = []string{filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "id_rsa")}
		wantErr(t, dial(t, c), fail.Auth, c.Identities[0], c.Identities[1])
	})

	t.Run("wrong key refused naming user and key", func(t *testing.T) {
		c := config(s)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		c.Identities = []string{writeFile(t, "id_other", string(pem.EncodeToMemory(block)))}
		wantErr(t, dial(t, c), fail.Auth, "refused user "+s.User(), c.Identities[0])
	})

	t.Run("passphrase key refused", func(t *testing.T) {
		c := config(s)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		c.Identities = []string{writeFile(t, "id_locked", string(pem.EncodeToMemory(block))), s.ClientKey()}
		wantErr(t, dial(t, c), fail.Auth, c.Identities[0], "passphrase")
	})

	t.Run("unreadable key refused", func(t *testing.T) {
		c := config(s)
		c.Identities = []string{t.TempDir()} // a folder: unreadable even for root
		wantErr(t, dial(t, c), fail.Auth, c.Identities[0])
	})

	t.Run("not a key refused", func(t *testing.T) {
		c := config(s)
		c.Identities = []string{s.KnownHosts()}
		wantErr(t, dial(t, c), fail.Auth, c.Identities[0])
	})
}

func TestUnreachable(t *testing.T) {
	t.Run("server down", func(t *testing.T) {
		s := sshd.New(t, sshd.Options{})
		c := config(s)
		s.Stop()
		wantErr(t, dial(t, c), fail.Deliver, s.Addr())
		s.Start()
		if err := dial(t, c); err != nil {
			t.Fatalf("after the server is back: %v", err)
		}
	})

	t.Run("silent server times out", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			// Accept and say nothing, like a host behind a broken firewall.
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { conn.Close() })
			}
		}()
		c := sshclient.Config{User: "x", Addr: l.Addr().String(), HostKey: ssh.FingerprintSHA256(newKey(t).PublicKey()),
			Identities: []string{writeKeyFile(t)}, Timeout: 200 * time.Millisecond}
		start := time.Now()
		wantErr(t, dial(t, c), fail.Deliver, "no answer", c.Addr)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("gave up after %v with a 200ms timeout", d)
		}
	})

	t.Run("unknown host name", func(t *testing.T) {
		c := sshclient.Config{User: "x", Addr: "cfgsnap-no-such-host.invalid:22",
			Identities: []string{writeKeyFile(t)}, KnownHosts: "/dev/null", Timeout: 5 * time.Second}
		wantErr(t, dial(t, c), fail.Deliver, "cfgsnap-no-such-host.invalid")
	})
}

func writeKeyFile(t *testing.T) string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "id", string(pem.EncodeToMemory(block)))
}

// countDials makes c dial as it would without Dial, counting the connections.
func countDials(c *sshclient.Config) *atomic.Int32 {
	var n atomic.Int32
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &n
}

// Package netns supplies Config.Dial to reach servers inside the management
// namespace: every connection must go through it.
func TestDialerIsUsed(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := config(s)
	calls := countDials(&c)
	if err := dial(t, c); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("Dial called %d times, want 1", calls.Load())
	}

	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("namespace srbase-mgmt: no route")
	}
	wantErr(t, dial(t, c), fail.Deliver, "no route")
}

func TestCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err == nil {
			t.Cleanup(func() { conn.Close() })
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	c := sshclient.Config{User: "x", Addr: l.Addr().String(), Insecure: true, Warnf: t.Logf,
		Identities: []string{writeKeyFile(t)}}
	start := time.Now()
	_, err = sshclient.Dial(ctx, c)
	if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Deliver {
		t.Fatalf("got %v (kind %d), want a Deliver error wrapping context.Canceled", err, fail.KindOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned %v after cancel", d)
	}
}

func TestForURL(t *testing.T) {
	base := sshclient.FromOptions(option.New(), nil, nil)
	for _, tc := range []struct {
		url, user, addr string
	}{
		{"sftp://backup@10.0.0.5/srl", "backup", "10.0.0.5:22"},
		{"scp://backup@backup.example:2222/srl", "backup", "backup.example:2222"},
		{"sftp://backup@[2001:db8::5]:2022/srl", "backup", "[2001:db8::5]:2022"},
	} {
		u, _ := url.Parse(tc.url)
		c, err := base.ForURL(u)
		if err != nil || c.User != tc.user || c.Addr != tc.addr {
			t.Errorf("%s: got %q %q %v, want %q %q", tc.url, c.User, c.Addr, err, tc.user, tc.addr)
		}
	}

	u, _ := url.Parse("sftp://10.0.0.5/srl")
	c, err := base.ForURL(u)
	if err != nil || c.User == "" {
		t.Errorf("no user in URL: got %q, %v; want the current user", c.User, err)
	}

	for _, bad := range []string{"sftp://backup:hunter2@10.0.0.5/srl", "sftp:///srl", "sftp://h:99999/srl"} {
		u, _ := url.Parse(bad)
		_, err := base.ForURL(u)
		wantErr(t, err, fail.Usage)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestRemotePath(t *testing.T) {
	for in, want := range map[string]string{
		"sftp://h":               ".",
		"sftp://h/":              "/",
		"sftp://h/srl":           "/srl",
		"sftp://h/srl/":          "/srl",
		"sftp://h//srl/a/../b":   "/srl/b",
		"sftp://h/~":             ".",
		"sftp://h/~/":            ".",
		"sftp://h/~/backups/srl": "backups/srl",
		"sftp://h/my%20configs":  "/my configs",
	} {
		u, _ := url.Parse(in)
		got, err := sshclient.RemotePath(u)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"sftp://h/~/../etc", "sftp://h/a%0Ab"} {
		u, _ := url.Parse(bad)
		_, err := sshclient.RemotePath(u)
		wantErr(t, err, fail.Usage)
	}
}
