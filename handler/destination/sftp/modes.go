package sftp

import (
	"encoding/binary"
	"io"
	"slices"
)

// SFTP version 3 (draft-ietf-secsh-filexfer-02), as far as createModes reads it.
const (
	fxpOpen          = 3
	fxpMkdir         = 14
	fxfCreat         = 0x08
	attrPermissions  = 0x04
	maxCreatePacket  = 64 << 10 // more than any path; a larger packet is passed on as it is
	packetHeaderSize = 5        // uint32 length, byte type
)

// createModes passes an SFTP client's requests on to the server and gives
// those that create a file or a folder the mode it must have from the start:
// 0600 for SSH_FXP_OPEN with SSH_FXF_CREAT, 0700 for SSH_FXP_MKDIR.
//
// The protocol carries the mode in these requests, and OpenSSH's sftp-server
// creates with it (less its umask), but github.com/pkg/sftp (v1.13) sends
// them without attributes: the server then creates with its defaults, 0644
// and 0755 under the usual umask, and until a chmod another user could open
// the file and read, through that descriptor, all that is written later.
//
// Requests that carry attributes already, and all others, pass unchanged.
// The client writes one request at a time (pkg/sftp holds a lock for each).
type createModes struct {
	w    io.WriteCloser
	head []byte // the start of the request being read, not yet passed on
	size int    // the size of the request held whole in head; 0 while unknown
	pass int    // what is left of a request being passed on as it is
}

func (c *createModes) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if c.pass > 0 {
			k := min(c.pass, len(p))
			if _, err := c.w.Write(p[:k]); err != nil {
				return 0, err
			}
			c.pass, p = c.pass-k, p[k:]
			continue
		}
		want := max(c.size, packetHeaderSize)
		k := min(want-len(c.head), len(p))
		c.head, p = append(c.head, p[:k]...), p[k:]
		if len(c.head) < want {
			continue
		}
		if c.size == 0 {
			size := 4 + int(binary.BigEndian.Uint32(c.head))
			if t := c.head[4]; (t == fxpOpen || t == fxpMkdir) && size > packetHeaderSize && size <= maxCreatePacket {
				c.size = size // read it whole first
				continue
			}
			// The header and what is here of the body go in one write: each
			// write is an SSH message of its own, and a 5-byte one per 32 KiB
			// request halved the throughput of large snapshots.
			c.pass = max(size-packetHeaderSize, 0)
			k := min(c.pass, len(p))
			c.head, p, c.pass = append(c.head, p[:k]...), p[k:], c.pass-k
		} else {
			c.head, c.size = withMode(c.head), 0
		}
		if _, err := c.w.Write(c.head); err != nil {
			return 0, err
		}
		c.head = c.head[:0]
	}
	return n, nil
}

// Close ends the requests.
func (c *createModes) Close() error { return c.w.Close() }

// withMode returns request req, a whole SSH_FXP_OPEN or SSH_FXP_MKDIR, with
// the mode of what it creates among its attributes, if it creates something
// and has no attributes; otherwise req as it is.
func withMode(req []byte) []byte {
	b := req[packetHeaderSize+4:] // after the request id
	if len(b) < 4 || uint64(len(b)-4) < uint64(binary.BigEndian.Uint32(b)) {
		return req
	}
	b = b[4+binary.BigEndian.Uint32(b):] // after the path
	mode := uint32(0o700)
	if req[4] == fxpOpen {
		if len(b) < 4 || binary.BigEndian.Uint32(b)&fxfCreat == 0 {
			return req
		}
		b, mode = b[4:], 0o600
	}
	if len(b) != 4 || binary.BigEndian.Uint32(b) != 0 { // attribute flags
		return req
	}
	out := slices.Clone(req[:len(req)-4])
	out = binary.BigEndian.AppendUint32(out, attrPermissions)
	out = binary.BigEndian.AppendUint32(out, mode)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
