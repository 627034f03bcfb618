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
	f := &hostFinder{}
	scan := &jsonscan.Scanner{Begin: f.begin, Text: f.text}
	buf := make([]byte, 64<<10)
	for {
		n, readErr := r.Read(buf)
		_, err := scan.Write(buf[:n])
		if err == errFound {
			return f.host, nil
		}
		if scan.Done() {
			// Whatever follows the configuration, even a syntax error, is
			// none of the host name's business.
			return "", nil
		}
		if err == nil && readErr != nil {
			err = readErr
			if readErr == io.EOF {
				err = scan.End() // nil only for a number at the top: no configuration
			}
			if err == nil {
				return "", nil
			}
		}
		if err != nil {
			var syntax *jsonscan.SyntaxError
			if !errors.As(err, &syntax) {
				syntax = &jsonscan.SyntaxError{Offset: scan.Offset(), Problem: err.Error()}
			}
			return "", fail.New(fail.Source, "reading the host name: the configuration is not valid JSON (%v); check the source's output", syntax)
		}
	}
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
