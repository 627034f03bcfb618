package nstest

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What a command run inside the switch namespace sees, checked with the
// system's own tools, and that nothing is left behind.
func TestPair(t *testing.T) {
	var p *Pair
	t.Run("inside", func(t *testing.T) {
		p = NewPair(t)
		dns := p.ServeDNS(t, map[string][]netip.Addr{"backup.cfgsnap.test": {p.ServerIP6, p.ServerIP}})

		out, err := Command(p.Switch, "ip", "-o", "addr", "show").CombinedOutput()
		if err != nil || !strings.Contains(string(out), " "+p.SwitchIP.String()+"/24 ") || strings.Contains(string(out), p.ServerIP.String()+"/") {
			t.Errorf("addresses in %s: %v\n%s", p.Switch, err, out)
		}
		// glibc's resolver, through the resolv.conf that ip netns exec mounts.
		out, err = Command(p.Switch, "getent", "ahostsv4", "backup.cfgsnap.test").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), p.ServerIP.String()+" ") {
			t.Errorf("getent ahostsv4 backup.cfgsnap.test in %s: %v\n%s", p.Switch, err, out)
		}
		if q := dns.Queries(); len(q) == 0 || !strings.HasPrefix(q[0], "backup.cfgsnap.test. ") {
			t.Errorf("responder got %q", q)
		}
		if _, err := os.Stat("/etc/netns/" + p.Switch + "/resolv.conf"); err != nil {
			t.Error(err)
		}

		l := Listen(t, p.Server, netip.AddrPortFrom(p.ServerIP, 0).String())
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		var got []byte
		Do(t, p.Switch, func() error {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			got = make([]byte, 5)
			_, err = c.Read(got)
			return err
		})
		if string(got) != "hello" {
			t.Errorf("read %q from the server at port %d", got, port)
		}
	})
	if p == nil {
		return
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil || strings.Contains(string(out), p.Switch) || strings.Contains(string(out), p.Server) {
		t.Errorf("after the test, ip netns list: %v\n%s", err, out)
	}
	for _, ns := range []string{p.Switch, p.Server} {
		if _, err := os.Stat(filepath.Join("/etc/netns", ns)); !os.IsNotExist(err) {
			t.Errorf("/etc/netns/%s left behind: %v", ns, err)
		}
	}
	out, _ = exec.Command("ip", "-o", "link").CombinedOutput()
	if strings.Contains(string(out), "cs"+strings.TrimPrefix(p.Switch, prefix)) {
		t.Errorf("veth left in the host namespace:\n%s", out)
	}
}
