package snapshot

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
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
			bare[local(k)] = v
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
		{"too deep", `{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`},
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

// bigConfig streams a configuration of about size bytes without holding it:
// the real interfaces of leaf11 repeated, then the system container last, as
// in config.json where keys are sorted and "srl_nokia-system:system" comes
// after the interfaces.
type bigConfig struct {
	parts [][]byte // head, repeated body, tail
	reps  int
	cur   []byte
	i     int
}

func newBigConfig(t testing.TB, size int) *bigConfig {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(readFixture(t, "srl-config-dcf-leaf11.json"), &m); err != nil {
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
	head := []byte(`{"_preamble":` + string(m["_preamble"]) + `,"srl_nokia-interfaces:interface":[` + string(body))
	rest := append([]byte(",\n"), body...)
	tail := []byte(`],"srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":"big-leaf"}}}`)
	return &bigConfig{parts: [][]byte{head, rest, tail}, reps: (size - len(head) + len(rest) - 1) / len(rest), cur: head}
}

func (b *bigConfig) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		switch {
		case b.i == 0 && b.reps > 0, b.i == 1 && b.reps > 0:
			b.i, b.reps, b.cur = 1, b.reps-1, b.parts[1]
		case b.i < 2:
			b.i, b.cur = 2, b.parts[2]
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

func TestHostNameLargeConfigConstantMemory(t *testing.T) {
	size := 100 << 20
	if testing.Short() || raceEnabled {
		size = 10 << 20 // the race detector makes the tokenizer ~10x slower
	}
	src := newBigConfig(t, size)
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
	})
}
