package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/jsonscan"
	"github.com/cfgsnap/cfgsnap/handler/testkit/bigconfig"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// readFixture returns a real SR Linux configuration file.
func readFixture(t testing.TB, name string) []byte { return testenv.ReadFixture(t, name) }

// withHostName returns the real configuration cfg with system > name >
// host-name set to host, keys prefixed as in config.json when prefixed is
// true and bare as in `info from running / | as json` otherwise. The
// fixtures have no host name of their own.
func withHostName(t testing.TB, cfg []byte, host string, prefixed bool) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil {
		t.Fatal(err)
	}
	sysKey, nameKey := "system", "name"
	if prefixed {
		sysKey, nameKey = "srl_nokia-system:system", "srl_nokia-system-name:name"
	} else {
		// `info ... | as json` has no module prefixes and no preamble.
		delete(m, "_preamble")
		bare := map[string]any{}
		for k, v := range m {
			bare[string(local([]byte(k)))] = v
		}
		m = bare
	}
	sys, _ := m[sysKey].(map[string]any)
	if sys == nil {
		t.Fatalf("fixture has no %s", sysKey)
	}
	sys[nameKey] = map[string]any{"host-name": host}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hostName(t *testing.T, data []byte) string {
	t.Helper()
	h, err := HostName(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("HostName: %v", err)
	}
	return h
}

func TestHostNameRealConfigs(t *testing.T) {
	for _, f := range []string{"srl-config-dcf-leaf11.json", "srl-config-srlcontroller-test.json"} {
		cfg := readFixture(t, f)
		t.Run(f, func(t *testing.T) {
			// As published, these configurations set no host name: the
			// caller must get "" and fall back, not an error.
			if h := hostName(t, cfg); h != "" {
				t.Errorf("config without host-name: got %q, want \"\"", h)
			}
			if h := hostName(t, withHostName(t, cfg, "leaf11", true)); h != "leaf11" {
				t.Errorf("config.json form: got %q, want leaf11", h)
			}
			if h := hostName(t, withHostName(t, cfg, "leaf11", false)); h != "leaf11" {
				t.Errorf("info from running / | as json form: got %q, want leaf11", h)
			}
			// A JSON-RPC get of "/" from running: the configuration is result[0].
			var rpc bytes.Buffer
			rpc.WriteString(`{"jsonrpc":"2.0","id":0,"result":[`)
			rpc.Write(withHostName(t, cfg, "spine-1", true))
			rpc.WriteString(`]}`)
			if h := hostName(t, rpc.Bytes()); h != "spine-1" {
				t.Errorf("JSON-RPC response: got %q, want spine-1", h)
			}
		})
	}
}

func TestHostNameShapes(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"bare", `{"system":{"name":{"host-name":"srl1"}}}`, "srl1"},
		{"prefixed", `{"srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":"srl1"}}}`, "srl1"},
		{"mixed prefixes", `{"system":{"srl_nokia-system-name:name":{"srl_nokia-system-name:host-name":"srl1"}}}`, "srl1"},
		{"system after large siblings", `{"acl":{"x":[1,2,{"host-name":"no"}]},"interface":[{"name":"ethernet-1/1"}],"system":{"mtu":{},"name":{"domain-name":"lab","host-name":"srl1"}}}`, "srl1"},
		{"jsonrpc second result", `{"jsonrpc":"2.0","id":0,"result":["v23.10.1",{"system":{"name":{"host-name":"srl2"}}}]}`, "srl2"},
		{"top-level array", `[{"system":{"name":{"host-name":"srl3"}}}]`, "srl3"},
		{"unicode kept raw", `{"system":{"name":{"host-name":"le\u0430f/../x"}}}`, "le\u0430f/../x"},
		// What must not be taken for the host name.
		{"preamble name", `{"_preamble":{"header":{"name":"ckpt-1","host-name":"no"}},"system":{}}`, ""},
		{"nested system", `{"network-instance":[{"name":"mgmt","system":{"name":{"host-name":"no"}}}]}`, ""},
		{"system name is a string", `{"system":{"name":"no"}}`, ""},
		{"host-name not a string", `{"system":{"name":{"host-name":["no"]}}}`, ""},
		{"host-name null", `{"system":{"name":{"host-name":null}}}`, ""},
		{"jsonrpc error", `{"jsonrpc":"2.0","id":0,"error":{"code":-1,"message":"Path not valid"}}`, ""},
		{"result not an array", `{"result":{"system":{"name":{"host-name":"no"}}}}`, ""},
		{"scalar", `"srl1"`, ""},
		{"empty object", `{}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := hostName(t, []byte(c.in)); got != c.want {
				t.Errorf("HostName(%s) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestHostNameInvalid(t *testing.T) {
	flat := readFixture(t, "srl-flat-clab-srl1-bgp.cfg")
	for _, c := range []struct{ name, in string }{
		{"empty input", ""},
		{"flat config", string(flat)},
		{"truncated", `{"system":{"mtu":{"default-mtu":9000`},
		{"truncated before host", `{"system":{"name":`},
		{"garbage after key", `{"system" x}`},
		{"too deep", `{"a":` + strings.Repeat("[", jsonscan.MaxDepth+1) + strings.Repeat("]", jsonscan.MaxDepth+1) + `}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := HostName(strings.NewReader(c.in))
			if err == nil {
				t.Fatalf("HostName = %q, nil; want an error", h)
			}
			if fail.KindOf(err) != fail.Source || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "not valid JSON") {
				t.Errorf("error %q (kind %d): want one line of kind Source saying the JSON is not valid", err, fail.KindOf(err))
			}
		})
	}
}

// failAfter serves data, then fails: HostName must not read past the host name.
type failAfter struct{ r io.Reader }

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("read past the host name")
	}
	return n, err
}

func TestHostNameStopsAtHostName(t *testing.T) {
	in := `{"system":{"name":{"host-name":"srl1"}},"zz":`
	h, err := HostName(&failAfter{strings.NewReader(in)})
	if err != nil || h != "srl1" {
		t.Fatalf("HostName = %q, %v; want srl1 without reading further", h, err)
	}
}

func TestHostNameLargeConfigConstantMemory(t *testing.T) {
	size := 100 << 20
	if testing.Short() || raceEnabled {
		size = 10 << 20 // the race detector makes the tokenizer ~10x slower
	}
	src := bigconfig.New(t, size, "big-leaf")
	counted := &countingReader{r: src}
	stop := heapPeak()
	h, err := HostName(counted)
	grew := stop()
	if err != nil || h != "big-leaf" {
		t.Fatalf("HostName = %q, %v; want big-leaf", h, err)
	}
	if counted.n < int64(size) {
		t.Fatalf("read %d bytes, want the whole %d-byte config", counted.n, size)
	}
	t.Logf("%d MiB config: heap peaked %d KiB above where it started", size>>20, grew>>10)
	// A decoder holding the configuration would need at least its size.
	if grew > 16<<20 {
		t.Errorf("reading a %d MiB config grew the heap by %d MiB; want constant memory", size>>20, grew>>20)
	}
}

// heapPeak samples the heap's allocated bytes until stop, which returns the
// peak above the starting point. Sampling runtime/metrics does not stop the world.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	start := read()
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		peak := start
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, read()) - start
				return
			case <-tick.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func FuzzHostName(f *testing.F) {
	for _, name := range []string{"srl-config-srlcontroller-test.json", "jsonrpc-get-multi-state.response.json", "jsonrpc-get-state-error.response.json", "srl-pair-eh-lag-mem-admin-disable.json"} {
		f.Add(readFixture(f, name), "leaf11")
	}
	f.Add([]byte(`{"system":{"name":{"host-name":"x"}}}`), "../../etc/passwd")
	f.Add([]byte(`{"result":[{"system":`), "\u2215\x00")
	f.Fuzz(func(t *testing.T, data []byte, host string) {
		// Arbitrary input: no panic, and an error is one line of kind Source.
		if _, err := HostName(bytes.NewReader(data)); err != nil {
			if fail.KindOf(err) != fail.Source || strings.ContainsAny(err.Error(), "\n") {
				t.Fatalf("error %q: want one line of kind Source", err)
			}
		}
		// Any host name, however odd, comes back exactly as configured
		// (Name sanitises it later). JSON replaces invalid UTF-8.
		v, _ := json.Marshal(host)
		cfg := `{"srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":` + string(v) + `}}}`
		var want string
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatal(err)
		}
		if got, err := HostName(strings.NewReader(cfg)); err != nil || got != want {
			t.Fatalf("HostName(%s) = %q, %v; want %q", cfg, got, err, want)
		}
		if json.Valid(data) {
			agreesWithReference(t, data)
		}
	})
}

// TestHostNameAgreesWithReference compares HostName with referenceHostName on
// small random documents built from the keys and values that matter, in
// every order and with duplicates, escapes and values of the wrong type.
func TestHostNameAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	docs := 3000
	if raceEnabled {
		docs = 300
	}
	found := 0
	for range docs {
		doc := []byte(randomDocument(rng))
		if !json.Valid(doc) {
			t.Fatalf("the generator made invalid JSON: %s", doc)
		}
		if agreesWithReference(t, doc) != "" {
			found++
		}
	}
	if found < docs/10 {
		t.Errorf("only %d of the random documents hold a host name: the generator misses the point", found)
	}
}

// agreesWithReference checks HostName on a valid document, and on truncations
// of it, which must fail or find the same: HostName stops at the host name.
// It returns the host name.
func agreesWithReference(t *testing.T, doc []byte) string {
	t.Helper()
	want := referenceHostName(t, doc)
	got, err := HostName(bytes.NewReader(doc))
	if err != nil || got != want {
		t.Fatalf("HostName(%s) = %q, %v; the reference says %q", doc, got, err, want)
	}
	for n := range len(doc) {
		if len(doc) > 64 && n%(len(doc)/32) != 0 {
			continue // every cut of a long document costs more than it finds
		}
		if h, err := HostName(bytes.NewReader(doc[:n])); err == nil && h != want {
			t.Fatalf("HostName(%s), cut at byte %d, = %q; want an error or %q", doc, n, h, want)
		}
	}
	return want
}

// referenceHostName is HostName spelled out on a whole decoded document.
func referenceHostName(t *testing.T, doc []byte) string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var h string
	var ok bool
	switch v := decodeOrdered(t, dec).(type) {
	case orderedObject:
		for _, m := range v {
			if m.key == "result" {
				h, ok = referenceConfigs(m.value)
			} else {
				h, ok = referencePath(m, "system", "name", "host-name")
			}
			if ok {
				break
			}
		}
	case []any:
		h, _ = referenceConfigs(v)
	}
	return h
}

func referenceConfigs(v any) (string, bool) {
	arr, _ := v.([]any)
	for _, config := range arr {
		obj, _ := config.(orderedObject)
		for _, m := range obj {
			if h, ok := referencePath(m, "system", "name", "host-name"); ok {
				return h, true
			}
		}
	}
	return "", false
}

// referencePath follows member m down keys, compared without module prefix, to
// a string.
func referencePath(m orderedMember, keys ...string) (string, bool) {
	if string(local([]byte(m.key))) != keys[0] {
		return "", false
	}
	if len(keys) == 1 {
		s, ok := m.value.(string)
		return s, ok
	}
	obj, _ := m.value.(orderedObject)
	for _, inner := range obj {
		if h, ok := referencePath(inner, keys[1:]...); ok {
			return h, true
		}
	}
	return "", false
}

// orderedObject keeps an object's members in order, duplicates included: which
// host-name comes first decides.
type orderedObject []orderedMember

type orderedMember struct {
	key   string
	value any
}

func decodeOrdered(t *testing.T, dec *json.Decoder) any {
	tok, err := dec.Token()
	if err != nil {
		t.Fatal(err)
	}
	switch tok {
	case json.Delim('{'):
		obj := orderedObject{}
		for dec.More() {
			key, _ := dec.Token()
			obj = append(obj, orderedMember{key.(string), decodeOrdered(t, dec)})
		}
		dec.Token()
		return obj
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			arr = append(arr, decodeOrdered(t, dec))
		}
		dec.Token()
		return arr
	}
	return tok
}

// randomDocument writes a small JSON document shaped like the ones HostName
// reads, with keys that lead to the host name or almost do, in random order,
// duplicated, escaped, and with values of the wrong type.
func randomDocument(rng *rand.Rand) string {
	if rng.IntN(4) == 0 {
		return randomValue(rng, "configs", 0)
	}
	return randomValue(rng, "top", 0)
}

// randomValue writes a value for the place named by level: what its keys may
// be, and where each leads.
func randomValue(rng *rand.Rand, level string, depth int) string {
	pick := func(list ...string) string { return list[rng.IntN(len(list))] }
	if depth > 5 || rng.IntN(8) == 0 { // the wrong type, or a dead end
		return pick(`"leaf1"`, `""`, `12`, `-0.5e3`, `true`, `null`, `[]`, `{}`, `["x"]`, `{"host-name":"no"}`)
	}
	n := rng.IntN(4)
	var parts []string
	switch level {
	case "host-name":
		return pick(`"leaf1"`, `"spine-2"`, `""`, `"le\u0061f1"`, `"\ud800 \n"`, "\"\xff\"", `1`, `null`, `["leaf1"]`)
	case "configs":
		for range n {
			parts = append(parts, randomValue(rng, "config", depth+1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	next := map[string][]string{ // key, and the level of its value
		"top":    {`"system"`, "system", `"srl_nokia-system:system"`, "system", `"result"`, "configs", `"x:result"`, "configs", `"_preamble"`, "name"},
		"config": {`"system"`, "system", `"sys\u0074em"`, "system", `"system:"`, "system", `"result"`, "configs"},
		"system": {`"name"`, "name", `"a:b:name"`, "name", `"host-name"`, "host-name", `"system"`, "system"},
		"name":   {`"host-name"`, "host-name", `"srl_nokia-system-name:host-name"`, "host-name", `"host\u002dname"`, "host-name", `"domain-name"`, "host-name"},
	}[level]
	for range n {
		k := 2 * rng.IntN(len(next)/2)
		parts = append(parts, next[k]+": "+randomValue(rng, next[k+1], depth+1))
	}
	return "{" + strings.Join(parts, ",\n") + "}"
}

// BenchmarkHostName reads a 50 MiB configuration whose host name comes last, as
// in a large config.json, where the system container sorts after the interfaces.
func BenchmarkHostName(b *testing.B) {
	cfg := bigconfig.Bytes(b, 50<<20, "big-leaf")
	b.SetBytes(int64(len(cfg)))
	for b.Loop() {
		if h, err := HostName(bytes.NewReader(cfg)); err != nil || h != "big-leaf" {
			b.Fatalf("HostName = %q, %v; want big-leaf", h, err)
		}
	}
}
