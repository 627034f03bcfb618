// Package netns puts cfgsnap's network I/O into a named network namespace
// (srbase-mgmt on SR Linux) while the rest of the process stays in the default
// namespace, where sr_cli runs and local files are read.
//
// A socket belongs for its whole life to the network namespace of the thread
// that created it. Net therefore creates every socket on a fresh OS thread that
// has entered the namespace and is thrown away afterwards (the goroutine locks
// it and never unlocks), and hands the connection back: it can then be used from
// any goroutine. Nothing else in the process changes namespace.
//
// Host names are resolved the way "ip netns exec NAME" would see them, which is
// what a user checks with ssh or dig on the switch: first the hosts file
// /etc/netns/NAME/hosts (else /etc/hosts), then the DNS servers listed in
// /etc/netns/NAME/resolv.conf (else /etc/resolv.conf), asked from inside the
// namespace. That is why the package has its own resolver: Go's reads
// /etc/resolv.conf and /etc/hosts, the default namespace's, and cannot be
// pointed at the management namespace's (ip netns exec mounts them over
// /etc's in a mount namespace of its own, which this process is not in).
//
// Dialing, too, stays on the namespace thread: the addresses of a name are
// tried one after the other, IPv4 first, instead of in parallel as Go's
// "happy eyeballs" does from goroutines that run on threads in the default
// namespace. IPv4 comes first because, without a parallel fallback, a
// management network with a broken IPv6 path would cost every connection a
// timeout.
package netns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

const (
	// runDir is where "ip netns add" binds named namespaces.
	runDir = "/run/netns"
	// etcDir holds per-namespace replacements for files in /etc, as "ip netns exec" uses them.
	etcDir = "/etc/netns"
	// mgmt is SR Linux's management namespace, chosen by option netns auto.
	mgmt = "srbase-mgmt"
)

// Resolve turns the value of option netns into a namespace name for Open:
// "auto" gives srbase-mgmt where /run/netns/srbase-mgmt exists and "" (the
// current namespace) elsewhere, "none" gives "", and any other value must name
// a namespace under /run/netns.
func Resolve(opt string) (string, error) {
	return resolve(runDir, opt)
}

// resolve is Resolve with the namespace folder as a parameter, so that tests
// can show what auto does with and without srbase-mgmt on any machine.
func resolve(dir, opt string) (string, error) {
	switch opt {
	case "none":
		return "", nil
	case "auto":
		p := filepath.Join(dir, mgmt)
		_, err := os.Stat(p)
		switch {
		case err == nil:
			return mgmt, nil
		case errors.Is(err, fs.ErrNotExist):
			return "", nil
		default:
			return "", statError("option netns auto", p, err)
		}
	}
	if err := checkName(opt); err != nil {
		return "", err
	}
	p := filepath.Join(dir, opt)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", notFound(opt, p)
		}
		return "", statError("option netns", p, err)
	}
	return opt, nil
}

// checkName rejects names that are not a plain file name under /run/netns,
// so that a name can never point elsewhere in the file system.
func checkName(name string) error {
	if name == "" {
		return fail.New(fail.Usage, "option netns is empty: set it to auto, none, or a name that \"ip netns list\" shows")
	}
	if name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fail.New(fail.Usage, "option netns: %q is not a network namespace name: set it to auto, none, or a name that \"ip netns list\" shows", name)
	}
	return nil
}

func notFound(name, path string) error {
	return fail.New(fail.Usage, "option netns: no network namespace %q (%s does not exist): list them with \"ip netns list\", or set netns to auto or none", name, path)
}

func statError(what, path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fail.New(fail.Permission, "%s: %v: run cfgsnap as root (the script's sudo option) or set netns none", what, err)
	}
	return fail.New(fail.Internal, "%s: %v", what, err)
}

// Net dials from one network namespace. Its methods may be called from any
// goroutine, concurrently. Get one from Open.
type Net struct {
	name string // "" for the current namespace

	mu     sync.RWMutex // guards fd against Close while a thread enters it
	fd     int          // open /run/netns/NAME, -1 for the current namespace
	closed bool
}

// Open prepares dialing from the named network namespace, or from the current
// one for "". It enters the namespace once, on a throw-away thread, so that a
// missing privilege fails now, before any work, with kind fail.Permission.
// A name that does not exist under /run/netns is a fail.Usage error.
func Open(name string) (*Net, error) {
	if name == "" {
		return &Net{fd: -1}, nil
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := filepath.Join(runDir, name)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, notFound(name, p)
		}
		return nil, enterError(name, err)
	}
	n := &Net{name: name, fd: fd}
	// Only setns itself can tell whether we may enter (CAP_SYS_ADMIN over the
	// namespace's owner, seccomp, LSMs): try it.
	if err := n.do(func() error { return nil }); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return n, nil
}

// Name returns the namespace's name, "" for the current namespace.
func (n *Net) Name() string { return n.name }

// Close releases the namespace. Connections already made stay usable.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.fd < 0 {
		return nil
	}
	return unix.Close(n.fd)
}

var errClosed = errors.New("netns: dial on a closed Net")

func enterError(name string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fail.New(fail.Permission, "entering network namespace %s: %v: run cfgsnap as root (the script's sudo option) or set netns none", name, err)
	case errors.Is(err, unix.EINVAL):
		return fail.New(fail.Usage, "entering network namespace %s: %s is not a network namespace: list them with \"ip netns list\", or set netns to auto or none", name, filepath.Join(runDir, name))
	default:
		return fail.New(fail.Internal, "entering network namespace %s: %v", name, err)
	}
}

// do runs f on a new OS thread inside the namespace and returns its error.
// Everything f creates there (sockets) stays in the namespace.
func (n *Net) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the runtime ends the
		// thread instead of giving a thread in the wrong namespace to other
		// goroutines.
		runtime.LockOSThread()
		n.mu.RLock()
		if n.closed {
			n.mu.RUnlock()
			errc <- errClosed
			return
		}
		err := unix.Setns(n.fd, unix.CLONE_NEWNET)
		n.mu.RUnlock()
		if err != nil {
			errc <- enterError(n.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// DialContext connects to addr ("host:port") over network tcp, tcp4, tcp6,
// udp, udp4 or udp6, with the socket created inside the namespace; it fits
// http.Transport.DialContext, and its connections ssh.NewClientConn. A host name
// is resolved inside the namespace (see the package documentation) and its
// addresses tried in turn, IPv4 first, sharing ctx's deadline as net.Dialer
// does. It stops when ctx is done. Failures are fail.Deliver errors.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fail.New(fail.Internal, "netns: unsupported network %q for %s", network, addr)
	}
	if n.name == "" {
		return n.dialHere(ctx, network, addr)
	}
	host, service, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fail.New(fail.Usage, "address %q: %v: write host:port", addr, err)
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, service)
	if err != nil {
		return nil, fail.New(fail.Usage, "address %q: unknown port %q: use a port number", addr, service)
	}
	var c net.Conn
	err = n.do(func() error {
		var err error
		c, err = n.dial(ctx, network, host, uint16(port))
		return err
	})
	return c, err
}

// dialHere dials from the current namespace with Go's own resolver, which
// reads this namespace's files.
func (n *Net) dialHere(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.RLock()
	closed := n.closed
	n.mu.RUnlock()
	if closed {
		return nil, errClosed
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		return c, nil
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fail.New(fail.Deliver, "resolving %q (hosts from /etc/hosts, DNS servers from /etc/resolv.conf): %s: check the host name in the target, or set option netns if only a management namespace knows it", dnsErr.Name, dnsErr.Err)
	}
	return nil, fail.New(fail.Deliver, "%w", err)
}

// dial runs on the namespace thread: it resolves host and tries each address
// in turn, never starting goroutines that could create sockets elsewhere.
func (n *Net) dial(ctx context.Context, network, host string, port uint16) (net.Conn, error) {
	addrs, err := n.lookup(ctx, network, host)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	var first error
	for i, a := range addrs {
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			// As net.Dialer does: leave time for the addresses after this one.
			dctx, cancel = context.WithDeadline(ctx, partialDeadline(time.Now(), deadline, len(addrs)-i))
		}
		c, err := d.DialContext(dctx, network, netip.AddrPortFrom(a, port).String())
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctxErr(ctx) != nil {
			break
		}
	}
	if err := ctxErr(ctx); err != nil && !errors.Is(first, err) {
		// The socket's deadline, set from ctx's, can expire before ctx
		// itself: say that it was ctx's.
		return nil, fail.New(fail.Deliver, "network namespace %s: %w: %w", n.name, first, err)
	}
	return nil, fail.New(fail.Deliver, "network namespace %s: %w", n.name, first)
}

// partialDeadline is net.Dialer's share of the time left for one of
// remaining addresses: an equal part, but at least 2 s where there is that much.
func partialDeadline(now, deadline time.Time, remaining int) time.Time {
	left := deadline.Sub(now)
	share := left / time.Duration(remaining)
	const minimum = 2 * time.Second
	if share < minimum {
		share = min(left, minimum)
	}
	return now.Add(share)
}

// lookup returns the addresses to try for host, from an IP literal, the hosts
// file or DNS, in that order.
func (n *Net) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	want4 := !strings.HasSuffix(network, "6")
	want6 := !strings.HasSuffix(network, "4")
	hosts := n.etcFile("hosts")
	if addrs := lookupHosts(hosts, host, want4, want6); len(addrs) > 0 {
		// IPv4 first, as from DNS.
		slices.SortStableFunc(addrs, func(a, b netip.Addr) int {
			return cmp.Compare(a.BitLen(), b.BitLen())
		})
		return addrs, nil
	}
	conf := readResolvConf(n.etcFile("resolv.conf"))
	addrs, err := conf.lookup(ctx, host, want4, want6)
	if err == nil {
		return addrs, nil
	}
	where := fmt.Sprintf("in network namespace %s (hosts from %s, DNS servers %s from %s)", n.name, hosts, conf.serverList(), conf.describe())
	var se *serverError
	switch {
	case ctxErr(ctx) != nil:
		return nil, fail.New(fail.Deliver, "resolving %q %s: %w", host, where, ctxErr(ctx))
	case errors.Is(err, errInvalidName):
		return nil, fail.New(fail.Usage, "resolving %q: not a valid host name: fix the target", host)
	case errors.As(err, &se):
		return nil, fail.New(fail.Deliver, "resolving %q %s: %v: check the nameserver lines in %s, or use an IP address in the target", host, where, err, conf.path)
	default:
		return nil, fail.New(fail.Deliver, "resolving %q %s: no such host: check the host name in the target, or add it to %s", host, where, filepath.Join(etcDir, n.name, "hosts"))
	}
}

// etcFile returns /etc/netns/NAME/FILE where it exists, else /etc/FILE,
// as "ip netns exec" would show it at /etc/FILE.
func (n *Net) etcFile(file string) string {
	p := filepath.Join(etcDir, n.name, file)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join("/etc", file)
}
