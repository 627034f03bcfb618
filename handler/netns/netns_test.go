package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// childEnv makes the test binary act as cfgsnap opening a namespace (see
// TestOpenWithoutPrivilege): Open(NAME), error on stderr, kind as exit code.
const childEnv = "CFGSNAP_NETNS_TEST_OPEN"

func init() {
	// Keep the main goroutine on the main thread, so that no namespace
	// goroutine ever runs there: the runtime parks, rather than ends, a main
	// thread left locked, and TestNoThreadLeftInNamespace counts threads.
	runtime.LockOSThread()
}

func TestMain(m *testing.M) {
	if name, ok := os.LookupEnv(childEnv); ok {
		n, err := Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(int(fail.KindOf(err)))
		}
		n.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// open is Open that fails the test, closing the Net when it ends.
func open(t *testing.T, name string) *Net {
	t.Helper()
	n, err := Open(name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// listen starts a TCP server on addr in namespace ns (the host's for "") that
// tells each client the address it sees it from, and returns its port.
func listen(t *testing.T, ns, addr string) uint16 {
	t.Helper()
	var l net.Listener
	if ns == "" {
		var err error
		if l, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
	} else {
		l = nstest.Listen(t, ns, addr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return netip.MustParseAddrPort(l.Addr().String()).Port()
}

// peer dials and returns the source address the server saw.
func peer(ctx context.Context, n *Net, network, addr string) (netip.Addr, error) {
	c, err := n.DialContext(ctx, network, addr)
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.Addr{}, fmt.Errorf("reading from %s: %v", addr, err)
	}
	return netip.ParseAddr(strings.TrimSpace(line))
}

func wantPeer(t *testing.T, n *Net, network, addr string, want netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := peer(ctx, n, network, addr)
	if err != nil {
		t.Fatalf("DialContext(%s, %s) from %q: %v", network, addr, n.Name(), err)
	}
	if got != want {
		t.Fatalf("DialContext(%s, %s) from %q: server saw %s, want %s", network, addr, n.Name(), got, want)
	}
}

// wantErr checks err's kind and that its message holds every part.
func wantErr(t *testing.T, err error, kind fail.Kind, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %d", kind)
	}
	if got := fail.KindOf(err); got != kind {
		t.Errorf("error kind %d, want %d: %v", got, kind, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func addr(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// The server namespace is reachable only through the switch namespace; a
// connection from Net arrives from the switch's address, whichever namespace
// the caller is in, and a host-namespace listener is not reachable through it.
func TestSocketLivesInNamespace(t *testing.T) {
	p := nstest.NewPair(t)
	port := listen(t, p.Server, addr(p.ServerIP, 0))
	port6 := listen(t, p.Server, addr(p.ServerIP6, 0))
	sw := open(t, p.Switch)
	here := open(t, "")

	t.Run("by IPv4", func(t *testing.T) { wantPeer(t, sw, "tcp", addr(p.ServerIP, port), p.SwitchIP) })
	t.Run("by IPv6", func(t *testing.T) { wantPeer(t, sw, "tcp6", addr(p.ServerIP6, port6), p.SwitchIP6) })

	t.Run("host listener unreachable", func(t *testing.T) {
		// 127.0.0.1 exists in both namespaces: only the host's has the listener.
		hport := listen(t, "", "127.0.0.1:0")
		wantPeer(t, here, "tcp", addr(netip.MustParseAddr("127.0.0.1"), hport), netip.MustParseAddr("127.0.0.1"))
		_, err := sw.DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", hport))
		wantErr(t, err, fail.Deliver, "network namespace "+p.Switch, "connection refused")
	})

	// Dialing the server from the host namespace would send packets for
	// 10.88.0.2 out of this machine through its default route. An empty
	// namespace stands in for the switch's default one, which cannot reach the
	// management network either: the caller's own dial fails there, Net's works.
	t.Run("from a namespace without the network", func(t *testing.T) {
		caller := nstest.NewNS(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var viaNet netip.Addr
		var plainErr, netErr error
		nstest.Do(t, caller, func() error {
			_, plainErr = peer(ctx, here, "tcp", addr(p.ServerIP, port))
			viaNet, netErr = peer(ctx, sw, "tcp", addr(p.ServerIP, port))
			return nil
		})
		wantErr(t, plainErr, fail.Deliver, "network is unreachable")
		if netErr != nil || viaNet != p.SwitchIP {
			t.Errorf("Net(%s) dialing from another namespace: server saw %v, %v; want %s", p.Switch, viaNet, netErr, p.SwitchIP)
		}
	})
}

func TestDialByNameFromNamespaceDNS(t *testing.T) {
	p := nstest.NewPair(t)
	port6 := listen(t, p.Server, addr(p.ServerIP6, 0))
	port := listen(t, p.Server, addr(p.ServerIP, port6)) // same port on both families
	only6 := listen(t, p.Server, addr(p.ServerIP6, 0))   // nothing on IPv4 at this port
	dns := p.ServeDNS(t, map[string][]netip.Addr{
		"backup.cfgsnap.test": {p.ServerIP, p.ServerIP6},
		"SIX.cfgsnap.test":    {p.ServerIP6},
	})
	sw := open(t, p.Switch)
	conf := filepath.Join("/etc/netns", p.Switch, "resolv.conf")

	t.Run("IPv4 first", func(t *testing.T) {
		wantPeer(t, sw, "tcp", fmt.Sprintf("backup.cfgsnap.test:%d", port), p.SwitchIP)
		if q := dns.Queries(); len(q) == 0 || q[0] != "backup.cfgsnap.test. A" {
			t.Errorf("DNS responder got %q, want backup.cfgsnap.test. A first", q)
		}
	})
	t.Run("AAAA only", func(t *testing.T) { wantPeer(t, sw, "tcp", fmt.Sprintf("six.cfgsnap.test:%d", port6), p.SwitchIP6) })
	t.Run("tcp6", func(t *testing.T) { wantPeer(t, sw, "tcp6", fmt.Sprintf("backup.cfgsnap.test:%d", port6), p.SwitchIP6) })
	t.Run("next address after a refusal", func(t *testing.T) {
		wantPeer(t, sw, "tcp", fmt.Sprintf("backup.cfgsnap.test:%d", only6), p.SwitchIP6)
	})
	t.Run("tcp4 without A record", func(t *testing.T) {
		_, err := sw.DialContext(context.Background(), "tcp4", fmt.Sprintf("six.cfgsnap.test:%d", port))
		wantErr(t, err, fail.Deliver, `"six.cfgsnap.test"`, "no such host", conf)
	})
	t.Run("unknown name", func(t *testing.T) {
		_, err := sw.DialContext(context.Background(), "tcp", fmt.Sprintf("nothere.cfgsnap.test:%d", port))
		wantErr(t, err, fail.Deliver, `"nothere.cfgsnap.test"`, "no such host", conf, p.ServerIP.String())
	})
	t.Run("search list", func(t *testing.T) {
		nstest.WriteEtc(t, p.Switch, "resolv.conf", fmt.Sprintf("search cfgsnap.test\nnameserver %s\n", p.ServerIP))
		wantPeer(t, sw, "tcp", fmt.Sprintf("backup:%d", port), p.SwitchIP)
	})
}

// Names resolve with the namespace's own files only, never falling back to
// the host's DNS servers.
func TestNamespaceFilesOnly(t *testing.T) {
	p := nstest.NewPair(t)
	port := listen(t, p.Server, addr(p.ServerIP, 0))
	sw := open(t, p.Switch)
	conf := filepath.Join("/etc/netns", p.Switch, "resolv.conf")
	// Nothing answers on the server's port 53: queries are refused at once.
	nstest.WriteEtc(t, p.Switch, "resolv.conf", fmt.Sprintf("nameserver %s\n", p.ServerIP))

	t.Run("hosts", func(t *testing.T) {
		nstest.WriteEtc(t, p.Switch, "hosts", fmt.Sprintf("# test\n%s files.cfgsnap.test files\n", p.ServerIP))
		wantPeer(t, sw, "tcp", fmt.Sprintf("FILES.cfgsnap.test.:%d", port), p.SwitchIP)
		wantPeer(t, sw, "tcp", fmt.Sprintf("files:%d", port), p.SwitchIP)
	})
	t.Run("failing server", func(t *testing.T) {
		start := time.Now()
		_, err := sw.DialContext(context.Background(), "tcp", fmt.Sprintf("backup.cfgsnap.test:%d", port))
		wantErr(t, err, fail.Deliver, `"backup.cfgsnap.test"`, "DNS server "+p.ServerIP.String()+":53", "refused", conf)
		if strings.Contains(err.Error(), " /etc/resolv.conf") {
			t.Errorf("error mentions the host's resolv.conf: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("failing took %v", d)
		}
	})
	t.Run("host's /etc/hosts not read", func(t *testing.T) {
		if lookupHosts("/etc/hosts", "localhost", true, false) == nil {
			t.Skip("/etc/hosts has no localhost")
		}
		nstest.WriteEtc(t, p.Switch, "hosts", "# nothing\n")
		_, err := sw.DialContext(context.Background(), "tcp4", fmt.Sprintf("localhost:%d", port))
		wantErr(t, err, fail.Deliver, `"localhost"`, filepath.Join("/etc/netns", p.Switch, "hosts"))
	})
}

// Without /etc/netns/NS/hosts, the host's /etc/hosts applies, as with ip netns exec.
func TestHostsFallback(t *testing.T) {
	ns := nstest.NewNS(t)
	if lookupHosts("/etc/hosts", "localhost", true, false) == nil {
		testenv.Need(t, false, "/etc/hosts has no IPv4 localhost")
	}
	port := listen(t, ns, "127.0.0.1:0")
	wantPeer(t, open(t, ns), "tcp4", fmt.Sprintf("localhost:%d", port), netip.MustParseAddr("127.0.0.1"))
}

func TestDialHonoursContext(t *testing.T) {
	p := nstest.NewPair(t)
	sw := open(t, p.Switch)
	// Nobody owns 10.88.0.99: neighbour discovery gives up only after about 3 s.
	nobody := netip.MustParseAddr("10.88.0.99")
	check := func(t *testing.T, host string, parts ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := sw.DialContext(ctx, "tcp", host+":22")
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("DialContext returned after %v with a 300 ms deadline", d)
		}
		wantErr(t, err, fail.Deliver, parts...)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v is not context.DeadlineExceeded", err)
		}
	}
	t.Run("connect", func(t *testing.T) { check(t, nobody.String(), nobody.String()) })
	t.Run("DNS", func(t *testing.T) {
		nstest.WriteEtc(t, p.Switch, "resolv.conf", fmt.Sprintf("nameserver %s\n", nobody))
		check(t, "slow.cfgsnap.test", `"slow.cfgsnap.test"`, filepath.Join("/etc/netns", p.Switch, "resolv.conf"))
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := sw.DialContext(ctx, "tcp", nobody.String()+":22")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v is not context.Canceled", err)
		}
	})
}

// threadNS returns the network namespace of the calling goroutine's thread.
func threadNS(t *testing.T) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // safe: this goroutine changed nothing
	s, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// After many dials, concurrent ones included, no thread of the process is in
// the switch namespace and no goroutine is left over.
func TestNoThreadLeftInNamespace(t *testing.T) {
	p := nstest.NewPair(t)
	port := listen(t, p.Server, addr(p.ServerIP, 0))
	host := threadNS(t)
	sw := open(t, p.Switch)
	goroutines := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				got, err := peer(ctx, sw, "tcp", addr(p.ServerIP, port))
				cancel()
				if err != nil || got != p.SwitchIP {
					t.Errorf("dial: server saw %v, %v; want %s", got, err, p.SwitchIP)
					return
				}
			}
		}()
	}
	wg.Wait()

	if got := threadNS(t); got != host {
		t.Errorf("calling goroutine's thread is in %s, want the host's %s", got, host)
	}
	var lastBad []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		lastBad = threadsNotIn(t, host)
		if len(lastBad) == 0 && runtime.NumGoroutine() <= goroutines || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(lastBad) > 0 {
		t.Errorf("threads outside the host namespace %s after dialing: %s", host, strings.Join(lastBad, ", "))
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after dialing, %d before", n, goroutines)
	}
	// And goroutines scheduled now all run in the host namespace.
	var mu sync.Mutex
	seen := map[string]int{}
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := threadNS(t)
			time.Sleep(time.Millisecond) // keep threads busy so that more are used
			mu.Lock()
			seen[s]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 1 || seen[host] == 0 {
		t.Errorf("goroutines ran in namespaces %v, want only %s", seen, host)
	}
}

// threadsNotIn lists the process's threads whose network namespace is not ns.
func threadsNotIn(t *testing.T, ns string) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, task := range tasks {
		s, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		if s != ns {
			bad = append(bad, task.Name()+" in "+s)
		}
	}
	return bad
}

func TestResolve(t *testing.T) {
	withMgmt := t.TempDir()
	if err := os.WriteFile(filepath.Join(withMgmt, "srbase-mgmt"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		dir, opt, want string
		kind           fail.Kind
		parts          []string
	}{
		{dir: withMgmt, opt: "auto", want: "srbase-mgmt"},
		{dir: empty, opt: "auto", want: ""},
		{dir: withMgmt, opt: "none", want: ""},
		{dir: withMgmt, opt: "srbase-mgmt", want: "srbase-mgmt"},
		{dir: empty, opt: "srbase-mgmt", kind: fail.Usage, parts: []string{`"srbase-mgmt"`, "ip netns list"}},
		{dir: empty, opt: "", kind: fail.Usage, parts: []string{"empty", "ip netns list"}},
		{dir: withMgmt, opt: "../srbase-mgmt", kind: fail.Usage, parts: []string{"not a network namespace name"}},
		{dir: withMgmt, opt: "..", kind: fail.Usage, parts: []string{"not a network namespace name"}},
	} {
		got, err := resolve(tc.dir, tc.opt)
		if tc.kind != 0 {
			wantErr(t, err, tc.kind, tc.parts...)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolve(%s, %q) = %q, %v; want %q", filepath.Base(tc.dir), tc.opt, got, err, tc.want)
		}
	}

	// The real thing, whatever this machine has.
	want := ""
	if _, err := os.Stat("/run/netns/srbase-mgmt"); err == nil {
		want = "srbase-mgmt"
	}
	if got, err := Resolve("auto"); got != want || err != nil {
		t.Errorf(`Resolve("auto") = %q, %v; want %q`, got, err, want)
	}
	_, err := Resolve("cfgsnap-no-such-namespace")
	wantErr(t, err, fail.Usage, `"cfgsnap-no-such-namespace"`, "/run/netns/cfgsnap-no-such-namespace", "ip netns list")

	t.Run("existing", func(t *testing.T) {
		ns := nstest.NewNS(t)
		if got, err := Resolve(ns); got != ns || err != nil {
			t.Errorf("Resolve(%q) = %q, %v", ns, got, err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	_, err := Open("cfgsnap-no-such-namespace")
	wantErr(t, err, fail.Usage, `"cfgsnap-no-such-namespace"`, "ip netns list")
	_, err = Open("../../proc/self/ns/net")
	wantErr(t, err, fail.Usage, "not a network namespace name")
}

// cfgsnap run without root: Open fails at once with a Permission error (exit
// code 7) that says what to do.
func TestOpenWithoutPrivilege(t *testing.T) {
	ns := nstest.NewNS(t)
	// The go tool's build folder is private to root: copy the test binary
	// where user nobody can run it.
	dir, err := os.MkdirTemp("", "cfgsnap-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "netns.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(exe)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childEnv+"="+ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("running as nobody: %v (stderr %q)", err, stderr.String())
	}
	if exit.ExitCode() != int(fail.Permission) {
		t.Errorf("exit code %d, want %d (stderr %q)", exit.ExitCode(), fail.Permission, stderr.String())
	}
	want := "entering network namespace " + ns + ": operation not permitted: run cfgsnap as root (the script's sudo option) or set netns none\n"
	if stderr.String() != want {
		t.Errorf("stderr %q,\nwant %q", stderr.String(), want)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
}

func TestClose(t *testing.T) {
	p := nstest.NewPair(t)
	port := listen(t, p.Server, addr(p.ServerIP, 0))
	sw, err := Open(p.Switch)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sw.DialContext(context.Background(), "tcp", addr(p.ServerIP, port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := sw.DialContext(context.Background(), "tcp", addr(p.ServerIP, port)); !errors.Is(err, errClosed) {
		t.Errorf("dial after Close: %v, want %v", err, errClosed)
	}
	// The connection made before still works.
	if b, err := io.ReadAll(c); err != nil || strings.TrimSpace(string(b)) != p.SwitchIP.String() {
		t.Errorf("reading after Close: %q, %v", b, err)
	}
}
