package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/bigconfig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// scanChunks writes data to s in pieces whose sizes come from seed (seed 0:
// one piece), then ends the input.
func scanChunks(s *Scanner, data []byte, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	for len(data) > 0 {
		n := len(data)
		if seed != 0 {
			n = min(n, 1+rng.IntN(17))
		}
		if _, err := s.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return s.End()
}

func scan(data []byte) error { return scanChunks(&Scanner{}, data, 0) }

func TestValid(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, ` { } `, "\t\r\n[\n]\n", `""`, `0`, `-0`, `1.5e-7`, `-12.0E+3`, `1E9`, `true`, `false`, `null`,
		`{"a":1,"b":[true,false,null,"x",{"c":{}}],"d":-0.5}`,
		`"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`,
		"\"\xff invalid UTF-8 passes, as in encoding/json\x7f\"",
		`[[[[[[[[[[1]]]]]]]]]]`,
		`{"srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":"leaf1"}}}` + "\n",
	} {
		if err := scan([]byte(doc)); err != nil {
			t.Errorf("%q: %v, want valid", doc, err)
		}
		if !json.Valid([]byte(doc)) {
			t.Errorf("%q: the test is wrong: encoding/json rejects it", doc)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct {
		doc     string
		offset  int64
		problem string
	}{
		{``, 0, "empty"},
		{"  \n", 3, "empty"},
		{`Error: Path '/' is not valid`, 0, "expected a value, found 'E'"},
		{`{}{}`, 2, "found '{' after the top-level value"},
		{"{}\n{}\n", 3, "after the top-level value"},
		{`{"a":1`, 6, "ends inside an object"},
		{`[1,`, 3, "ends inside an array"},
		{`{"a`, 3, "ends inside a string"},
		{`{"a":"\u12`, 10, "ends inside a string"},
		{`[tru`, 4, `ends inside "true"`},
		{`[-`, 2, "ends inside a number"},
		{`1.`, 2, "ends inside a number"},
		{`{"a" 1}`, 5, "expected ':' after an object key, found '1'"},
		{`{"a":1 "b":2}`, 7, "expected ',' or '}' after an object member"},
		{`[1 2]`, 3, "expected ',' or ']' after an array element"},
		{`{"a":1,}`, 7, "expected a string key after ','"},
		{`{1:2}`, 1, "expected a string key or '}'"},
		{`[1,]`, 3, "expected a value, found ']'"},
		{`[}`, 1, "expected a value, found '}'"},
		{`{]`, 1, "expected a string key or '}'"},
		{`{"a":1]`, 6, "expected ',' or '}'"},
		{"\"a\nb\"", 2, "control character byte 0x0A inside a string"},
		{`"\x"`, 2, `invalid escape: 'x' after a backslash`},
		{`"\u12g4"`, 5, "expected a hex digit in a \\u escape, found 'g'"},
		{`01`, 1, "found '1' after the top-level value"},
		{`-a`, 1, "expected a digit after '-'"},
		{`1.e5`, 2, "expected a digit after a number's '.'"},
		{`1e+`, 3, "ends inside a number"},
		{`1ex`, 2, "expected a digit or a sign"},
		{`1e-x`, 3, "expected a digit in a number's exponent"},
		{`+1`, 0, "expected a value, found '+'"},
		{`.5`, 0, "expected a value, found '.'"},
		{`truE`, 3, `expected "true", found 'E'`},
		{`nul`, 3, `ends inside "null"`},
		{`true false`, 5, "after the top-level value"},
		{"\xef\xbb\xbf{}", 0, "expected a value, found byte 0xEF"},
		{`[NaN]`, 1, "expected a value, found 'N'"},
	} {
		err := scan([]byte(c.doc))
		var syn *SyntaxError
		if !errors.As(err, &syn) || syn.Offset != c.offset || !strings.Contains(syn.Problem, c.problem) {
			t.Errorf("%q: error %v; want at byte %d: ...%s...", c.doc, err, c.offset, c.problem)
		}
		if json.Valid([]byte(c.doc)) {
			t.Errorf("%q: the test is wrong: encoding/json accepts it", c.doc)
		}
		if ended := errors.Is(err, io.ErrUnexpectedEOF); ended != (syn != nil && syn.Offset == int64(len(c.doc))) {
			t.Errorf("%q: errors.Is(%v, io.ErrUnexpectedEOF) = %v; want it only when the input ended too early", c.doc, err, ended)
		}
	}
}

func TestDepth(t *testing.T) {
	deepest := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if err := scan([]byte(deepest)); err != nil {
		t.Errorf("%d nested arrays: %v, want valid as in encoding/json", MaxDepth, err)
	}
	tooDeep := "[" + deepest + "]"
	err := scan([]byte(tooDeep))
	if syn, ok := err.(*SyntaxError); !ok || syn.Offset != MaxDepth {
		t.Errorf("%d nested arrays: %v, want an error at byte %d", MaxDepth+1, err, MaxDepth)
	}
	if json.Valid([]byte(tooDeep)) {
		t.Error("encoding/json accepts more than MaxDepth levels: MaxDepth must follow it")
	}

	// Nesting costs no memory: a stream of '[' cannot make the scanner grow.
	s := &Scanner{}
	chunk := bytes.Repeat([]byte("[{\"a\":"), 1000)
	allocs := testing.AllocsPerRun(1, func() {
		*s = Scanner{}
		for range MaxDepth / 2000 {
			if _, err := s.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Errorf("nesting %d levels deep allocated %v times; want none", MaxDepth, allocs)
	}
}

// Only the values that the hooks follow are told of, with their keys and text
// decoded as encoding/json decodes them.
func TestHooks(t *testing.T) {
	doc := `{"a":{"x":"no"},"b\u0021":["y",{"c":"\ud83d\ude00 \ud800 \u0041"}],"d":"d\n", "e": 1, "f\"": true}`
	var got []string
	s := &Scanner{
		Begin: func(depth int, key []byte, first byte) (Action, error) {
			got = append(got, strings.Repeat(".", depth)+string(key)+" "+string(first))
			if string(key) == "a" {
				return Skip, nil
			}
			return Follow, nil
		},
		Text: func(text []byte) error { got = append(got, "="+string(text)); return nil },
	}
	if err := scanChunks(s, []byte(doc), 1); err != nil {
		t.Fatal(err)
	}
	want := []string{" {", ".a {", ".b! [", `.. "`, "=y", ".. {", `...c "`, "=😀 \uFFFD A", `.d "`, "=d\n", ".e 1", `.f" t`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("hooks saw\n%q\nwant\n%q", got, want)
	}
}

// Pos says where each value begins and each followed string ends, however
// the input is cut: doc[Pos] is the value's first byte, or the closing quote.
func TestPos(t *testing.T) {
	doc := `{"a": [1, "two\"", {"b": null}], "c": "d"}`
	for seed := range uint64(8) {
		var got []string
		s := &Scanner{}
		s.Begin = func(_ int, _ []byte, first byte) (Action, error) {
			got = append(got, fmt.Sprintf("%c@%d", doc[s.Pos()], s.Pos()))
			return Follow, nil
		}
		s.Text = func([]byte) error { got = append(got, fmt.Sprintf("%c@%d", doc[s.Pos()], s.Pos())); return nil }
		if err := scanChunks(s, []byte(doc), seed); err != nil {
			t.Fatal(err)
		}
		want := "{@0 [@6 1@7 \"@10 \"@16 {@19 n@25 \"@38 \"@40"
		if strings.Join(got, " ") != want {
			t.Errorf("seed %d: %s, want %s", seed, strings.Join(got, " "), want)
		}
	}
}

func TestHookErrorStops(t *testing.T) {
	stop := errors.New("found it")
	s := &Scanner{
		Begin: func(int, []byte, byte) (Action, error) { return Follow, nil },
		Text:  func([]byte) error { return stop },
	}
	n, err := s.Write([]byte(`["x", garbage`))
	if err != stop || n != 4 {
		t.Errorf("Write = %d, %v; want 4, the hook's error", n, err)
	}
	if _, err := s.Write([]byte("]")); err != stop {
		t.Errorf("Write after the hook stopped = %v; want the hook's error again", err)
	}
}

// A key or string longer than MaxCapture is checked, but not passed on.
func TestCaptureIsBounded(t *testing.T) {
	long := strings.Repeat("k", MaxCapture+1)
	var keys, texts []int
	s := &Scanner{
		Begin: func(_ int, key []byte, _ byte) (Action, error) { keys = append(keys, len(key)); return Follow, nil },
		Text:  func(text []byte) error { texts = append(texts, len(text)); return nil },
	}
	doc := `{"` + long + `":"v","k":"` + long + `","z":"` + long[:MaxCapture] + `"}`
	if err := scanChunks(s, []byte(doc), 0); err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 1}; !slices.Equal(keys, want) {
		t.Errorf("Begin got keys of length %v; want %v (the top-level value, then k and z)", keys, want)
	}
	if want := []int{MaxCapture}; !slices.Equal(texts, want) {
		t.Errorf("Text got strings of length %v; want %v (only z's value)", texts, want)
	}
}

func FuzzScan(f *testing.F) {
	for _, name := range []string{"srl-config-srlcontroller-test.json", "jsonrpc-get-multi-state.response.json", "srl-pair-eh-lag-mem-admin-disable.json", "srl-flat-clab-srl1-bgp.cfg"} {
		f.Add(testenv.ReadFixture(f, name), uint64(1))
	}
	for _, doc := range []string{`{"a":[1,-2.5e+3,true,null,"\u00e9\n"]}`, `{}{}`, `[1,]`, "\"\xff\"", ` 0 `, `{"a":"\ud800"}`} {
		f.Add([]byte(doc), uint64(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var first byte
		s := &Scanner{Begin: func(depth int, _ []byte, c byte) (Action, error) {
			if depth == 0 {
				first = c
			}
			return Skip, nil
		}}
		err := scanChunks(s, data, seed)
		if valid := json.Valid(data); (err == nil) != valid {
			t.Fatalf("%q: scanner says %v; encoding/json says valid=%v", data, err, valid)
		}
		// A caller that wants one object, as copyJSON does, can tell one.
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		if isObject := err == nil && len(trimmed) > 0 && trimmed[0] == '{'; (err == nil && first == '{') != isObject {
			t.Fatalf("%q: first byte %q; want it to tell whether the document is one object", data, first)
		}
		// The verdict does not depend on how the input is cut.
		if whole := scan(data); errString(whole) != errString(err) {
			t.Fatalf("%q: in one piece %v; in pieces %v", data, whole, err)
		}
		// The offset is that of the first byte no JSON document can have there.
		var syn *SyntaxError
		if errors.As(err, &syn) && syn.Offset < int64(len(data)) {
			if _, err := (&Scanner{}).Write(data[:syn.Offset]); err != nil {
				t.Fatalf("%q: error %v, but the bytes before it fail too: %v", data, syn, err)
			}
		}
		if err == nil {
			sameStrings(t, data)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// sameStrings checks that hooks that follow everything see every key and
// string, in order, as encoding/json decodes them.
func sameStrings(t *testing.T, data []byte) {
	var got []string
	s := &Scanner{
		Begin: func(_ int, key []byte, _ byte) (Action, error) {
			if key != nil {
				got = append(got, string(key))
			}
			return Follow, nil
		},
		Text: func(text []byte) error { got = append(got, string(text)); return nil },
	}
	if err := scanChunks(s, data, 0); err != nil {
		t.Fatal(err)
	}
	var want []string
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers can be out of float64 range, which is no syntax error
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%q: encoding/json: %v", data, err)
		}
		if str, ok := tok.(string); ok {
			want = append(want, str)
		}
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("%q: hooks saw %q; encoding/json %q", data, got, want)
	}
}

// BenchmarkScan checks a 32 MiB configuration in the 32 KiB pieces io.Copy
// hands over.
func BenchmarkScan(b *testing.B) {
	cfg := bigconfig.Bytes(b, 32<<20, "big-leaf")
	b.SetBytes(int64(len(cfg)))
	b.ReportAllocs()
	for b.Loop() {
		s := &Scanner{}
		for p := cfg; len(p) > 0; {
			n := min(len(p), 32<<10)
			if _, err := s.Write(p[:n]); err != nil {
				b.Fatal(err)
			}
			p = p[n:]
		}
		if err := s.End(); err != nil {
			b.Fatal(err)
		}
	}
}
