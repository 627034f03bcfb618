package source

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cfgsnap/cfgsnap/handler/testkit/bigconfig"
)

func TestCopyJSON(t *testing.T) {
	for _, c := range []struct{ in, bad string }{
		{"{\"a\":[1,{}]}\n", ""},
		{" \r\n\t{}", ""},
		{"", "it is empty"},
		{" \n", "it is empty"},
		{"Error: Path '/' is not valid in this context\n", "at byte 0: expected a value, found 'E'"},
		{`["a"]`, "it starts with an array, not with a JSON object"},
		{`"{}"`, "it starts with a string, not with a JSON object"},
		{`  12`, "it starts with a number, not with a JSON object"},
		{`true`, "it starts with a boolean, not with a JSON object"},
		{"{}\n{}\n", "more follows the JSON object: at byte 3:"},
		{`{} x`, "more follows the JSON object: at byte 3:"},
		{`{"interface": [{"name": "ethernet-1/1"`, "at byte 38: the input ends inside an object"},
		{`{"a":1,}`, "at byte 7: expected a string key after ','"},
	} {
		var out bytes.Buffer
		writeErr, badJSON := copyJSON(&out, strings.NewReader(c.in))
		if writeErr != nil {
			t.Errorf("%q: writeErr %v, want none", c.in, writeErr)
		}
		switch {
		case c.bad == "" && badJSON != nil:
			t.Errorf("%q: badJSON %v, want none", c.in, badJSON)
		case c.bad != "" && (badJSON == nil || !strings.Contains(badJSON.Error(), c.bad)):
			t.Errorf("%q: badJSON %v, want one saying %q", c.in, badJSON, c.bad)
		case c.bad == "" && out.String() != c.in:
			t.Errorf("%q: copied %q, want it byte for byte", c.in, out.String())
		}
	}
}

// A failing destination is the destination's fault, whatever the input holds.
func TestCopyJSONWriteError(t *testing.T) {
	full := errors.New("no space left on device")
	for _, in := range []string{`{"a":"` + strings.Repeat("x", 100<<10) + `"}`, "not JSON"} {
		writeErr, badJSON := copyJSON(failingWriter{full}, strings.NewReader(in))
		if writeErr != full || badJSON != nil {
			t.Errorf("%.10q...: copyJSON = %v, %v; want the destination's error alone", in, writeErr, badJSON)
		}
	}
}

func TestCopyJSONReadError(t *testing.T) {
	broken := errors.New("broken pipe")
	r := io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(broken))
	if writeErr, badJSON := copyJSON(io.Discard, r); writeErr != nil || badJSON != broken {
		t.Errorf("copyJSON = %v, %v; want the read error as bad input", writeErr, badJSON)
	}
}

// BenchmarkCopyJSON copies a 50 MiB configuration, the size of a large switch's.
func BenchmarkCopyJSON(b *testing.B) {
	cfg := bigconfig.Bytes(b, 50<<20, "big-leaf")
	b.SetBytes(int64(len(cfg)))
	for b.Loop() {
		if writeErr, badJSON := copyJSON(io.Discard, bytes.NewReader(cfg)); writeErr != nil || badJSON != nil {
			b.Fatalf("copyJSON = %v, %v", writeErr, badJSON)
		}
	}
}
