package sshclient_test

import (
	"net"
	"os/exec"
	"strconv"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// caLine is the known_hosts line that trusts ca to certify the host keys of addr.
func caLine(addr string, ca ssh.PublicKey) string {
	return "@cert-authority " + knownhosts.Line([]string{addr}, ca) + "\n"
}

// A server with a host certificate is accepted as OpenSSH's client accepts it:
// by a @cert-authority line, by a plain line for its key (what ssh-keyscan
// writes), or by a pinned fingerprint; its key is still refused when unknown,
// changed or revoked, with the same messages as for a server without one.
func TestHostCertificate(t *testing.T) {
	s := sshd.New(t, sshd.Options{HostCertificate: true})
	plain := knownhosts.Line([]string{s.Addr()}, s.HostKey()) + "\n"

	t.Run("plain known_hosts line accepted", func(t *testing.T) {
		if err := dial(t, config(s)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cert-authority line accepted", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = writeFile(t, "known_hosts", caLine(s.Addr(), s.HostCA()))
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pinned fingerprint accepted", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = ""
		c.HostKey = s.Fingerprint()
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown key refused with its fingerprint", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = writeFile(t, "known_hosts", knownhosts.Line([]string{"127.0.0.1:1"}, s.HostKey())+"\n")
		wantErr(t, dial(t, c), fail.Auth, "is not in "+c.KnownHosts, "ssh-ed25519 "+s.Fingerprint(),
			"ssh-keyscan -p "+strconv.Itoa(s.Port())+" 127.0.0.1 >> "+c.KnownHosts)
	})

	t.Run("changed key refused", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = writeFile(t, "known_hosts", knownhosts.Line([]string{s.Addr()}, newKey(t).PublicKey())+"\n")
		wantErr(t, dial(t, c), fail.Auth, "CHANGED", "man-in-the-middle", s.Fingerprint(), c.KnownHosts+":1")
	})

	t.Run("revoked CA refused although the key is listed", func(t *testing.T) {
		c := config(s)
		c.KnownHosts = writeFile(t, "known_hosts", plain+"@revoked * "+string(ssh.MarshalAuthorizedKey(s.HostCA())))
		wantErr(t, dial(t, c), fail.Auth, "revokes", ssh.FingerprintSHA256(s.HostCA()), c.KnownHosts+":2")
	})

	// The certificate names 127.0.0.1 only: dialled as localhost, the CA's word
	// does not hold, but a plain line for the key still does, as in OpenSSH.
	localhost := net.JoinHostPort("localhost", strconv.Itoa(s.Port()))
	t.Run("certificate for another name, key listed", func(t *testing.T) {
		c := config(s)
		c.Addr = localhost
		c.KnownHosts = writeFile(t, "known_hosts", caLine(localhost, s.HostCA())+knownhosts.Line([]string{localhost}, s.HostKey())+"\n")
		if err := dial(t, c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("certificate for another name, key not listed", func(t *testing.T) {
		c := config(s)
		c.Addr = localhost
		c.KnownHosts = writeFile(t, "known_hosts", caLine(localhost, s.HostCA()))
		wantErr(t, dial(t, c), fail.Auth, `principal "localhost" not in the set of valid principals`)
	})
}

// A server whose ed25519 key is certified also has an ECDSA key, and known_hosts
// lists only that one, as ssh-keyscan -t ecdsa writes it: the client asks for the
// listed type, not the certificate, or a correct entry looks "changed".
func TestHostCertificateOverAnotherKeyType(t *testing.T) {
	keyscan := testenv.NeedCommand(t, "ssh-keyscan")
	s := sshd.New(t, sshd.Options{HostCertificate: true, ECDSAHostKey: true})
	out, err := exec.Command(keyscan, "-t", "ecdsa", "-p", strconv.Itoa(s.Port()), s.Host()).Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ssh-keyscan: %q, %v", out, err)
	}
	c := config(s)
	c.KnownHosts = writeFile(t, "known_hosts", string(out))
	if err := dial(t, c); err != nil {
		t.Fatal(err)
	}
}
