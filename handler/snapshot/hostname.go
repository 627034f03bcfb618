package snapshot

import (
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// maxDepth bounds nesting while skipping values. The decoder keeps one entry
// per open bracket, so without a bound a stream of '[' would use memory in
// proportion to its length; SR Linux configurations nest a few dozen levels.
const maxDepth = 10000

// HostName returns the value of system > name > host-name in a JSON
// configuration read from r, or "" if the configuration has none (the caller
// then falls back to the operating system's host name).
//
// It accepts the shapes SR Linux produces: /etc/opt/srlinux/config.json and
// checkpoints (with "_preamble"), `info from running / | as json`, and a
// JSON-RPC response, whose "result" array holds configurations. Keys match with
// or without a module prefix, e.g. "srl_nokia-system:system" >
// "srl_nokia-system-name:name" > "host-name".
//
// It reads r as a token stream and stops at the host name, so memory stays
// constant however large the configuration is; only one JSON string at a time
// is held. The value is returned as found: Name sanitises it.
func HostName(r io.Reader) (string, error) {
	d := &walker{dec: json.NewDecoder(r)}
	d.dec.UseNumber() // numbers are skipped: keep them as text, do not parse them
	host, _, err := d.root()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", fail.New(fail.Source, "reading the host name: the configuration is not valid JSON (at byte %d: %v); check the source's output", d.dec.InputOffset(), err)
	}
	return host, nil
}

// walker descends only along the paths that can lead to the host name and
// skips everything else token by token.
type walker struct {
	dec *json.Decoder
}

// root reads the top-level value: a configuration object, a JSON-RPC response
// object whose "result" holds configurations, or an array of configurations.
func (w *walker) root() (string, bool, error) {
	t, err := w.dec.Token()
	if err != nil {
		return "", false, err
	}
	switch t {
	case json.Delim('{'):
		return w.object(func(key string) (string, bool, error) {
			switch {
			case key == "result":
				return w.configs()
			case local(key) == "system":
				return w.path("name", "host-name")
			}
			return "", false, w.skip()
		})
	case json.Delim('['):
		return w.elements(w.config)
	}
	return "", false, nil // a scalar: valid JSON, but no configuration
}

// configs reads an array of configurations (or skips any other value).
func (w *walker) configs() (string, bool, error) {
	t, err := w.dec.Token()
	if err != nil {
		return "", false, err
	}
	if t != json.Delim('[') {
		return "", false, w.skipRest(t)
	}
	return w.elements(w.config)
}

// config reads one configuration object (or skips any other value).
func (w *walker) config() (string, bool, error) {
	return w.path("system", "name", "host-name")
}

// path reads the next value and, if it is an object, follows keys (compared
// without module prefix) down to a string.
func (w *walker) path(keys ...string) (string, bool, error) {
	t, err := w.dec.Token()
	if err != nil {
		return "", false, err
	}
	if len(keys) == 0 {
		if s, ok := t.(string); ok {
			return s, true, nil
		}
		return "", false, w.skipRest(t) // not a string: as if absent
	}
	if t != json.Delim('{') {
		return "", false, w.skipRest(t)
	}
	return w.object(func(key string) (string, bool, error) {
		if local(key) == keys[0] {
			return w.path(keys[1:]...)
		}
		return "", false, w.skip()
	})
}

// object calls member for each key of an object whose '{' was read; member
// consumes the value. It stops early when member finds the host name.
func (w *walker) object(member func(key string) (string, bool, error)) (string, bool, error) {
	for w.dec.More() {
		t, err := w.dec.Token()
		if err != nil {
			return "", false, err
		}
		key, _ := t.(string) // the decoder only returns strings in key position
		if host, ok, err := member(key); ok || err != nil {
			return host, ok, err
		}
	}
	_, err := w.dec.Token() // '}'
	return "", false, err
}

// elements calls elem for each element of an array whose '[' was read.
func (w *walker) elements(elem func() (string, bool, error)) (string, bool, error) {
	for w.dec.More() {
		if host, ok, err := elem(); ok || err != nil {
			return host, ok, err
		}
	}
	_, err := w.dec.Token() // ']'
	return "", false, err
}

// skip consumes the next value whole.
func (w *walker) skip() error {
	t, err := w.dec.Token()
	if err != nil {
		return err
	}
	return w.skipRest(t)
}

// skipRest consumes the rest of a value whose first token was t, without
// recursion, so that nesting costs no stack.
func (w *walker) skipRest(t json.Token) error {
	depth := 0
	for {
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxDepth {
				return errors.New("nested more than 10000 levels deep")
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
		var err error
		if t, err = w.dec.Token(); err != nil {
			return err
		}
	}
}

// local strips a YANG module prefix: "srl_nokia-system:system" -> "system".
func local(key string) string {
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		return key[i+1:]
	}
	return key
}
