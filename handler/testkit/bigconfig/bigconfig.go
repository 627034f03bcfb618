// Package bigconfig grows a real SR Linux configuration to the size of the
// largest switches', so that tests and benchmarks can show speed and memory on
// 100 MiB without a 100 MiB fixture.
package bigconfig

import (
	"encoding/json"
	"io"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// New streams a configuration of about size bytes without holding it: the real
// interfaces of leaf11 repeated, then system > name > host-name set to host,
// last, as in config.json where keys are sorted and "srl_nokia-system:system"
// comes after the interfaces; so a reader after the host name reads it all.
func New(t testing.TB, size int, host string) io.Reader {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(testenv.ReadFixture(t, "srl-config-dcf-leaf11.json"), &m); err != nil {
		t.Fatal(err)
	}
	var ifs []json.RawMessage
	if err := json.Unmarshal(m["srl_nokia-interfaces:interface"], &ifs); err != nil {
		t.Fatal(err)
	}
	var body []byte // a real list of interfaces
	for i, v := range ifs {
		if i > 0 {
			body = append(body, ",\n"...)
		}
		body = append(body, v...)
	}
	hostJSON, err := json.Marshal(host)
	if err != nil {
		t.Fatal(err)
	}
	head := []byte(`{"_preamble":` + string(m["_preamble"]) + `,"srl_nokia-interfaces:interface":[` + string(body))
	more := append([]byte(",\n"), body...)
	tail := []byte(`],"srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":` + string(hostJSON) + `}}}` + "\n")
	reps := max(0, (size-len(head)-len(tail)+len(more)-1)/len(more))
	return &stream{head: head, more: more, tail: tail, reps: reps, cur: head}
}

// Bytes returns the configuration New streams, whole, for benchmarks that must
// time the parser rather than the generator.
func Bytes(t testing.TB, size int, host string) []byte {
	t.Helper()
	b, err := io.ReadAll(New(t, size, host))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type stream struct {
	head, more, tail []byte
	reps             int // copies of more still to come
	cur              []byte
	tailDone         bool
}

func (s *stream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		switch {
		case s.reps > 0:
			s.reps--
			s.cur = s.more
		case !s.tailDone:
			s.tailDone = true
			s.cur = s.tail
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}
