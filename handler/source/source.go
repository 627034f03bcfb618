// Package source reads what a snapshot is made of from the switch: the running
// configuration, streamed as JSON, and the "system configuration commit" list that
// says who changed it and when.
//
// Open picks the way in from option source: the sr_cli executable, the JSON-RPC
// server (over TCP inside the management namespace, or its unix socket), or a file
// such as the auto-checkpoint. Read then reads the configuration between two
// readings of the commit list, so that a snapshot names exactly the commits
// whose changes it holds.
package source

import (
	"context"
	"io"
	"net"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Source reads the running configuration and the commit list of one switch.
//
// WriteConfig streams: when it fails, w may already hold part of a configuration,
// which the caller must discard.
type Source interface {
	// WriteConfig streams the running configuration, as JSON, to w.
	WriteConfig(ctx context.Context, w io.Writer) error
	// Commits returns the commit list, oldest first; (nil, nil) when the source has none.
	Commits(ctx context.Context) ([]snapshot.Commit, error)
}

// Open returns the source that option source names in c:
//
//	sr_cli     runs c.SRCLI for the configuration and the commit list; the
//	           configuration is sr_cli's output byte for byte
//	jsonrpc    asks the JSON-RPC server at c.JSONRPCURL, or on c.JSONRPCSocket,
//	           with basic auth; the configuration is the server's result
//	           indented by two spaces and ending in a newline, so that diffs
//	           between snapshots show one changed value per line
//	file:PATH  streams the file at PATH byte for byte; commits come from sr_cli
//	           where c.SRCLI exists, else there are none (and the user is unknown)
//
// Every source checks that the configuration is one JSON object.
//
// dial reaches the JSON-RPC server inside the management network namespace;
// nil means a plain net.Dialer. Only jsonrpc over TCP uses it.
func Open(c *option.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (Source, error) {
	switch s := c.Source; {
	case s == "sr_cli":
		return &srCLI{bin: c.SRCLI}, nil
	case s == "jsonrpc":
		return newJSONRPC(c, dial)
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		// file:///etc/... is how people write file URLs; file:/etc/... is the documented form.
		if strings.HasPrefix(p, "///") {
			p = p[2:]
		}
		if p == "" || strings.HasPrefix(p, "//") {
			return nil, fail.New(fail.Usage, "option source %q names no file: write file:/path/to/config.json", s)
		}
		return &file{path: p, commits: &srCLI{bin: c.SRCLI}}, nil
	default:
		return nil, fail.New(fail.Usage, "option source %q is not one of sr_cli, jsonrpc or file:PATH (e.g. file:/etc/opt/srlinux/checkpoint/checkpoint-0.json)", s)
	}
}

// firstLine returns the first non-blank line of b, trimmed and cut to a length that
// keeps an error message on one readable line.
func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			const max = 200
			if len(l) > max {
				l = l[:max] + "..."
			}
			return l
		}
	}
	return ""
}

// headBuffer keeps the first n bytes written to it and discards the rest, so that
// a chatty child process can neither block on a full pipe nor fill our memory.
type headBuffer struct {
	n   int
	buf []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.n - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
