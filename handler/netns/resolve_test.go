package netns

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestParseResolvConf(t *testing.T) {
	c := parseResolvConf("r", []byte(`# comment
domain ignored.example
search lab.example example.   ; trailing comment
nameserver 10.0.0.53
nameserver fe80::1%mgmt0
nameserver not-an-address
nameserver 10.0.0.54
nameserver 10.0.0.55
options ndots:2 timeout:1 attempts:9 use-vc
`))
	wantServers := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.53:53"),
		netip.MustParseAddrPort("[fe80::1%mgmt0]:53"),
		netip.MustParseAddrPort("10.0.0.54:53"),
	}
	if !reflect.DeepEqual(c.servers, wantServers) {
		t.Errorf("servers %v, want %v (the first three, as libc)", c.servers, wantServers)
	}
	if !reflect.DeepEqual(c.search, []string{"lab.example.", "example."}) {
		t.Errorf("search %q", c.search)
	}
	if c.ndots != 2 || c.timeout != time.Second || c.attempts != 5 || !c.tcp {
		t.Errorf("options ndots %d timeout %v attempts %d tcp %v", c.ndots, c.timeout, c.attempts, c.tcp)
	}
	if got, want := c.names("backup"), []string{"backup.lab.example.", "backup.example.", "backup."}; !reflect.DeepEqual(got, want) {
		t.Errorf("names(backup) = %q, want %q", got, want)
	}
	if got, want := c.names("a.b.c"), []string{"a.b.c.", "a.b.c.lab.example.", "a.b.c.example."}; !reflect.DeepEqual(got, want) {
		t.Errorf("names(a.b.c) = %q, want %q", got, want)
	}
	if got := c.names("abs.example."); !reflect.DeepEqual(got, []string{"abs.example."}) {
		t.Errorf("names(abs.example.) = %q", got)
	}

	d := readResolvConf(filepath.Join(t.TempDir(), "missing"))
	if !d.missing || d.ndots != 1 || d.attempts != 2 || d.timeout != 5*time.Second || d.serverList() != "127.0.0.1,::1" {
		t.Errorf("defaults without a file: %+v", d)
	}
}

func TestLookupHosts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte("10.0.0.5 backup backup.lab # comment\n::ffff:10.0.0.6 backup\nfd00::5 BACKUP.lab.\n#10.0.0.7 backup\nbad backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host         string
		want4, want6 bool
		want         []string
	}{
		{"backup", true, true, []string{"10.0.0.5", "10.0.0.6"}},
		{"Backup.Lab.", true, true, []string{"10.0.0.5", "fd00::5"}},
		{"backup.lab", false, true, []string{"fd00::5"}},
		{"other", true, true, nil},
	} {
		var got []string
		for _, a := range lookupHosts(p, tc.host, tc.want4, tc.want6) {
			got = append(got, a.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("lookupHosts(%q, %v, %v) = %q, want %q", tc.host, tc.want4, tc.want6, got, tc.want)
		}
	}
}
