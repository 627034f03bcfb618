// Package sshd runs a real OpenSSH server for tests, with fresh host and client
// keys, so that SSH, SFTP and SCP code is tested against the server backup hosts run.
package sshd

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Paths of the OpenSSH programs; absolute because sshd refuses to re-exec itself otherwise.
const (
	SSHDPath       = "/usr/sbin/sshd"
	SFTPServerPath = "/usr/lib/openssh/sftp-server"
)

// Options shape the server. The zero value is 127.0.0.1 on a free port, with SFTP.
type Options struct {
	// Listen is host or host:port; an empty host means 127.0.0.1 and a missing or
	// zero port a free one (free as seen from the test's own network namespace).
	Listen string
	// Wrap prefixes the sshd command line, e.g. {"ip", "netns", "exec", "ns1"} to
	// serve inside a network namespace. The wrapper must exec sshd (as ip netns exec
	// does), so that stopping the process stops the server.
	Wrap []string
	// NoSFTP leaves out the sftp subsystem, like servers that allow only scp.
	NoSFTP bool
	// ECDSAHostKey adds an ECDSA P-256 host key beside the ed25519 one. Go's SSH
	// client prefers ECDSA, so this exposes clients that ignore which key types
	// known_hosts holds (KnownHosts lists only the ed25519 key).
	ECDSAHostKey bool
	// HostCertificate has a CA of the test's own (HostCA) certify the ed25519 host
	// key for Host with ssh-keygen -s, and the server present the certificate, as
	// servers of sites with an SSH CA do.
	HostCertificate bool
	// Config holds more sshd_config lines, such as "ForceCommand internal-sftp"
	// for an account limited to SFTP.
	Config []string
}

// Server is one running sshd. Its methods are for the test goroutine only.
type Server struct {
	t         testing.TB
	opts      Options
	dir       string
	host      string
	port      int
	autoPort  bool
	hostKey   ssh.PublicKey
	hostCA    ssh.PublicKey
	user      string
	home      string
	clientKey string
	known     string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// New starts sshd for t and stops it when t ends. It skips t (fails it when CI=true)
// unless it runs as root with OpenSSH installed.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, SSHDPath)
	if !o.NoSFTP {
		testenv.NeedCommand(t, SFTPServerPath)
	}
	if o.HostCertificate {
		testenv.NeedCommand(t, "ssh-keygen")
	}
	if len(o.Wrap) > 0 {
		testenv.NeedCommand(t, o.Wrap[0])
	}
	// sshd needs its privilege-separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshd: current user: %v", err)
	}
	s := &Server{t: t, opts: o, dir: t.TempDir(), user: u.Username, home: u.HomeDir}
	s.logPath = filepath.Join(s.dir, "sshd.log")
	s.host, s.port, err = splitListen(o.Listen)
	if err != nil {
		t.Fatalf("sshd: Listen %q: %v", o.Listen, err)
	}
	s.autoPort = s.port == 0

	s.hostKey = s.writeKey("host_ed25519", newEd25519(t))
	if o.ECDSAHostKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("sshd: %v", err)
		}
		s.writeKey("host_ecdsa", k)
	}
	if o.HostCertificate {
		s.hostCA = s.writeKey("host_ca", newEd25519(t))
		// Writes host_ed25519-cert.pub; with no -V the certificate never expires.
		out, err := exec.Command("ssh-keygen", "-q", "-s", filepath.Join(s.dir, "host_ca"), "-h",
			"-I", "cfgsnap-test-host", "-n", s.host, filepath.Join(s.dir, "host_ed25519.pub")).CombinedOutput()
		if err != nil {
			t.Fatalf("sshd: signing the host key: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	s.clientKey = filepath.Join(s.dir, "id_ed25519")
	clientPub := s.writeKey("id_ed25519", newEd25519(t))
	s.write("authorized_keys", ssh.MarshalAuthorizedKey(clientPub))

	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil && len(b) > 0 {
				t.Logf("sshd log:\n%s", b)
			}
		}
	})
	for attempt := 0; ; attempt++ {
		if s.autoPort {
			s.port = freePort(t)
		}
		err := s.start()
		if err == nil {
			s.known = s.write("known_hosts", []byte(knownhosts.Line([]string{s.Addr()}, s.hostKey)+"\n"))
			return s
		}
		// Another process may take a free port between our probe and sshd's bind.
		if !s.autoPort || attempt == 2 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("sshd: %v", err)
		}
	}
}

// Addr is host:port, as a client dials it.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Host is the listen address without the port.
func (s *Server) Host() string { return s.host }

// Port is the listen port.
func (s *Server) Port() int { return s.port }

// User is the account that the client key logs in as.
func (s *Server) User() string { return s.user }

// Home is the login folder of User, where sessions start.
func (s *Server) Home() string { return s.home }

// ClientKey is the path of an unencrypted ed25519 private key that the server accepts.
func (s *Server) ClientKey() string { return s.clientKey }

// KnownHosts is the path of a known_hosts file holding the server's host key for Addr.
func (s *Server) KnownHosts() string { return s.known }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey }

// HostCA is the public key of the CA that certified the host key (Options.HostCertificate), or nil.
func (s *Server) HostCA() ssh.PublicKey { return s.hostCA }

// Fingerprint is the host key's fingerprint as ssh-keygen -lf prints it (SHA256:...).
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.hostKey) }

// URL returns scheme://user@addr/p for a target on this server; p is a slash path.
func (s *Server) URL(scheme, p string) string {
	u := url.URL{Scheme: scheme, User: url.User(s.user), Host: s.Addr(), Path: p}
	return u.String()
}

// Start starts the server again after Stop, on the same address and keys.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("sshd: Start while running")
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("sshd: %v", err)
	}
}

// Stop kills sshd and every connection it serves, as when the host goes down.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited: // it died on its own; its pid may be another process's now
		s.cmd = nil
		return
	default:
	}
	pid := s.cmd.Process.Pid
	// sshd puts each connection in a session of its own, so a process-group kill
	// would miss them: freeze the listener so it forks no more, then kill its tree.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (s *Server) start() error {
	cfg, err := s.config()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	st, err := logf.Stat()
	if err != nil {
		return err
	}
	from := st.Size()

	args := append(append([]string{}, s.opts.Wrap...), SSHDPath, "-D", "-e", "-f", cfg)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(10 * time.Second)
	for {
		log := s.logSince(from)
		if strings.Contains(log, "Server listening on") {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("%s exited: %s", strings.Join(args, " "), strings.TrimSpace(s.logSince(from)))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("%s: not listening after 10s: %s", strings.Join(args, " "), log)
		}
	}
}

// optional settings make the server independent of the machine it runs on, and
// are left out where this OpenSSH version does not know them.
var optional = []string{
	// PerSourcePenalties (OpenSSH 9.8+) would lock out the tests' deliberate
	// authentication failures.
	"PerSourcePenalties no",
	// A login shell reads the user's startup files (bash: ~/.bashrc) only at shell
	// level 1: the test machine's dotfiles must neither slow nor break sessions.
	"SetEnv SHLVL=1",
}

// config writes sshd_config and checks it with sshd -t.
func (s *Server) config() (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Port %d\nListenAddress %s\n", s.port, s.host)
	fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.dir, "host_ed25519"))
	if s.opts.ECDSAHostKey {
		fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.dir, "host_ecdsa"))
	}
	if s.opts.HostCertificate {
		fmt.Fprintf(&b, "HostCertificate %s\n", filepath.Join(s.dir, "host_ed25519-cert.pub"))
	}
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.dir, "authorized_keys"))
	b.WriteString("PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n")
	b.WriteString("PermitRootLogin prohibit-password\nMaxStartups 100\nMaxSessions 100\n")
	if !s.opts.NoSFTP {
		fmt.Fprintf(&b, "Subsystem sftp %s\n", SFTPServerPath)
	}
	opt := slices.Clone(optional)
	for {
		// The caller's lines come last, as a Match block must.
		lines := append(slices.Clone(opt), s.opts.Config...)
		p := s.write("sshd_config", append(slices.Clone(b.Bytes()), strings.Join(lines, "\n")+"\n"...))
		out, err := exec.Command(SSHDPath, "-t", "-f", p).CombinedOutput()
		if err == nil {
			return p, nil
		}
		n := len(opt)
		opt = slices.DeleteFunc(opt, func(line string) bool {
			return bytes.Contains(out, []byte("Bad configuration option: "+strings.Fields(line)[0]))
		})
		if len(opt) == n {
			return "", fmt.Errorf("%s -t rejects the config: %s", SSHDPath, bytes.TrimSpace(out))
		}
	}
}

func (s *Server) logSince(off int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	return string(b[off:])
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	return priv
}

// writeKey writes priv unencrypted in OpenSSH format, and its .pub, under name,
// and returns the public key.
func (s *Server) writeKey(name string, priv crypto.Signer) ssh.PublicKey {
	block, err := ssh.MarshalPrivateKey(priv, "cfgsnap-test")
	if err != nil {
		s.t.Fatalf("sshd: %v", err)
	}
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		s.t.Fatalf("sshd: %v", err)
	}
	s.write(name, pem.EncodeToMemory(block))
	s.write(name+".pub", ssh.MarshalAuthorizedKey(sshPub))
	return sshPub
}

func (s *Server) write(name string, b []byte) string {
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		s.t.Fatalf("sshd: %v", err)
	}
	return p
}

func splitListen(listen string) (host string, port int, err error) {
	host = listen
	if h, p, err := net.SplitHostPort(listen); err == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 0 || port > 65535 {
			return "", 0, fmt.Errorf("bad port %q", p)
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshd: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: parse after it.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
