// Package nstest builds small networks of real Linux network namespaces for
// tests: a "switch" namespace that stands for SR Linux's srbase-mgmt, joined by
// a veth pair to a "server" namespace that nothing else reaches, and ways to run
// Go code, commands and a DNS responder inside them.
//
// Names are unique per run, so test binaries may run in parallel. Everything a
// helper creates (namespaces, veths, /etc/netns/NAME folders, servers) is
// removed when the test ends. The helpers need root and iproute2; without them
// the test skips, or fails when CI=true (see package testenv).
//
// Code that enters a namespace runs on its own OS thread, which is never given
// back to the Go scheduler: the rest of the test stays in the host namespace.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// Pair is two network namespaces joined by a veth pair. Switch stands for the
// switch's srbase-mgmt, Server for a host on its management network; the
// server is reachable from Switch only, never from the host namespace.
// Both have loopback up.
type Pair struct {
	Switch, Server       string     // namespace names
	SwitchIP, ServerIP   netip.Addr // IPv4 of each end, in 10.88.0.0/24
	SwitchIP6, ServerIP6 netip.Addr // IPv6 of each end, in fd88::/64
}

// NewPair creates a Pair, deleted (with its veths) when the test ends.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	// The same addresses in every pair: each pair is a network of its own.
	p := &Pair{
		Switch: NewNS(t), Server: NewNS(t),
		SwitchIP: netip.MustParseAddr("10.88.0.1"), ServerIP: netip.MustParseAddr("10.88.0.2"),
		SwitchIP6: netip.MustParseAddr("fd88::1"), ServerIP6: netip.MustParseAddr("fd88::2"),
	}
	// Created directly inside the namespaces, so no veth ever exists in the
	// host namespace; deleting a namespace deletes its end and so the pair.
	id := strings.TrimPrefix(p.Switch, prefix)
	sw, srv := "cs"+id+"s", "cs"+id+"v" // 11 bytes: interface names stop at 15
	ip(t, "link", "add", sw, "netns", p.Switch, "type", "veth", "peer", "name", srv, "netns", p.Server)
	ends := []struct {
		ns, dev string
		v4, v6  netip.Addr
	}{{p.Switch, sw, p.SwitchIP, p.SwitchIP6}, {p.Server, srv, p.ServerIP, p.ServerIP6}}
	for _, e := range ends {
		ip(t, "-n", e.ns, "link", "set", e.dev, "up")
	}
	// Addresses go on once both ends are up, IPv6 ones without duplicate
	// address detection: otherwise an IPv6 address stays unusable for about
	// a second, and the first packets to it are lost.
	for _, e := range ends {
		ip(t, "-n", e.ns, "addr", "add", e.v4.String()+"/24", "dev", e.dev)
		ip(t, "-n", e.ns, "addr", "add", e.v6.String()+"/64", "dev", e.dev, "nodad")
	}
	return p
}

const prefix = "cfgsnap-"

// NewNS creates an empty network namespace with a unique name and loopback
// up, and deletes it, and /etc/netns/NAME, when the test ends.
func NewNS(t testing.TB) string {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("nstest: deleting namespace %s: %v: %s", name, err, out)
		}
		if err := os.RemoveAll(filepath.Join("/etc/netns", name)); err != nil {
			t.Errorf("nstest: %v", err)
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
	return name
}

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("nstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Do runs f on an OS thread inside namespace ns and waits for it; sockets f
// creates stay in ns and may be used from any goroutine afterwards. f runs on
// another goroutine: it must not call t.Fatal, but return an error, which
// fails the test.
func Do(t testing.TB, ns string, f func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends this thread with the goroutine
		// rather than reuse it in the wrong namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("opening namespace %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("nstest: in namespace %s: %v", ns, err)
	}
}

// Listen opens a TCP listener on addr ("ip:port", port 0 picks one) inside
// namespace ns, closed when the test ends. Serve it from any goroutine, e.g.
// as an httptest.Server's Listener.
func Listen(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	Do(t, ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	t.Cleanup(func() { l.Close() })
	return l
}

// Command returns a command that runs name with args inside namespace ns, via
// "ip netns exec", which also shows the process /etc/netns/NS/* files over
// /etc. ip execs name in place, so the command's process is name's (signals
// and Wait reach it). Give name as an absolute path where it matters (sshd).
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// WriteEtc writes /etc/netns/NS/FILE (e.g. resolv.conf, hosts), which
// "ip netns exec" and package netns use in place of /etc/FILE inside ns.
// When the test ends the file gets its previous content back, or goes, and so
// does the folder /etc/netns/NS if that leaves it empty; a subtest can thus
// replace a file for itself.
func WriteEtc(t testing.TB, ns, file, content string) {
	t.Helper()
	dir := filepath.Join("/etc/netns", ns)
	p := filepath.Join(dir, file)
	old, err := os.ReadFile(p)
	existed := err == nil
	t.Cleanup(func() {
		if existed {
			os.WriteFile(p, old, 0o644)
			return
		}
		os.Remove(p)
		os.Remove(dir) // fails while other files remain: fine
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("nstest: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("nstest: %v", err)
	}
}
