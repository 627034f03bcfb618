// Package redact replaces the secrets of an SR Linux JSON configuration with
// markers as it streams to the spool, so that password hashes, TLS private
// keys, SNMP communities and routing protocol keys never leave the switch
// (option redact).
//
// A redacted string value becomes
//
//	"$cfgsnap-redacted$hmac-sha256:<64 hex digits>"
//
// the HMAC-SHA256, keyed with option redact-key-file's secret, of the value as
// encoding/json decodes it. The same secret gives the same marker in every
// snapshot taken with the same key, so a diff still shows that a secret
// changed, and when, without showing it; without the key nobody can test a
// guess against the marker. The output is still JSON, and every byte that is
// not a redacted value is kept as it came.
//
// A path names object members from the top, without list keys and module
// prefixes: "system/aaa/authentication/user/password" matches
// "srl_nokia-system:system" > "srl_nokia-aaa:aaa" > ... > each entry of the
// user list > "password". A list (a JSON array) adds nothing to a path. A
// path that names an object or array redacts every string below it. Numbers,
// booleans and null at a redacted path are kept: no SR Linux secret is one
// (their YANG types are strings), and a marker would change the value's type
// for nothing.
//
// A Writer holds the keys along the way and one redacted value at most, never
// the configuration: memory stays constant however large it is. A redacted
// value longer than jsonscan.MaxCapture, or a configuration that is not JSON,
// is an error, never a value let through.
package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/jsonscan"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/secret"
)

// Marker begins every redacted value.
const Marker = "$cfgsnap-redacted$hmac-sha256:"

// Default is what option redact's value "default" stands for: the secrets an
// SR Linux configuration holds, from Nokia's YANG models (types user-password
// and routing-password, private keys, SNMP communities). Routing protocols
// (BGP, OSPF, IS-IS, LDP) name a keychain; the keys are in the keychain.
var Default = []string{
	"system/aaa/authentication/user/password",
	"system/aaa/authentication/admin-user/password",
	"system/aaa/authentication/linuxadmin-user/password",
	"system/aaa/server-group/server/radius/secret-key",
	"system/aaa/server-group/server/tacacs/secret-key",
	"system/authentication/keychain/key/authentication-key",
	"system/tls/server-profile/key",
	"system/snmp/access-group/community-entry/community",
	"system/snmp/trap-group/destination/community-entry/community",
}

// MinKey is the shortest key option redact-key-file may hold: a short one
// could be guessed, and with it every secret tested against its marker.
const MinKey = 16

// Rules are the paths to redact and the key of their markers.
type Rules struct {
	root  *node
	key   []byte
	paths []string
}

// node is one member name along the paths; secret marks where a path ends.
type node struct {
	children map[string]*node
	secret   bool
}

// FromOptions returns the Rules that option redact and redact-key-file set,
// or nil when redaction is off. Errors are one line, fail.Usage (or
// fail.Permission for a key file cfgsnap may not read).
func FromOptions(c *option.Config) (*Rules, error) {
	paths := Paths(c.Redact)
	if len(paths) == 0 {
		return nil, nil
	}
	if c.RedactKeyFile == "" {
		return nil, fail.New(fail.Usage, "option redact is set and redact-key-file is not: put a random key in a file (head -c 32 /dev/urandom | base64 > /etc/opt/srlinux/cfgsnap/redact.key) and set redact-key-file to it, or set redact none")
	}
	key, _, err := secret.Read("option redact-key-file", c.RedactKeyFile, "")
	if err != nil {
		return nil, err
	}
	if len(key) < MinKey {
		return nil, fail.New(fail.Usage, "option redact-key-file %s holds a key of %d bytes, fewer than %d: put a random one in it (head -c 32 /dev/urandom | base64)", c.RedactKeyFile, len(key), MinKey)
	}
	return New(paths, []byte(key)), nil
}

// Paths expands option redact's values: "default" stands for Default; the
// result holds each path once, in order.
func Paths(vals []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vals {
		expand := []string{v}
		if v == "default" {
			expand = Default
		}
		for _, p := range expand {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// New returns the Rules for paths, as option redact checks them, with key.
func New(paths []string, key []byte) *Rules {
	r := &Rules{root: &node{}, key: key, paths: paths}
	for _, p := range paths {
		n := r.root
		for name := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
			if n.children == nil {
				n.children = map[string]*node{}
			}
			if n.children[name] == nil {
				n.children[name] = &node{}
			}
			n = n.children[name]
		}
		n.secret = true
	}
	return r
}

// Paths are the paths the Rules redact.
func (r *Rules) Paths() []string { return r.paths }

// Writer redacts the configuration written to it and writes the rest to the
// writer underneath, as it comes. Call End once the configuration is whole.
type Writer struct {
	out   io.Writer
	rules *Rules
	scan  jsonscan.Scanner
	stack []*node // the node of each open container Begin followed, outermost first
	mac   hash.Hash

	p       []byte // the running Write's input
	base    int64  // offset of p in the input
	emitted int64  // input before it is written out or replaced
	start   int64  // offset of the redacted string being read, or -1
	count   int
	sum     [sha256.Size]byte
	marker  []byte
}

// Writer returns a Writer that writes the redacted configuration to out.
func (r *Rules) Writer(out io.Writer) *Writer {
	w := &Writer{out: out, rules: r, mac: hmac.New(sha256.New, r.key), start: -1}
	w.scan.Begin, w.scan.Text = w.begin, w.text
	return w
}

// Count is how many values the Writer has replaced.
func (w *Writer) Count() int { return w.count }

// Write redacts p as the continuation of what was written before.
func (w *Writer) Write(p []byte) (int, error) {
	w.p, w.base = p, w.scan.Offset()
	n, err := w.scan.Write(p)
	if err != nil {
		return n, w.wrap(err)
	}
	if w.start < 0 {
		if err := w.flush(w.base + int64(len(p))); err != nil {
			return n, err
		}
	}
	return n, nil
}

// End says that the configuration is over: it is an error unless it was one
// JSON document with every redacted value replaced.
func (w *Writer) End() error {
	if err := w.scan.End(); err != nil {
		return w.wrap(err)
	}
	if w.start >= 0 {
		return w.tooLong()
	}
	return nil
}

func (w *Writer) wrap(err error) error {
	if _, ok := err.(*jsonscan.SyntaxError); ok {
		return fail.New(fail.Source, "redacting the configuration: it is not JSON (%v): redaction needs SR Linux's JSON configuration; set redact none to keep one that is not", err)
	}
	return err
}

func (w *Writer) tooLong() error {
	return fail.New(fail.Source, "redacting the configuration: the value at byte %d, on a redacted path, is longer than %d bytes: it is not a secret cfgsnap can replace; narrow option redact", w.start, jsonscan.MaxCapture)
}

// flush writes the input from emitted up to to, all within the running Write.
func (w *Writer) flush(to int64) error {
	if from := w.emitted; from < to {
		w.emitted = to
		if _, err := w.out.Write(w.p[from-w.base : to-w.base]); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) begin(depth int, key []byte, first byte) (jsonscan.Action, error) {
	if w.start >= 0 { // the redacted string ended without Text: it was too long
		return jsonscan.Skip, w.tooLong()
	}
	n := w.rules.root
	if depth > 0 {
		switch parent := w.stack[depth-1]; {
		case parent.secret, key == nil: // below a redacted path, or a list's entry
			n = parent
		default:
			n = parent.children[string(local(key))]
		}
	}
	switch {
	case n == nil:
		return jsonscan.Skip, nil
	case first == '{' || first == '[':
		w.stack = append(w.stack[:depth], n)
		return jsonscan.Follow, nil
	case first == '"' && n.secret:
		at := w.scan.Pos()
		if err := w.flush(at); err != nil {
			return jsonscan.Skip, err
		}
		w.start = at
		return jsonscan.Follow, nil
	}
	return jsonscan.Skip, nil
}

// text replaces the redacted string that ends here with its marker.
func (w *Writer) text(value []byte) error {
	w.mac.Reset()
	w.mac.Write(value)
	w.marker = append(append(w.marker[:0], '"'), Marker...)
	w.marker = hex.AppendEncode(w.marker, w.mac.Sum(w.sum[:0]))
	w.marker = append(w.marker, '"')
	w.start, w.emitted = -1, w.scan.Pos()+1
	w.count++
	if _, err := w.out.Write(w.marker); err != nil {
		return err
	}
	return nil
}

// local is a member name without its module prefix: "srl_nokia-aaa:password"
// is "password".
func local(key []byte) []byte {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == ':' {
			return key[i+1:]
		}
	}
	return key
}
