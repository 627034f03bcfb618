package handler

import (
	"context"
	"net"

	"github.com/cfgsnap/cfgsnap/handler/netns"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// network is the management namespace, opened once per run. An error opening it
// is kept and returned by every dial, so the configuration is still captured and
// spooled when only delivery is impossible.
type network struct {
	ns  *netns.Net
	err error
}

func openNet(c *option.Config) *network {
	name, err := netns.Resolve(c.NetNS)
	if err != nil {
		return &network{err: err}
	}
	ns, err := netns.Open(name)
	return &network{ns: ns, err: err}
}

func (n *network) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.err != nil {
		return nil, n.err
	}
	return n.ns.DialContext(ctx, network, addr)
}

func (n *network) close() {
	if n != nil && n.ns != nil {
		n.ns.Close()
	}
}
