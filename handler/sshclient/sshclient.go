// Package sshclient opens SSH connections to the hosts of sftp:// and scp:// targets:
// authenticated with key files, and only after the server's host key has been
// verified against known_hosts or a pinned fingerprint.
//
// It also holds what the destinations for both schemes share, so that each keeps
// only its protocol: Target, a target taken apart, and Conn, a connection made on
// the first Save, kept for the next ones, and cut when a cancelled Save hangs.
package sshclient

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Config says whom to connect to and what to trust.
type Config struct {
	User string
	Addr string // host:port

	// Identities are private key files, offered in order. Missing files are
	// skipped; passphrase-protected keys are refused, as nobody can type one.
	Identities []string

	// KnownHosts is the OpenSSH known_hosts file that host keys are checked against.
	KnownHosts string
	// HostKey pins the server's key by fingerprint ("SHA256:..." as ssh-keygen -lf
	// prints it). When set, it replaces KnownHosts and Insecure.
	HostKey string
	// Insecure accepts any host key, calling Warnf on every connection.
	Insecure bool

	// Timeout bounds connecting and authenticating; 0 means no bound.
	Timeout time.Duration

	// Dial opens the TCP connection; nil means a net.Dialer. Package netns supplies
	// one that dials inside the management namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Warnf reports what the user should know but that does not stop the
	// connection; nil writes to stderr.
	Warnf func(format string, args ...any)
}

// FromOptions returns the settings that every SSH target shares: the options,
// the dialer of the management namespace and where warnings go; ForURL adds
// the host and user of one target.
func FromOptions(o *option.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error), warnf func(format string, args ...any)) Config {
	return Config{
		Identities: o.Identities,
		KnownHosts: o.KnownHosts,
		HostKey:    o.HostKey,
		Insecure:   o.InsecureSkipHostKey,
		Timeout:    o.ConnectTimeout,
		Dial:       dial,
		Warnf:      warnf,
	}
}

// ForURL returns c with User and Addr taken from a target such as
// sftp://user@host:port/path. Without a user it logs in as the current user;
// without a port it uses 22. Passwords are refused: cfgsnap authenticates with keys,
// and a password in a target would show wherever the target is shown.
func (c Config) ForURL(u *url.URL) (Config, error) {
	if _, has := u.User.Password(); has {
		return c, fail.New(fail.Usage, "target %s holds a password: cfgsnap logs in with SSH keys only (option identity); remove the password", u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return c, fail.New(fail.Usage, "target %s names no host: write %s://user@host/path", u.Redacted(), u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return c, fail.New(fail.Usage, "target %s: port %q is not a number from 1 to 65535", u.Redacted(), port)
	}
	c.Addr = net.JoinHostPort(host, port)
	c.User = u.User.Username()
	if c.User == "" {
		cur, err := user.Current()
		if err != nil {
			return c, fail.New(fail.Usage, "target %s names no user and the current user is unknown (%v): write %s://user@host/path", u.Redacted(), err, u.Scheme)
		}
		c.User = cur.Username
	}
	return c, nil
}

// RemotePath maps the path of an sftp:// or scp:// target to a path on the server,
// as the SSH URI draft and curl do: /srl is the absolute /srl, /~/srl is srl in the
// login folder, and an empty path, /~ or /~/ is the login folder itself (".").
// A path that would climb out of the login folder, or that holds control
// characters, is a usage error.
func RemotePath(u *url.URL) (string, error) {
	p := u.Path
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fail.New(fail.Usage, "target %s: the path holds control characters", u.Redacted())
	}
	if p == "" || p == "/~" {
		return ".", nil
	}
	if rest, ok := strings.CutPrefix(p, "/~/"); ok {
		rel := path.Clean(rest)
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fail.New(fail.Usage, "target %s climbs out of the login folder: write the absolute path instead", u.Redacted())
		}
		return rel, nil
	}
	return path.Clean(p), nil
}

// Dial connects to c.Addr, verifies the host key and authenticates as c.User.
// Errors carry a kind: fail.Auth for keys and host keys, fail.Deliver when the
// server cannot be reached, fail.Usage for a malformed pin.
func Dial(ctx context.Context, c Config) (*ssh.Client, error) {
	signers, used, err := loadIdentities(c.Identities)
	if err != nil {
		return nil, err
	}
	v, err := newVerifier(c)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   v.check,
		HostKeyAlgorithms: v.algorithms,
	}

	hctx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(hctx, "tcp", c.Addr)
	if err != nil {
		return nil, c.unreachable(hctx, err)
	}
	// The SSH handshake knows no context: close the socket to abandon it.
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.Addr, cfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, c.unreachable(hctx, hctx.Err())
	}
	if err != nil {
		conn.Close()
		switch {
		case v.err != nil:
			return nil, v.err
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fail.New(fail.Auth, "SSH server %s refused user %s with key %s: add the public key (%s.pub) to ~%s/.ssh/authorized_keys on the server, or set option identity",
				c.Addr, c.User, strings.Join(used, ", "), used[0], c.User)
		case strings.Contains(err.Error(), "no common algorithm for host key") && len(v.listed) > 0:
			return nil, fail.New(fail.Auth, "SSH server %s has no host key of the types %s lists for it (%s): its keys have changed, maybe by a man-in-the-middle attack; if the change is expected, replace its lines in %s with the server's current key",
				c.Addr, c.KnownHosts, strings.Join(v.listed, ", "), c.KnownHosts)
		}
		return nil, c.unreachable(hctx, err)
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// unreachable words a failure to reach the server as a fail.Deliver error.
func (c Config) unreachable(ctx context.Context, err error) error {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return fail.New(fail.Deliver, "cannot resolve SSH server %s: %w: check the host name and the DNS servers of the network namespace", c.Addr, err)
	case ctx.Err() == context.DeadlineExceeded || errors.As(err, &netErr) && netErr.Timeout():
		within := ""
		if c.Timeout > 0 {
			within = " within " + c.Timeout.String()
		}
		return fail.New(fail.Deliver, "no answer from SSH server %s%s: check the address and that no firewall drops the connection (option connect-timeout sets the limit)", c.Addr, within)
	case ctx.Err() != nil:
		return fail.New(fail.Deliver, "connecting to SSH server %s: %w", c.Addr, ctx.Err())
	case fail.KindOf(err) != fail.Internal:
		// The dialer (the namespace's) already said what to check.
		return fail.As(fail.Deliver, fmt.Errorf("cannot connect to SSH server %s: %w", c.Addr, err))
	}
	return fail.New(fail.Deliver, "cannot connect to SSH server %s: %w: check the host, the port and that sshd runs there", c.Addr, err)
}

// loadIdentities reads the key files that exist, and says which they were.
func loadIdentities(files []string) (signers []ssh.Signer, used []string, err error) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fail.New(fail.Auth, "cannot read SSH key %s: %v: make it readable by the user cfgsnap runs as, or set option identity", f, errors.Unwrap(err))
		}
		s, err := ssh.ParsePrivateKey(b)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, nil, fail.New(fail.Auth, "SSH key %s is protected by a passphrase, which cfgsnap cannot enter: give it a key without one (ssh-keygen -t ed25519 -N '' -f FILE)", f)
		case err != nil:
			return nil, nil, fail.New(fail.Auth, "SSH key %s is not a private key cfgsnap can use (%v): point option identity at an OpenSSH private key", f, err)
		}
		signers = append(signers, s)
		used = append(used, f)
	}
	if len(signers) == 0 {
		tried := strings.Join(files, ", ")
		if tried == "" {
			tried = "none configured"
		}
		return nil, nil, fail.New(fail.Auth, "no SSH private key found (tried %s): create one with ssh-keygen -t ed25519 -N '' or set option identity", tried)
	}
	return signers, used, nil
}

// verifier checks host keys, and keeps the error it gave, which the SSH package
// wraps beyond recognition.
type verifier struct {
	c          Config
	pin        string              // fingerprint without "SHA256:"
	db         ssh.HostKeyCallback // nil when known_hosts does not exist
	algorithms []string            // host key algorithms to ask for
	listed     []string            // key types known_hosts lists for c.Addr
	err        error
}

func newVerifier(c Config) (*verifier, error) {
	v := &verifier{c: c}
	// Unless known_hosts says otherwise, ask for host keys in OpenSSH's order, so
	// that the key checked against a pin, or shown in a message, is the one the
	// user sees from ssh (ed25519 first), not the ECDSA key Go would prefer.
	v.algorithms = plainOrder()
	if c.HostKey != "" {
		v.pin = strings.TrimRight(strings.TrimPrefix(c.HostKey, "SHA256:"), "=")
		if b, err := base64.RawStdEncoding.DecodeString(v.pin); err != nil || len(b) != 32 {
			return nil, fail.New(fail.Usage, "host-key %q is not a SHA256 fingerprint: give the SHA256:... that ssh-keygen -lf prints for the server's key", c.HostKey)
		}
		return v, nil
	}
	if c.Insecure {
		return v, nil
	}
	db, err := knownhosts.New(c.KnownHosts)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Connect anyway, to tell the user which key the server presents.
		return v, nil
	case err != nil:
		return nil, fail.New(fail.Auth, "cannot use known_hosts file %s: %v: fix or replace it", c.KnownHosts, err)
	}
	v.db = db
	v.algorithms = append(certOrder(), plainOrder()...)
	// Offer only the key types known for the host: a server with several host keys
	// would otherwise present its preferred one, which may not be the one we know.
	_, probe, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probeKey, err := ssh.NewPublicKey(probe.Public())
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if errors.As(db(c.Addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey), &ke) && len(ke.Want) > 0 {
		v.algorithms = nil
		add := func(a string) {
			if !slices.Contains(v.algorithms, a) {
				v.algorithms = append(v.algorithms, a)
			}
		}
		// Ask for the listed types first, certified or plain: a certificate over a
		// listed key passes as that key (see verifyCert), one over another key only
		// by a @cert-authority line.
		for _, k := range ke.Want {
			if !slices.Contains(v.listed, k.Key.Type()) {
				v.listed = append(v.listed, k.Key.Type())
			}
			plain := algorithmsFor(k.Key.Type())
			for _, a := range plain {
				if ca, ok := certAlgorithm[a]; ok {
					add(ca)
				}
			}
			for _, a := range plain {
				add(a)
			}
		}
		// Certificates over other keys stay acceptable from a @cert-authority line.
		for _, a := range certOrder() {
			add(a)
		}
	}
	return v, nil
}

func (v *verifier) check(_ string, remote net.Addr, key ssh.PublicKey) error {
	v.err = v.verify(remote, key)
	return v.err
}

func (v *verifier) verify(remote net.Addr, key ssh.PublicKey) error {
	c := v.c
	fp := ssh.FingerprintSHA256(key)
	switch {
	case v.pin != "":
		if strings.TrimPrefix(fp, "SHA256:") == v.pin {
			return nil
		}
		return fail.New(fail.Auth, "SSH server %s presented host key %s %s, not the pinned SHA256:%s: maybe a man-in-the-middle attack; if the server's key changed on purpose (or it has several), set option host-key to the key it presents",
			c.Addr, key.Type(), fp, v.pin)
	case c.Insecure:
		warnf := c.Warnf
		if warnf == nil {
			warnf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "warning: "+format+"\n", args...) }
		}
		warnf("SSH host key of %s NOT verified (insecure-skip-host-key): accepted %s %s; pin it with host-key %s", c.Addr, key.Type(), fp, fp)
		return nil
	case v.db == nil:
		return fail.New(fail.Auth, "known_hosts file %s does not exist, so the host key of %s cannot be checked: it presented %s %s; after checking that fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add it with: %s >> %s, or set option host-key %s",
			c.KnownHosts, c.Addr, key.Type(), fp, keyscan(c.Addr), c.KnownHosts, fp)
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		return v.verifyCert(remote, cert)
	}
	return v.verifyKnown(remote, key)
}

// verifyCert checks a host certificate as OpenSSH does: against the
// @cert-authority lines for the host, and failing that, the key it certifies
// against the plain lines, so that a server which gained a certificate still
// matches the line ssh-keyscan wrote for it. The handshake proved that the server
// holds that key, so the certificate adds nothing to a key listed plainly.
func (v *verifier) verifyCert(remote net.Addr, cert *ssh.Certificate) error {
	c := v.c
	certErr := v.db(c.Addr, remote, cert)
	if certErr == nil {
		return nil
	}
	// A revoked CA vouches for nothing, not even a key listed plainly (as in OpenSSH).
	var re *knownhosts.RevokedError
	if errors.As(v.db(c.Addr, remote, cert.SignatureKey), &re) {
		return fail.New(fail.Auth, "SSH server %s presented a host certificate signed by CA %s %s, which %s:%d revokes: do not trust this server",
			c.Addr, cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), re.Revoked.Filename, re.Revoked.Line)
	}
	err := v.verifyKnown(remote, cert.Key)
	// Without a @cert-authority line for the host (x/crypto says so only in
	// words), the key's own verdict and message are the whole answer.
	if err == nil || strings.Contains(certErr.Error(), "no authorities for hostname") {
		return err
	}
	// A @cert-authority line trusts the signer but the certificate is not valid
	// for this host (expired, or another host's): that is what to fix.
	return fail.New(fail.Auth, "checking the SSH host key of %s against %s: %v", c.Addr, c.KnownHosts, certErr)
}

// verifyKnown checks a plain host key against known_hosts.
func (v *verifier) verifyKnown(remote net.Addr, key ssh.PublicKey) error {
	c := v.c
	fp := ssh.FingerprintSHA256(key)
	err := v.db(c.Addr, remote, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return fail.New(fail.Auth, "SSH server %s presented host key %s %s, which %s:%d revokes: do not trust this server", c.Addr, key.Type(), fp, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fail.New(fail.Auth, "SSH host key of %s is not in %s: it presented %s %s; after checking that fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add it with: %s >> %s, or set option host-key %s",
			c.Addr, c.KnownHosts, key.Type(), fp, keyscan(c.Addr), c.KnownHosts, fp)
	case errors.As(err, &ke):
		w := ke.Want[0]
		return fail.New(fail.Auth, "SSH host key of %s has CHANGED: it presented %s %s, but %s:%d holds %s %s; this may be a man-in-the-middle attack; if the change is expected, remove the old line (ssh-keygen -R '%s' -f %s) and add the new key",
			c.Addr, key.Type(), fp, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key), knownhosts.Normalize(c.Addr), c.KnownHosts)
	}
	return fail.New(fail.Auth, "checking the SSH host key of %s against %s: %v", c.Addr, c.KnownHosts, err)
}

// keyscan is the command that fetches the host keys of addr.
func keyscan(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "22" {
		return "ssh-keyscan " + addr
	}
	return "ssh-keyscan -p " + port + " " + host
}

// plainOrder is OpenSSH's preference among plain host keys: ed25519 first.
func plainOrder() []string {
	return []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
}

// certOrder is OpenSSH's preference among host certificates, which it asks for
// before plain keys.
func certOrder() []string {
	var out []string
	for _, a := range plainOrder() {
		if ca, ok := certAlgorithm[a]; ok {
			out = append(out, ca)
		}
	}
	return out
}

// certAlgorithm maps a host key algorithm to that of certificates over such keys
// (none for SHA-1 RSA, which OpenSSH no longer asks for).
var certAlgorithm = map[string]string{
	ssh.KeyAlgoED25519:   ssh.CertAlgoED25519v01,
	ssh.KeyAlgoECDSA256:  ssh.CertAlgoECDSA256v01,
	ssh.KeyAlgoECDSA384:  ssh.CertAlgoECDSA384v01,
	ssh.KeyAlgoECDSA521:  ssh.CertAlgoECDSA521v01,
	ssh.KeyAlgoRSASHA512: ssh.CertAlgoRSASHA512v01,
	ssh.KeyAlgoRSASHA256: ssh.CertAlgoRSASHA256v01,
}

// algorithmsFor lists the signature algorithms a host key of type t can sign with.
func algorithmsFor(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}
