package netns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// lookupHosts returns host's addresses from a hosts file (missing file: none),
// of the wanted families, in file order.
func lookupHosts(path, host string, want4, want6 bool) []netip.Addr {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	var addrs []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if a.Is4() && !want4 || a.Is6() && !want6 {
			continue
		}
		for _, h := range f[1:] {
			if strings.EqualFold(strings.TrimSuffix(h, "."), name) {
				addrs = append(addrs, a)
				break
			}
		}
	}
	return addrs
}

// resolvConf is what a resolv.conf says, with glibc's defaults and limits.
type resolvConf struct {
	path     string
	missing  bool             // path does not exist: defaults apply
	servers  []netip.AddrPort // nameserver lines, at most 3 as glibc reads
	search   []string         // absolute suffixes, with a trailing dot
	ndots    int              // options ndots:N
	timeout  time.Duration    // options timeout:N, per query and server
	attempts int              // options attempts:N, rounds over all servers
	tcp      bool             // options use-vc: ask over TCP only
}

// readResolvConf reads path; a missing or unreadable file gives the defaults
// (the local host as server), as libc does.
func readResolvConf(path string) *resolvConf {
	data, err := os.ReadFile(path)
	c := parseResolvConf(path, data)
	c.missing = errors.Is(err, fs.ErrNotExist)
	return c
}

func parseResolvConf(path string, data []byte) *resolvConf {
	c := &resolvConf{path: path, ndots: 1, timeout: 5 * time.Second, attempts: 2}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && len(c.servers) < 3 {
				c.servers = append(c.servers, netip.AddrPortFrom(a.Unmap(), 53))
			}
		case "domain":
			c.search = []string{absolute(f[1])}
		case "search":
			c.search = c.search[:0]
			for _, s := range f[1:] {
				if s != "." {
					c.search = append(c.search, absolute(s))
				}
			}
		case "options":
			for _, o := range f[1:] {
				k, v, _ := strings.Cut(o, ":")
				n, _ := strconv.Atoi(v)
				switch k {
				case "ndots":
					c.ndots = min(max(n, 0), 15)
				case "timeout":
					c.timeout = time.Duration(min(max(n, 1), 30)) * time.Second
				case "attempts":
					c.attempts = min(max(n, 1), 5)
				case "use-vc", "usevc", "tcp":
					c.tcp = true
				}
			}
		}
	}
	if len(c.servers) == 0 {
		c.servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("[::1]:53")}
	}
	return c
}

func absolute(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// describe names the file for messages, saying when it was missing.
func (c *resolvConf) describe() string {
	if c.missing {
		return c.path + " (missing)"
	}
	return c.path
}

func (c *resolvConf) serverList() string {
	s := make([]string, len(c.servers))
	for i, a := range c.servers {
		s[i] = a.Addr().String()
	}
	return strings.Join(s, ",")
}

// names returns the absolute names to ask for host, in order, applying the
// search list and ndots as libc does.
func (c *resolvConf) names(host string) []string {
	if strings.HasSuffix(host, ".") {
		return []string{host}
	}
	abs := host + "."
	early := strings.Count(host, ".") >= c.ndots
	var out []string
	if early {
		out = append(out, abs)
	}
	for _, s := range c.search {
		if len(abs)+len(s) <= 254 {
			out = append(out, abs+s)
		}
	}
	if !early {
		out = append(out, abs)
	}
	return out
}

var (
	errInvalidName = errors.New("invalid host name")
	errNoSuchHost  = errors.New("no such host")    // NXDOMAIN
	errNoData      = errors.New("no such address") // the name exists, without this type
)

// serverError is a server that gave no usable answer: timeout, refusal,
// SERVFAIL, garbage. The next server or name is tried.
type serverError struct {
	server netip.AddrPort
	err    error
}

func (e *serverError) Error() string { return fmt.Sprintf("DNS server %s: %v", e.server, e.err) }
func (e *serverError) Unwrap() error { return e.err }

// lookup asks the servers for host's A records, then AAAA records, under each
// candidate name until one has addresses.
func (c *resolvConf) lookup(ctx context.Context, host string, want4, want6 bool) ([]netip.Addr, error) {
	if !validName(host) {
		return nil, errInvalidName
	}
	var types []dnsmessage.Type
	if want4 {
		types = append(types, dnsmessage.TypeA)
	}
	if want6 {
		types = append(types, dnsmessage.TypeAAAA)
	}
	var serverErr error // kept over "no such host": it says what to fix
	for _, name := range c.names(host) {
		var addrs []netip.Addr
		for _, t := range types {
			a, err := c.query(ctx, name, t)
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
			var se *serverError
			if errors.As(err, &se) {
				serverErr = err
			}
			addrs = append(addrs, a...)
			if errors.Is(err, errNoSuchHost) {
				break // no other type exists either
			}
		}
		if len(addrs) > 0 {
			return addrs, nil
		}
	}
	if serverErr != nil {
		return nil, serverErr
	}
	return nil, errNoSuchHost
}

// ctxErr is ctx.Err(), also once ctx's deadline has passed but its timer has
// not fired yet: a socket deadline set from it may expire first.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// validName accepts what a DNS name may hold: dot-separated labels of 1 to 63
// bytes, at most 253 bytes in all, without spaces or control characters.
func validName(host string) bool {
	h := strings.TrimSuffix(host, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			if r <= ' ' || r == 0x7f {
				return false
			}
		}
	}
	return true
}

// query asks each server in turn, attempts times round, for one name and type.
// An answer, NXDOMAIN or an empty answer ends it; a failing server does not.
func (c *resolvConf) query(ctx context.Context, name string, t dnsmessage.Type) ([]netip.Addr, error) {
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, errInvalidName
	}
	q := dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET}
	var last error
	for range c.attempts {
		for _, srv := range c.servers {
			addrs, err := c.exchange(ctx, srv, q)
			if err == nil || errors.Is(err, errNoSuchHost) || errors.Is(err, errNoData) {
				return addrs, err
			}
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
			last = &serverError{server: srv, err: err}
		}
	}
	return nil, last
}

// exchange asks one server, over UDP then over TCP if the answer was truncated.
// Sockets are created on the calling thread, which is in the namespace.
func (c *resolvConf) exchange(ctx context.Context, srv netip.AddrPort, q dnsmessage.Question) ([]netip.Addr, error) {
	id := uint16(rand.Uint32())
	msg, err := buildQuery(id, q)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var resp []byte
	if !c.tcp {
		resp, err = roundTrip(ctx, "udp", srv, msg, id, q, deadline)
		if err != nil {
			return nil, err
		}
		var p dnsmessage.Parser
		if h, err := p.Start(resp); err == nil && !h.Truncated {
			return answers(resp, q)
		}
	}
	resp, err = roundTrip(ctx, "tcp", srv, msg, id, q, deadline)
	if err != nil {
		return nil, err
	}
	return answers(resp, q)
}

func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 514), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	// Advertise 1232 bytes (the DNS flag day size) so that answers with many
	// addresses still fit in one datagram.
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, err
	}
	// The first two bytes are room for TCP's length prefix.
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	return msg, nil
}

// roundTrip sends msg (with its 2-byte TCP length prefix) and returns the
// matching response. Over UDP, datagrams that do not answer this query are
// ignored: they may be late answers to an earlier one, or forged.
func roundTrip(ctx context.Context, network string, srv netip.AddrPort, msg []byte, id uint16, q dnsmessage.Question, deadline time.Time) ([]byte, error) {
	var d net.Dialer
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := d.DialContext(dctx, network, srv.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Wake a blocked read when ctx ends. AfterFunc's goroutine creates no socket.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if network == "udp" {
		if _, err := conn.Write(msg[2:]); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, err
			}
			if matches(buf[:n], id, q) {
				return buf[:n], nil
			}
		}
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	if !matches(buf, id, q) {
		return nil, errors.New("answer does not match the question")
	}
	return buf, nil
}

// matches reports whether resp is the response to query id asking q.
func matches(resp []byte, id uint16, q dnsmessage.Question) bool {
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil || h.ID != id || !h.Response {
		return false
	}
	rq, err := p.Question()
	return err == nil && rq.Type == q.Type && rq.Class == q.Class && strings.EqualFold(rq.Name.String(), q.Name.String())
}

// answers returns the addresses of type q.Type in a response. CNAME records
// need no following: a recursive server puts the target's records in the same
// answer.
func answers(resp []byte, q dnsmessage.Question) ([]netip.Addr, error) {
	var p dnsmessage.Parser
	h, err := p.Start(resp)
	if err != nil {
		return nil, err
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, errNoSuchHost
	default:
		return nil, fmt.Errorf("answered %s", strings.TrimPrefix(h.RCode.String(), "RCode"))
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for {
		ah, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case ah.Class != dnsmessage.ClassINET || ah.Type != q.Type:
			err = p.SkipAnswer()
		case ah.Type == dnsmessage.TypeA:
			var r dnsmessage.AResource
			if r, err = p.AResource(); err == nil {
				addrs = append(addrs, netip.AddrFrom4(r.A))
			}
		case ah.Type == dnsmessage.TypeAAAA:
			var r dnsmessage.AAAAResource
			if r, err = p.AAAAResource(); err == nil {
				addrs = append(addrs, netip.AddrFrom16(r.AAAA))
			}
		default:
			err = p.SkipAnswer()
		}
		if err != nil {
			return nil, err
		}
	}
	if len(addrs) == 0 {
		return nil, errNoData
	}
	return addrs, nil
}
