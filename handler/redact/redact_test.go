package redact_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/jsonscan"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/redact"
	"github.com/cfgsnap/cfgsnap/handler/testkit/bigconfig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

var key = []byte("0123456789abcdef0123456789abcdef")

// run redacts in with rules, written in pieces of chunk bytes.
func run(t *testing.T, rules *redact.Rules, in []byte, chunk int) ([]byte, int, error) {
	t.Helper()
	var out bytes.Buffer
	w := rules.Writer(&out)
	for len(in) > 0 {
		n := min(chunk, len(in))
		if _, err := w.Write(in[:n]); err != nil {
			return out.Bytes(), w.Count(), err
		}
		in = in[n:]
	}
	return out.Bytes(), w.Count(), w.End()
}

// marker is what a secret becomes, computed here as the README says.
func marker(k []byte, secret string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(secret))
	return redact.Marker + hex.EncodeToString(m.Sum(nil))
}

// secrets are the values at paths in a decoded configuration, found the slow
// way: module prefixes dropped, lists passed through.
func secrets(v any, at []string, paths map[string]bool) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if i := strings.LastIndexByte(k, ':'); i >= 0 {
				k = k[i+1:]
			}
			out = append(out, secrets(x, append(at[:len(at):len(at)], k), paths)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, secrets(x, at, paths)...)
		}
	case string:
		if paths[strings.Join(at, "/")] {
			out = append(out, v)
		}
	}
	return out
}

// The real configurations lose every secret on a default path, and nothing
// else: put each original back in place of its marker, and the switch's file
// comes back byte for byte, however the stream is cut.
func TestFixturesRedactedExactly(t *testing.T) {
	paths := map[string]bool{}
	for _, p := range redact.Default {
		paths[p] = true
	}
	rules := redact.New(redact.Paths([]string{"default"}), key)
	for _, name := range []string{"srl-config-dcf-leaf11.json", "srl-config-srlcontroller-test.json", "srl-pair-eh-lag-mem-admin-disable.json"} {
		in := testenv.ReadFixture(t, name)
		var doc any
		if err := json.Unmarshal(in, &doc); err != nil {
			t.Fatal(err)
		}
		found := secrets(doc, nil, paths)
		var whole []byte
		for _, chunk := range []int{len(in), 1, 7, 4096} {
			out, n, err := run(t, rules, in, chunk)
			if err != nil {
				t.Fatalf("%s in pieces of %d: %v", name, chunk, err)
			}
			if whole == nil {
				whole = out
			} else if !bytes.Equal(out, whole) {
				t.Errorf("%s in pieces of %d: not what it is whole", name, chunk)
			}
			if n != len(found) {
				t.Errorf("%s: %d values redacted, want the %d on default paths", name, n, len(found))
			}
		}
		restored := whole
		for _, s := range found {
			if bytes.Contains(whole, []byte(s)) {
				t.Errorf("%s: secret %.20q... is still there", name, s)
			}
			quoted, _ := json.Marshal(s)
			restored = bytes.ReplaceAll(restored, []byte(`"`+marker(key, s)+`"`), quoted)
		}
		if !bytes.Equal(restored, in) {
			t.Errorf("%s: beside the secrets, the redacted file differs from the switch's", name)
		}
		t.Logf("%s: %d secrets redacted", name, len(found))
	}
}

// Each default path is redacted as SR Linux writes it: module prefixes, its
// lists as arrays.
func TestEveryDefaultPath(t *testing.T) {
	rules := redact.New(redact.Paths([]string{"default"}), key)
	for _, p := range redact.Default {
		// {"srl_nokia-m:a":[{"b":[{"name":"x","c":"secret"}]}]}: a list at every level.
		names := strings.Split(p, "/")
		doc := `"secret of ` + p + `"`
		for i := len(names) - 1; i >= 0; i-- {
			doc = `[{"name":"x","srl_nokia-m:` + names[i] + `":` + doc + `}]`
		}
		doc = doc[1:len(doc)-1] + "\n"
		out, n, err := run(t, rules, []byte(doc), 5)
		want := strings.Replace(doc, `"secret of `+p+`"`, `"`+marker(key, "secret of "+p)+`"`, 1)
		if err != nil || n != 1 || string(out) != want {
			t.Errorf("%s: %d redacted, %v\n got %s\nwant %s", p, n, err, out, want)
		}
	}
}

// A marker changes with its secret and with nothing else: a changed password
// still shows in a diff, and one that did not change does not.
func TestMarkerFollowsSecret(t *testing.T) {
	rules := redact.New([]string{"system/aaa/authentication/user/password"}, key)
	doc := func(alice, bob string) []byte {
		return []byte(`{"system":{"aaa":{"authentication":{"user":[{"username":"alice","password":"` + alice + `"},{"username":"bob","password":"` + bob + `"}]}}},"x":"` + alice + `"}`)
	}
	a, _, _ := run(t, rules, doc("$y$one", "$y$two"), 64)
	again, _, _ := run(t, rules, doc("$y$one", "$y$two"), 3)
	changed, _, _ := run(t, rules, doc("$y$one", "$y$three"), 64)
	if !bytes.Equal(a, again) {
		t.Errorf("the same configuration redacts differently:\n%s\n%s", a, again)
	}
	if !bytes.Contains(changed, []byte(marker(key, "$y$one"))) || bytes.Contains(changed, []byte(marker(key, "$y$two"))) ||
		!bytes.Contains(changed, []byte(marker(key, "$y$three"))) {
		t.Errorf("bob's new password: %s", changed)
	}
	// Another key, other markers: nobody without the key can test a guess.
	other, _, _ := run(t, redact.New([]string{"system/aaa/authentication/user/password"}, []byte("another key, as long as the first")), doc("$y$one", "$y$two"), 64)
	if bytes.Contains(other, []byte(marker(key, "$y$one"))) || bytes.Equal(other, a) {
		t.Errorf("another key gives the same markers: %s", other)
	}
	// The same secret escaped otherwise is the same secret.
	esc, _, _ := run(t, rules, doc(`$y$\u006fne`, "$y$two"), 64)
	if !bytes.Contains(esc, []byte(marker(key, "$y$one"))) {
		t.Errorf("an escaped password got another marker: %s", esc)
	}
}

// What a path names that is not a string: an object or array has every string
// below it redacted; numbers, booleans and null stay.
func TestNotStrings(t *testing.T) {
	rules := redact.New([]string{"a/s"}, key)
	in := `{"a":{"s":{"x":["p1",2,true,null,{"y":"p2"}]},"t":"kept"},"b":{"s":"kept"}}`
	out, n, err := run(t, rules, []byte(in), 2)
	want := `{"a":{"s":{"x":["` + marker(key, "p1") + `",2,true,null,{"y":"` + marker(key, "p2") + `"}]},"t":"kept"},"b":{"s":"kept"}}`
	if err != nil || n != 2 || string(out) != want {
		t.Errorf("got %s, %d, %v\nwant %s", out, n, err, want)
	}
	out, n, err = run(t, rules, []byte(`{"a":{"s":12345}}`), 2)
	if err != nil || n != 0 || string(out) != `{"a":{"s":12345}}` {
		t.Errorf("a number: %s, %d, %v", out, n, err)
	}
}

// What cannot be redacted is refused, and nothing of the secret gets out.
func TestRefused(t *testing.T) {
	rules := redact.New([]string{"k"}, key)
	long := strings.Repeat("s", jsonscan.MaxCapture+1)
	for _, c := range []struct{ in, want string }{
		{`{"k":"` + long + `"}`, "longer than"},
		{`{"k":"` + long + `","l":1}`, "longer than"},
		{`{"k":"secret"`, "not JSON"},
		{"system name host-name leaf1\n", "not JSON"},
	} {
		out, _, err := run(t, rules, []byte(c.in), 4096)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%.30q: error %v, want one line with %q", c.in, err, c.want)
		}
		if bytes.Contains(out, []byte("sss")) {
			t.Errorf("%.30q: the long secret got out", c.in)
		}
	}
}

// A configuration of 100 MiB is redacted in constant memory: the description
// of every interface, thousands of them, on top of the defaults.
func TestLargeConfigConstantMemory(t *testing.T) {
	size := 100 << 20
	rules := redact.New(redact.Paths([]string{"default", "interface/description"}), key)
	src := bigconfig.New(t, size, "big-leaf")
	check := &jsonscan.Scanner{}
	var counted int64
	w := rules.Writer(writerFunc(func(p []byte) (int, error) { counted += int64(len(p)); return check.Write(p) }))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read, err := io.CopyBuffer(w, src, make([]byte, 32<<10))
	if err == nil {
		err = w.End()
	}
	runtime.ReadMemStats(&after)
	if err != nil || check.End() != nil {
		t.Fatalf("redacting: %v; the output is JSON: %v", err, check.End())
	}
	if read < int64(size) || w.Count() < 1000 {
		t.Fatalf("read %d bytes, redacted %d values; want all %d bytes and every description", read, w.Count(), size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB in, %d MiB out, %d values redacted, %d KiB allocated", read>>20, counted>>20, w.Count(), alloc>>10)
	if alloc > 4<<20 {
		t.Errorf("redacting %d MiB allocated %d MiB; want constant memory", size>>20, alloc>>20)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func BenchmarkRedact(b *testing.B) {
	cfg := bigconfig.Bytes(b, 32<<20, "big-leaf")
	rules := redact.New(redact.Paths([]string{"default", "interface/description"}), key)
	b.SetBytes(int64(len(cfg)))
	for b.Loop() {
		w := rules.Writer(io.Discard)
		if _, err := w.Write(cfg); err != nil {
			b.Fatal(err)
		}
		if err := w.End(); err != nil {
			b.Fatal(err)
		}
	}
}

// The key file is required and must hold a key worth the name; each refusal
// is one line, a usage error (exit 2).
func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	good := filepath.Join(dir, "redact.key")
	os.WriteFile(short, []byte("tiny\n"), 0o600)
	os.WriteFile(good, []byte("Jv0j1cS6o0m8Yt9QKQ4bV5kX2wq3ZJkq\n# a comment for the people\n"), 0o600)
	for _, c := range []struct {
		vals    []string
		file    string
		want    string // "" for success
		enabled bool
	}{
		{nil, "", "", false},
		{[]string{"none"}, "", "", false},
		{[]string{"default"}, "", "redact-key-file is not", false},
		{[]string{"default"}, filepath.Join(dir, "missing"), "missing", false},
		{[]string{"default"}, short, "fewer than 16", false},
		{[]string{"default"}, good, "", true},
	} {
		cfg := option.New()
		if c.vals != nil {
			if err := cfg.Set("redact", c.vals); err != nil {
				t.Fatal(err)
			}
		}
		cfg.RedactKeyFile = c.file
		rules, err := redact.FromOptions(cfg)
		switch {
		case c.want == "" && (err != nil || (rules != nil) != c.enabled):
			t.Errorf("%v %s: %v, %v", c.vals, c.file, rules, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || fail.KindOf(err) != fail.Usage):
			t.Errorf("%v %s: %v, want a one-line usage error with %q", c.vals, c.file, err, c.want)
		}
	}
}

// Option redact takes paths, default and none, and refuses the rest.
func TestOption(t *testing.T) {
	for _, c := range []struct {
		vals []string
		want []string
		bad  bool
	}{
		{[]string{"default"}, redact.Default, false},
		{[]string{"default,system/tls/server-profile/key", "/x/y/"}, append(redact.Default[:len(redact.Default):len(redact.Default)], "x/y"), false},
		{[]string{"none"}, nil, false},
		{[]string{"none", "x"}, nil, true},
		{[]string{"interface[name=e1-1]/description"}, nil, true},
		{[]string{"srl_nokia-system:system/name"}, nil, true},
	} {
		cfg := option.New()
		err := cfg.Set("redact", c.vals)
		if got := redact.Paths(cfg.Redact); (err != nil) != c.bad || (!c.bad && strings.Join(got, " ") != strings.Join(c.want, " ")) {
			t.Errorf("redact %q: %q, %v", c.vals, got, err)
		}
	}
}
