package snapshot

import (
	"bytes"
	"errors"
	"io"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/jsonscan"
)

// HostName returns the value of system > name > host-name in a JSON
// configuration read from r, or "" if the configuration has none (the caller
// then falls back to the operating system's host name).
//
// It accepts the shapes SR Linux produces: /etc/opt/srlinux/config.json and
// checkpoints (with "_preamble"), `info from running / | as json`, and a
// JSON-RPC response, whose "result" array holds configurations. Keys match with
// or without a module prefix, e.g. "srl_nokia-system:system" >
// "srl_nokia-system-name:name" > "host-name". The first host-name that is a
// string wins; one of another type counts as absent.
//
// It checks the JSON as it reads and stops at the host name, or at the end of
// the top-level value, without looking at what follows. Memory stays constant
// however large the configuration is: only the keys along the way and the host
// name are held, and a key or host name longer than jsonscan.MaxCapture bytes
// counts as absent. The value is returned as found: Name sanitises it.
func HostName(r io.Reader) (string, error) {
	f := NewHostFinder()
	buf := make([]byte, 64<<10)
	for !f.settled() {
		n, err := r.Read(buf)
		f.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil && f.err == nil {
			f.err = &jsonscan.SyntaxError{Offset: f.scan.Offset(), Problem: err.Error()}
		}
	}
	return f.Host()
}

// HostFinder is HostName for a configuration on its way elsewhere: written to
// beside the spool file (io.MultiWriter), it finds the host name without a
// second read. Write never fails, so the other writer is never cut short;
// what follows the host name, or a syntax error, is passed over unread.
type HostFinder struct {
	find hostFinder
	scan jsonscan.Scanner
	err  error // errFound, or why the configuration is not JSON
}

// NewHostFinder returns a HostFinder at the start of a configuration.
func NewHostFinder() *HostFinder {
	f := &HostFinder{}
	f.scan.Begin, f.scan.Text = f.find.begin, f.find.text
	return f
}

// Write scans p for the host name and always accepts all of it.
func (f *HostFinder) Write(p []byte) (int, error) {
	if !f.settled() {
		_, f.err = f.scan.Write(p)
	}
	return len(p), nil
}

// settled says whether the rest of the input can change nothing: the host name
// is found, the configuration has ended, or it is not JSON.
func (f *HostFinder) settled() bool { return f.err != nil || f.scan.Done() }

// Host returns what HostName does for the bytes written so far, taken as the
// whole configuration.
func (f *HostFinder) Host() (string, error) {
	switch {
	case f.err == errFound:
		return f.find.host, nil
	case f.scan.Done(): // whatever follows the configuration is none of the host name's business
		return "", nil
	case f.err == nil:
		if f.err = f.scan.End(); f.err == nil {
			return "", nil // a number at the top: no configuration
		}
	}
	var syntax *jsonscan.SyntaxError
	if !errors.As(f.err, &syntax) {
		syntax = &jsonscan.SyntaxError{Offset: f.scan.Offset(), Problem: f.err.Error()}
	}
	return "", fail.New(fail.Source, "reading the host name: the configuration is not valid JSON (%v); check the source's output", syntax)
}

// errFound stops the scan at the host name.
var errFound = errors.New("found the host name")

// place is where a value stands on a path that can lead to the host name.
type place uint8

const (
	elsewhere place = iota
	atTop           // a configuration, a JSON-RPC response, or an array of configurations
	atResult        // a JSON-RPC response's "result": an array of configurations
	atConfig        // a configuration in an array
	atSystem
	atName
	atHostName
)

// hostFinder follows, through the scanner's hooks, only the values that can
// lead to the host name: the scanner skips everything else unread.
type hostFinder struct {
	// open[d] is the place of the followed object or array at depth d, and
	// array[d] whether it is an array; the host name lies at depth 5 at most.
	open  [5]place
	array [5]bool
	host  string
}

func (f *hostFinder) begin(depth int, key []byte, first byte) (jsonscan.Action, error) {
	at := atTop
	if depth > 0 {
		at = f.member(depth-1, key)
	}
	follow := false
	switch at {
	case atTop:
		follow = first == '{' || first == '['
	case atResult:
		follow = first == '['
	case atConfig, atSystem, atName:
		follow = first == '{'
	case atHostName:
		follow = first == '"'
	}
	if !follow {
		return jsonscan.Skip, nil
	}
	if at != atHostName {
		f.open[depth], f.array[depth] = at, first == '['
	}
	return jsonscan.Follow, nil
}

// member places a member or element of the followed container at depth d.
func (f *hostFinder) member(d int, key []byte) place {
	if f.array[d] {
		return atConfig // the only arrays followed hold configurations
	}
	switch f.open[d] {
	case atTop:
		if string(key) == "result" {
			return atResult
		}
		fallthrough
	case atConfig:
		if string(local(key)) == "system" {
			return atSystem
		}
	case atSystem:
		if string(local(key)) == "name" {
			return atName
		}
	case atName:
		if string(local(key)) == "host-name" {
			return atHostName
		}
	}
	return elsewhere
}

func (f *hostFinder) text(host []byte) error {
	f.host = string(host)
	return errFound
}

// local strips a YANG module prefix: "srl_nokia-system:system" -> "system".
func local(key []byte) []byte {
	return key[bytes.LastIndexByte(key, ':')+1:]
}
