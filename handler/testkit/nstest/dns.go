package nstest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a running DNS responder: UDP only, answering A and AAAA questions
// from fixed records, NXDOMAIN for other names.
type DNS struct {
	addr    netip.AddrPort
	records map[string][]netip.Addr // by lower-case absolute name

	mu      sync.Mutex
	queries []string
}

// ServeDNS starts a DNS responder at p.ServerIP port 53 inside p.Server, and
// writes /etc/netns/SWITCH/resolv.conf naming it as the only server, so that
// names resolve inside p.Switch the way "ip netns exec" and package netns do
// it, while the host namespace knows nothing of them. records maps host names
// (case-insensitive, trailing dot optional) to their IPv4 (A) and IPv6 (AAAA)
// addresses. The responder stops, and the file goes, when the test ends.
func (p *Pair) ServeDNS(t testing.TB, records map[string][]netip.Addr) *DNS {
	t.Helper()
	d := &DNS{addr: netip.AddrPortFrom(p.ServerIP, 53), records: map[string][]netip.Addr{}}
	for name, addrs := range records {
		n := strings.ToLower(name)
		if !strings.HasSuffix(n, ".") {
			n += "."
		}
		d.records[n] = append(d.records[n], addrs...)
	}
	var conn net.PacketConn
	Do(t, p.Server, func() (err error) {
		conn, err = net.ListenPacket("udp", d.addr.String())
		return err
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve(conn)
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	WriteEtc(t, p.Switch, "resolv.conf", fmt.Sprintf("nameserver %s\n", p.ServerIP))
	return d
}

// Addr returns the address the responder listens on, inside the server namespace.
func (d *DNS) Addr() netip.AddrPort { return d.addr }

// Queries returns the questions received so far, in order, each as the
// absolute name and the type, e.g. "backup.example. A".
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

// serve answers until conn is closed.
func (d *DNS) serve(conn net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := d.answer(buf[:n]); ok {
			conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query; ok is false for what is not one.
func (d *DNS) answer(query []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	d.mu.Lock()
	d.queries = append(d.queries, q.Name.String()+" "+strings.TrimPrefix(q.Type.String(), "Type"))
	d.mu.Unlock()

	addrs, known := d.records[strings.ToLower(q.Name.String())]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	for _, a := range addrs {
		hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(hdr, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, false
		}
	}
	resp, err = b.Finish()
	return resp, err == nil
}
