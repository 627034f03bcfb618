// Package script tests cfgsnap.py, the SR Linux event-handler script, under
// real MicroPython (the WebAssembly port through Node: upython/run.mjs) and
// under CPython (testdata/run_cpython.py), holding both to the same assertions.
//
// Which program the script starts is BINARY, the constant at its top. Each
// case runs a copy of the script installed with the BINARY it names (install),
// most of them the stand-in binary. A runner takes one script per batch run (a
// fresh interpreter per case), so each interpreter gets one batch per copy,
// the batches side by side: the suite costs a few process starts plus the
// checks.
package script

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

const (
	script        = "cfgsnap.py"
	sudoPrefix    = "/usr/bin/sudo -n "
	defaultBinary = "/usr/local/bin/cfgsnap"
	binaryLine    = `BINARY = "/usr/local/bin/cfgsnap"` // the line an installer edits
	binaryError   = "cfgsnap.py: error: BINARY at the top of cfgsnap.py must be an absolute path"
	npmPackage    = "upython/node_modules/@micropython/micropython-webassembly-pyscript/package.json"

	lastChangePath = "system configuration last-change"
	lastChange     = "2025-09-20T11:02:08.456Z" // the last-change of most cases
	older          = "2025-09-20T10:59:59.001Z" // one remembered before it
	memoryKey      = "cfgsnap-last-change"      // the script's persistent-data key
)

var (
	cmdlineRE = regexp.MustCompile(`^(/usr/bin/sudo -n )?/[A-Za-z0-9/._+-]+ handle [0-9a-f]+$`)
	safePath  = regexp.MustCompile(`^/[A-Za-z0-9/._+-]+$`)
	usableLC  = regexp.MustCompile(`^[ -~]{1,64}$`) // a last-change the script remembers
)

// TestMain doubles as the stand-in cfgsnap: started through a symlink named
// cfgsnap, the test binary records its argv beside itself and exits.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "cfgsnap" {
		b, _ := json.Marshal(os.Args)
		if err := os.WriteFile(filepath.Join(filepath.Dir(os.Args[0]), "argv.json"), b, 0o644); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testCase is one input and what both interpreters must make of it.
type testCase struct {
	name   string
	input  string
	mirror []string // host folders MicroPython must see (spool folders)

	// BINARY in the copy of the script it runs, the binary its cmdline starts
	// (defaultBinary: cfgsnap.py as it is).
	binary  string
	script  string // that copy (set by env.cases)
	run     bool   // a run-script action is returned
	sudo    bool   // through /usr/bin/sudo -n
	delay   int    // reinvoke-with-delay in ms; 0: none
	printed string // "": the script prints nothing; else its one line contains this
	memory  any    // the persistent-data returned, compared as JSON; nil: none
}

// result is what a runner reports for one case.
type result struct {
	Output  *string `json:"output"`
	Printed string  `json:"printed"`
	Error   *string `json:"error"`
}

type interpreter struct {
	name   string
	runner func(t *testing.T) []string // the command line less the script; skips (fails in CI) without the peer
}

var interpreters = []interpreter{
	{"micropython", func(t *testing.T) []string {
		node := testenv.NeedCommand(t, "node")
		_, err := os.Stat(npmPackage)
		testenv.Need(t, err == nil, "@micropython/micropython-webassembly-pyscript is not installed (npm ci --prefix eventhandler-scripts/upython)")
		return []string{node, "upython/run.mjs"}
	}},
	{"cpython", func(t *testing.T) []string {
		return []string{testenv.NeedCommand(t, "python3"), "testdata/run_cpython.py"}
	}},
}

func TestScript(t *testing.T) {
	e := newEnv(t)
	cases := e.cases(t)
	outputs := map[string][]result{}
	for _, in := range interpreters {
		t.Run(in.name, func(t *testing.T) {
			runner := in.runner(t)
			start := time.Now()
			results := runAll(t, runner, cases)
			t.Logf("%s: %d cases in %v", in.name, len(cases), time.Since(start).Round(time.Millisecond))
			outputs[in.name] = results
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) { e.check(t, c, results[i]) })
			}
		})
	}
	t.Run("same-output", func(t *testing.T) {
		mp, cp := outputs["micropython"], outputs["cpython"]
		testenv.Need(t, mp != nil && cp != nil, "both interpreters must have run")
		for i, c := range cases {
			if !reflect.DeepEqual(decoded(mp[i]), decoded(cp[i])) {
				t.Errorf("%s: MicroPython returned %s, CPython %s", c.name, str(mp[i].Output), str(cp[i].Output))
			}
		}
	})
}

// TestRunners checks that each runner runs what it claims to, through the
// single-input command line the demo uses.
func TestRunners(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe.py")
	src := "import sys\ndef event_handler_main(s):\n    print('printed')\n    return sys.implementation.name + ' ' + s\n"
	if err := os.WriteFile(probe, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range interpreters {
		t.Run(in.name, func(t *testing.T) {
			argv := append(in.runner(t), probe)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = strings.NewReader(`{"x":"é"}`)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s", argv, err, stderr.String())
			}
			if want := in.name + ` {"x":"é"}` + "\n"; string(out) != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
			if want := "script: printed\n"; stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
		})
	}
}

// TestScriptSource holds the script to what the switch is known to have:
// MicroPython 1.18 with json, time, sys and os, and no binascii. The tests run
// MicroPython 1.27, which has more (bytes.hex, for one), so this is checked here.
func TestScriptSource(t *testing.T) {
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	// Comments may name what the code must not use (the script has no # in strings).
	src := regexp.MustCompile(`#.*`).ReplaceAll(b, nil)
	allowed := map[string]bool{"json": true, "time": true, "sys": true, "os": true}
	for _, m := range regexp.MustCompile(`(?m)^\s*(?:import|from)\s+([\w.]+)`).FindAllStringSubmatch(string(src), -1) {
		if !allowed[m[1]] {
			t.Errorf("imports %s: only json, time, sys and os are known to exist on the switch", m[1])
		}
	}
	for _, bad := range []string{"binascii", ".hex(", "fromhex", "import *"} {
		if bytes.Contains(src, []byte(bad)) {
			t.Errorf("uses %q, which MicroPython 1.18 on the switch may lack", bad)
		}
	}
}

// runAll runs cases with runner, one batch per script copy, as many batches
// at a time as there are CPUs, and returns their results in case order.
func runAll(t *testing.T, runner []string, cases []testCase) []result {
	t.Helper()
	var scripts []string
	batches := map[string][]int{} // script -> indexes of its cases
	for i, c := range cases {
		if batches[c.script] == nil {
			scripts = append(scripts, c.script)
		}
		batches[c.script] = append(batches[c.script], i)
	}
	results := make([]result, len(cases))
	errs := make([]error, len(scripts))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for k, s := range scripts {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			idx := batches[s]
			batch := make([]testCase, len(idx))
			for j, i := range idx {
				batch[j] = cases[i]
			}
			rs, err := runBatch(slices.Concat(runner, []string{"--batch", s}), batch)
			if err != nil {
				errs[k] = err
				return
			}
			for j, i := range idx {
				results[i] = rs[j]
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return results
}

func runBatch(argv []string, cases []testCase) ([]result, error) {
	type item struct {
		Input  string   `json:"input"`
		Mirror []string `json:"mirror"`
	}
	items := make([]item, len(cases))
	for i, c := range cases {
		items[i] = item{c.input, c.mirror}
	}
	in, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %v\n%s", argv, err, stderr.String())
	}
	var results []result
	if err := json.Unmarshal(out, &results); err != nil {
		return nil, fmt.Errorf("%v: bad output: %v\n%s", argv, err, out)
	}
	if len(results) != len(cases) {
		return nil, fmt.Errorf("%v: %d results for %d cases", argv, len(results), len(cases))
	}
	return results, nil
}

// env holds the stand-in binary, the installed script copies and the spool
// folders of one test run.
type env struct {
	dir     string
	standin string            // symlink named cfgsnap to this test binary
	copies  map[string]string // BINARY -> the script installed with it
	n       int
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	if !safePath.MatchString(dir) {
		t.Fatalf("temporary folder %q has characters the script refuses in a binary path; set TMPDIR", dir)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, standin: filepath.Join(dir, "bin", "cfgsnap"), copies: map[string]string{}}
	if err := os.Mkdir(filepath.Dir(e.standin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, e.standin); err != nil {
		t.Fatal(err)
	}
	return e
}

// install returns cfgsnap.py as an installer who keeps cfgsnap at binary has
// it: the script's text with its one BINARY line set to binary (a JSON string
// is a Python string literal too), in a folder of its own. cfgsnap.py as it is
// for defaultBinary, the value it ships with.
func (e *env) install(t *testing.T, binary string) string {
	if binary == defaultBinary {
		return script
	}
	if path, ok := e.copies[binary]; ok {
		return path
	}
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	if n := slices.Index(lines, binaryLine); n < 0 || slices.Index(lines[n+1:], binaryLine) >= 0 {
		t.Fatalf("%s: want the line %s exactly once, which installers edit", script, binaryLine)
	} else {
		lines[n] = "BINARY = " + string(marshal(t, binary))
	}
	dir := filepath.Join(e.dir, fmt.Sprintf("eventmgr%d", len(e.copies)))
	path := filepath.Join(dir, script)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	e.copies[binary] = path
	return path
}

// spool makes a fresh spool folder; pending is the marker's content, or
// absent when nil.
func (e *env) spool(t *testing.T, pending *string) string {
	e.n++
	dir := filepath.Join(e.dir, fmt.Sprintf("spool%d", e.n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if pending != nil {
		if err := os.WriteFile(filepath.Join(dir, "pending"), []byte(*pending), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// event encodes an event-handler input the way SR Linux does: compact, with
// <, > and & left as they are.
func event(t *testing.T, v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

type obj = map[string]any

func (e *env) cases(t *testing.T) []testCase {
	var cs []testCase
	add := func(c testCase) { cs = append(cs, c) }
	// ok is a case whose BINARY is the stand-in, started without sudo.
	ok := func(name, input string) testCase {
		return testCase{name: name, input: input, run: true, binary: e.standin}
	}
	// lcEvent is an event with last-change lc (no such path when nil), sudo
	// false and opts as options, and pdata as persistent-data (none when nil).
	lcEvent := func(lc, pdata any, opts obj) string {
		o := obj{"sudo": "false"}
		for k, v := range opts {
			o[k] = v
		}
		ev := obj{"options": o}
		if lc != nil {
			ev["paths"] = []obj{{"path": lastChangePath, "value": lc}}
		}
		if pdata != nil {
			ev["persistent-data"] = pdata
		}
		return event(t, ev)
	}
	// withOpts is a first run: a last-change not handed on before.
	withOpts := func(opts obj) string { return lcEvent(lastChange, nil, opts) }
	// again is a reinvocation: the persistent-data of the run that handed on
	// the same last-change.
	remembered := obj{memoryKey: lastChange}
	again := func(opts obj) string { return lcEvent(lastChange, remembered, opts) }

	// Every real input, as it is to cfgsnap.py as it is (sudo auto), and with
	// sudo false to the copy that starts the stand-in.
	// None was handed on before: one with a last-change gets a reinvocation
	// and remembers it, alone; other persistent-data it came with is not ours
	// and does not come back.
	fixtures := filepath.Dir(testenv.Fixture(t, "eh-input-backup-last-change.json"))
	files, _ := filepath.Glob(filepath.Join(fixtures, "eh-input-*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		var ev obj
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if pd, _ := ev["persistent-data"].(obj); pd != nil && pd[memoryKey] != nil {
			t.Fatalf("%s: already holds %s: give it its own expectations", f, memoryKey)
		}
		var memory obj
		delay := 0
		paths, _ := ev["paths"].([]any)
		for _, p := range paths {
			if p, _ := p.(obj); p["path"] == lastChangePath {
				memory, delay = obj{memoryKey: p["value"]}, 60000
				break
			}
		}
		c := testCase{name: "fixture/" + name, input: string(b), run: true, binary: defaultBinary, sudo: true, delay: delay}
		if memory != nil {
			c.memory = memory
		}
		add(c)
		opts, _ := ev["options"].(obj)
		if opts == nil {
			opts = obj{}
		}
		opts["sudo"] = "false"
		ev["options"] = opts
		c.name, c.input, c.binary, c.sudo = "fixture/"+name+"/standin", event(t, ev), e.standin, false
		add(c)
		add(testCase{name: "fixture/" + name + "/truncated", input: string(b[:len(b)/2]), run: true, binary: defaultBinary, sudo: true})
	}

	// Hostile text everywhere a value or a key can be.
	long := strings.Repeat("$(x)'\"`;|&\n", 200)
	hostile := map[string]string{
		"quotes":     `it's "quoted" ''""`,
		"subshell":   "$(reboot) ${IFS}reboot",
		"backticks":  "`reboot` `id`",
		"metachars":  "; | & > < >> 2>&1 && || * ? [ ] ~ # ! %",
		"newlines":   "one\ntwo\r\nthree\n",
		"control":    "\x01\x02\x07\x08\t\x0b\x0c\x1b[31m\x1f\x7f",
		"unicode":    "é 中文 😀 \u2028\u2029 \ufeff \u200b",
		"2000-chars": long[:2000],
	}
	// Those a last-change could be (short printable ASCII) are remembered and
	// get a reinvocation; the others only reach the binary, which refuses them.
	// The other persistent-data key is not ours: it never comes back. Option
	// binary is ignored: BINARY runs.
	plain := map[string]bool{"quotes": true, "subshell": true, "backticks": true, "metachars": true}
	for name, h := range hostile {
		c := ok("hostile/"+name, event(t, obj{
			"paths":           []obj{{"path": lastChangePath, "value": h}, {"path": h, "value": h}},
			"options":         obj{"binary": h, "sudo": "false", "target": h, "name": []string{h, h}, h: h},
			"persistent-data": obj{h: h},
		}))
		if plain[name] {
			c.memory, c.delay = obj{memoryKey: h}, 60000
		}
		add(c)
	}
	add(ok("hostile/escaped-in-json", `{"paths":[{"path":"a\"b\\c","value":"\u00e9\ud83d\ude00\u0000\u2028\n$(x)"}],"options":{"binary":"/x\u0000\n$(reboot)","sudo":"false","target":"\ud800\u0000"}}`))
	add(ok("hostile/spaces-tabs-newlines-between-tokens", "\n\t {\r\n \"options\" :\t{ \"sudo\" : \"false\" ,\n\"target\":\"x\" } }\n\n"))

	// Malformed inputs still reach the binary, with default options.
	for name, in := range map[string]string{
		"not-json":           "not json",
		"open-brace":         "{",
		"array":              "[]",
		"null":               "null",
		"number":             "42",
		"string":             `"options"`,
		"options-string":     `{"options":"binary"}`,
		"options-list":       `{"options":["binary"]}`,
		"options-null":       `{"options":null}`,
		"raw-hostile":        "$(reboot)\x01\x02\x1b[31m\x7f`id`;|&><'\"\n\r\t é😀",
		"raw-control-in-str": "{\"paths\":[{\"path\":\"x\",\"value\":\"raw\x01\x1f\t\nvalue $(reboot)\"}]}",
	} {
		add(testCase{name: "malformed/" + name, input: in, run: true, binary: defaultBinary, sudo: true})
	}
	add(testCase{name: "malformed/empty", input: "", binary: defaultBinary, printed: "empty"})

	// sudo: auto means true unless netns is none.
	for _, s := range []struct {
		name string
		opts obj
		sudo bool
		warn bool
	}{
		{"absent", obj{"sudo": nil}, true, false},
		{"auto", obj{"sudo": "auto"}, true, false},
		{"auto-netns-none", obj{"sudo": "auto", "netns": "none"}, false, false},
		{"absent-netns-none", obj{"sudo": nil, "netns": "none"}, false, false},
		{"auto-netns-srbase-mgmt", obj{"sudo": "auto", "netns": "srbase-mgmt"}, true, false},
		{"auto-netns-list-none", obj{"sudo": "auto", "netns": []string{"auto", "none"}}, false, false},
		{"true", obj{"sudo": "true"}, true, false},
		{"true-netns-none", obj{"sudo": "true", "netns": "none"}, true, false},
		{"false", obj{"sudo": "false"}, false, false},
		{"false-netns-srbase-mgmt", obj{"sudo": "false", "netns": "srbase-mgmt"}, false, false},
		{"list-last-wins", obj{"sudo": []string{"true", "false"}}, false, false},
		{"empty-list", obj{"sudo": []string{}}, true, false},
		{"json-bool-false", obj{"sudo": false}, false, false},
		{"typo", obj{"sudo": "yes"}, true, true},
		{"typo-netns-none", obj{"sudo": "True", "netns": "none"}, false, true},
	} {
		opts := obj{}
		for k, v := range s.opts {
			if v != nil {
				opts[k] = v
			}
		}
		in := event(t, obj{"options": opts})
		c := testCase{name: "sudo/" + s.name, input: in, run: true, binary: e.standin, sudo: s.sudo}
		if s.warn {
			c.printed = "option sudo"
		}
		add(c)
	}

	// Which program runs is BINARY, root's choice: option binary, set by
	// whoever may configure the switch, is ignored whatever its value (the
	// binary refuses it). BINARY is an absolute path of safe characters, or
	// the script runs nothing and prints one error line.
	validLong := "/" + strings.Repeat("x/", 999) + "y"
	add(testCase{name: "binary/default", input: `{"options":{}}`, run: true, binary: defaultBinary, sudo: true})
	for name, b := range map[string]string{"2000-chars": validLong, "plus-dot-dash": "/opt/c++/cfg_snap-1.0/bin/cfgsnap"} {
		add(testCase{name: "binary/BINARY/" + name, input: withOpts(nil), run: true, binary: b, delay: 60000, memory: remembered})
	}
	// The option naming the stand-in, or a valid path listed: cfgsnap.py as
	// it is still starts its BINARY.
	for name, b := range map[string]any{
		"standin":      e.standin,
		"standin-list": []string{"/bad path", e.standin},
		"empty-list":   []string{},
		"valid-long":   validLong,
	} {
		add(testCase{name: "binary/option-ignored/" + name, input: event(t, obj{"options": obj{"binary": b}}), run: true, binary: defaultBinary, sudo: true})
	}
	c := ok("binary/option-ignored/default", withOpts(obj{"binary": defaultBinary}))
	c.delay, c.memory = 60000, remembered
	add(c)
	bad := map[string]string{
		"relative":     "cfgsnap",
		"dot-relative": "./cfgsnap",
		"empty":        "",
		"root-only":    "/",
		"space":        "/usr/bin/cfg snap",
		"semicolon":    "/x;reboot",
		"subshell":     "/x$(reboot)",
		"backtick":     "/x`id`",
		"single-quote": "/x'y",
		"double-quote": `/x"y`,
		"newline":      "/x\n/y",
		"tab":          "/x\ty",
		"nul":          "/x\x00y",
		"unicode":      "/usr/bin/cfgsnäp",
		"tilde":        "~/cfgsnap",
		"glob":         "/usr/bin/cfg*",
		"2000-hostile": "/" + long[:1999],
	}
	for name, b := range bad {
		// In BINARY: nothing runs, not even the valid binary the option
		// names, and what was remembered comes back.
		add(testCase{name: "binary/bad-BINARY/" + name, input: lcEvent(lastChange, obj{memoryKey: older}, obj{"binary": e.standin}),
			binary: b, printed: binaryError, memory: obj{memoryKey: older}})
		// In the option: ignored, BINARY runs.
		c := ok("binary/option-ignored/"+name, withOpts(obj{"binary": b}))
		c.delay, c.memory = 60000, remembered
		add(c)
	}
	for name, b := range map[string]any{
		"number":        42,
		"object":        obj{"a": "/x"},
		"list-last-bad": []string{e.standin, "bad"},
		"null":          nil,
		"true":          true,
	} {
		c := ok("binary/option-ignored/"+name, withOpts(obj{"binary": b}))
		c.delay, c.memory = 60000, remembered
		add(c)
	}

	// The pending marker: on a reinvocation (the last-change remembered),
	// reinvoke-with-delay while snapshots wait, if retries are on.
	sp := func(s string) *string { return &s }
	for _, p := range []struct {
		name    string
		pending *string
		retry   any // nil: absent
		delay   int
		warn    bool
	}{
		{"3-default-interval", sp("3\n"), nil, 60000, false},
		{"1-interval-5", sp("1"), "5", 5000, false},
		{"1-interval-0.5", sp("1"), "0.5", 500, false},
		{"1-interval-.25", sp("1"), ".25", 250, false},
		{"1-interval-1.2345", sp("1"), "1.2345", 1234, false},
		{"1-interval-86400", sp("1"), "86400", 86400000, false},
		{"1-interval-list-last-wins", sp("1"), []string{"0", "7"}, 7000, false},
		{"spaces-around", sp(" 12 \n"), nil, 60000, false},
		{"leading-zeros", sp("0001"), nil, 60000, false},
		{"big", sp("123456789012345678901234567890"), nil, 60000, false},
		{"1-interval-0", sp("1"), "0", 0, false},
		{"1-interval-0.0", sp("1"), "0.0", 0, false},
		{"1-interval-0.0004", sp("1"), "0.0004", 0, false},
		{"0", sp("0\n"), nil, 0, false},
		{"00", sp("00"), nil, 0, false},
		{"missing", nil, nil, 0, false},
		{"empty", sp(""), nil, 0, false},
		{"garbage", sp("garbage"), nil, 0, false},
		{"negative", sp("-1"), nil, 0, false},
		{"fraction", sp("1.5"), nil, 0, false},
		{"plus", sp("+1"), nil, 0, false},
		{"arabic-digit", sp("١"), nil, 0, false},
		{"two-lines", sp("1\n2\n"), nil, 0, false},
		{"1-interval-bogus", sp("1"), "bogus", 60000, true},
		{"1-interval-negative", sp("1"), "-1", 60000, true},
		{"1-interval-too-big", sp("1"), "86401", 60000, true},
		{"1-interval-exponent", sp("1"), "1e3", 60000, true},
		{"0-interval-bogus", sp("0"), "bogus", 0, true},
	} {
		dir := e.spool(t, p.pending)
		opts := obj{"spool-dir": dir}
		if p.retry != nil {
			opts["retry-interval"] = p.retry
		}
		c := ok("pending/"+p.name, again(opts))
		c.mirror, c.delay, c.memory = []string{dir}, p.delay, remembered
		if p.warn {
			c.printed = "option retry-interval"
		}
		add(c)
	}
	dir := e.spool(t, nil)
	if err := os.Mkdir(filepath.Join(dir, "pending"), 0o755); err != nil {
		t.Fatal(err)
	}
	c = ok("pending/is-a-folder", again(obj{"spool-dir": dir}))
	c.mirror, c.memory = []string{dir}, remembered
	add(c)
	dir = e.spool(t, sp("5"))
	c = ok("pending/no-such-spool-dir", again(obj{"spool-dir": dir + "/nonexistent"}))
	c.memory = remembered
	add(c)
	c = ok("pending/spool-dir-2000-hostile", again(obj{"spool-dir": long[:2000]}))
	c.memory = remembered
	add(c)
	add(testCase{name: "pending/bad-BINARY", input: event(t, obj{"options": obj{"spool-dir": dir}}), mirror: []string{dir}, binary: "cfgsnap", printed: binaryError})

	e.memoryCases(t, add, lcEvent, sp)

	// An event too long for one command-line argument is refused, not truncated.
	add(testCase{name: "too-long", input: withOpts(obj{"target": strings.Repeat("x", 70000)}), binary: e.standin, printed: "too long"})
	c = ok("long-but-fits", withOpts(obj{"target": strings.Repeat("x", 60000)}))
	c.delay, c.memory = 60000, remembered
	add(c)
	for i := range cs {
		cs[i].script = e.install(t, cs[i].binary)
	}
	return cs
}

// memoryCases covers persistent-data: the script remembers the last-change it
// handed on. A new one (a commit, or the first run after boot: no
// persistent-data) gets one reinvocation, a second look at its first delivery,
// which the pending marker, read before the binary runs, cannot show; the same
// one (a reinvocation) gets another only while snapshots wait. The instance is
// cfgsnap's own: the script reads only its key, and only a usable value there,
// ignores everything else silently, and returns exactly {memoryKey: VALUE} or
// no persistent-data. Nothing in persistent-data reaches the cmdline other
// than as part of the hex of the whole input (checkCmdline).
func (e *env) memoryCases(t *testing.T, add func(testCase), lcEvent func(lc, pdata any, opts obj) string, sp func(string) *string) {
	remembered := obj{memoryKey: lastChange}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	long := strings.Repeat("$(x)'\"`;|&\n", 200)
	lc64 := "2025-09-20T11:02:08." + strings.Repeat("1", 43) + "Z"
	huge := strings.Repeat(`q"$(x)`, 8000) // 56,000 bytes as JSON: the event still fits
	for _, m := range []struct {
		name    string
		lc      any     // the event's last-change; nil: no such path
		pdata   any     // the incoming persistent-data; nil: none
		pending *string // the pending marker; nil: none
		retry   any     // retry-interval; nil: absent (60)
		delay   int
		memory  any // the persistent-data returned; nil: none
	}{
		// The rule.
		{"new/no-persistent-data/pending-0", lastChange, nil, sp("0"), nil, 60000, remembered},
		{"new/no-persistent-data/no-pending", lastChange, nil, nil, nil, 60000, remembered},
		{"new/no-persistent-data/pending-2", lastChange, nil, sp("2"), nil, 60000, remembered},
		{"new/empty-persistent-data", lastChange, obj{}, sp("0"), nil, 60000, remembered},
		{"new/persistent-data-null", lastChange, raw("null"), sp("0"), nil, 60000, remembered},
		{"new/interval-5", lastChange, nil, sp("0"), "5", 5000, remembered},
		{"same/pending-0", lastChange, remembered, sp("0"), nil, 0, remembered},
		{"same/no-pending", lastChange, remembered, nil, nil, 0, remembered},
		{"same/pending-2", lastChange, remembered, sp("2"), nil, 60000, remembered},
		{"same/pending-2-interval-0.5", lastChange, remembered, sp("2"), "0.5", 500, remembered},
		{"different/pending-0", lastChange, obj{memoryKey: older}, sp("0"), nil, 60000, remembered},
		{"different/no-pending-interval-7", lastChange, obj{memoryKey: older}, nil, "7", 7000, remembered},
		{"different/pending-2", lastChange, obj{memoryKey: older}, sp("2"), nil, 60000, remembered},
		// retry-interval 0: never, and the last-change is remembered all the same.
		{"new/interval-0", lastChange, nil, sp("2"), "0", 0, remembered},
		{"same/interval-0-pending-2", lastChange, remembered, sp("2"), "0", 0, remembered},
		{"different/interval-0", lastChange, obj{memoryKey: older}, sp("2"), "0", 0, remembered},

		// Other keys are not ours: read for nothing, not returned. The rule
		// goes by our key alone.
		{"other-keys/new", lastChange,
			raw(`{"cfgsnap-last-change":"` + older + `","other":{"nested":[1,"x",true,false,null,1.5,-7,{}]},"n":42,"big":123456789012345678901234567890,"s":"text","e":[]}`),
			sp("0"), nil, 60000, remembered},
		{"other-keys/only-others", lastChange, obj{"x": "y", "ethernet-1/2": obj{"stale": "true"}}, sp("0"), nil, 60000, remembered},
		{"other-keys/same", lastChange, obj{memoryKey: lastChange, "x": "y"}, sp("0"), nil, 0, remembered},
		{"other-keys/same-pending-2", lastChange, obj{memoryKey: lastChange, "x": "y"}, sp("2"), nil, 60000, remembered},
		{"other-keys/interval-0", lastChange, obj{"x": "y"}, nil, "0", 0, remembered},
		{"other-keys/no-last-change", nil, obj{"x": "y"}, sp("0"), nil, 0, nil},
		{"other-keys/no-last-change-remembered", nil, obj{memoryKey: older, "x": "y"}, sp("0"), nil, 0, obj{memoryKey: older}},
		// Escaped and raw non-ASCII, lone surrogates, control characters in
		// other keys: not returned, and the output stays ASCII (check).
		{"other-keys/escaped-unicode", lastChange,
			raw(`{"u\ud83d\ude00":"\ud83d\ude00 \u00e9 \ud800 \udfff \u2028 \u0000\u001f \"q\" \\ <&> \u007f"}`), nil, nil, 60000, remembered},
		{"other-keys/escaped-unicode-same", lastChange,
			raw(`{"\ud800":"\udfff","cfgsnap-last-change":"` + lastChange + `","\u00e9":"\ud83d\ude00"}`), nil, nil, 0, remembered},
		{"other-keys/raw-unicode", lastChange, obj{"é 中文": "é 中文 😀 \u2028 \ufeff", memoryKey: older}, nil, nil, 60000, remembered},
		// ... and do not steer the script: options, paths and binary there
		// are data, not options.
		{"other-keys/look-like-options", lastChange,
			obj{"options": obj{"binary": "/x;reboot", "sudo": "true", "retry-interval": "0"}, "binary": "/evil $(reboot)", "sudo": "true",
				"paths": []obj{{"path": lastChangePath, "value": older}}, "retry-interval": "0", "spool-dir": "/"},
			sp("0"), nil, 60000, remembered},
		// Keys like ours: only the exact key counts (after JSON unescaping).
		{"other-keys/escaped-own-key", lastChange, raw(`{"cfgsnap-last-chang\u0065":"` + lastChange + `"}`), sp("0"), nil, 0, remembered},
		{"other-keys/near-own-key", lastChange,
			obj{"cfgsnap-last-change ": lastChange, "Cfgsnap-last-change": lastChange, "cfgsnap-last-changé": lastChange, "persistent-data": remembered},
			sp("0"), nil, 60000, remembered},

		// Hostile persistent-data: never an error, never a line printed.
		// Not an object: ignored.
		{"hostile/not-an-object/list", lastChange, []string{lastChange}, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/list-of-ours", lastChange, []obj{remembered}, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/string", lastChange, lastChange, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/json-in-string", lastChange, `{"cfgsnap-last-change":"` + lastChange + `"}`, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/number", lastChange, 42, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/true", lastChange, true, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/float", lastChange, 1.5, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/out-of-range", lastChange, raw("-1e400"), sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/nested-list", lastChange, raw(nested(200)), sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/huge-string", lastChange, huge, sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/unicode-string", lastChange, "é 中文 😀 \u2028 \ufeff", sp("0"), nil, 60000, remembered},
		{"hostile/not-an-object/no-last-change", nil, "$(reboot)'\"", sp("0"), nil, 0, nil},
		{"hostile/not-an-object/no-last-change-pending-2", nil, []any{remembered}, sp("2"), nil, 60000, nil},
		// Huge, nested deep, out of range beside our key: ignored.
		{"hostile/huge-other-key", lastChange, obj{memoryKey: lastChange, "big": huge}, sp("0"), nil, 0, remembered},
		{"hostile/huge-key", lastChange, obj{huge: 1}, sp("0"), nil, 60000, remembered},
		{"hostile/nested-200-other-key", lastChange, raw(`{"cfgsnap-last-change":"` + lastChange + `","d":` + nested(200) + `}`), sp("0"), nil, 0, remembered},
		{"hostile/nested-200-object", lastChange, raw(`{"d":` + deepObj(200) + `,"cfgsnap-last-change":"` + older + `"}`), sp("0"), nil, 60000, remembered},
		{"hostile/out-of-range-other-key", lastChange, raw(`{"inf":1e400,"-inf":[-1e400],"cfgsnap-last-change":"` + lastChange + `"}`), sp("0"), nil, 0, remembered},
		// Our key holding something that cannot be a last-change: as none.
		{"hostile/huge-value", lastChange, obj{memoryKey: strings.Repeat(lastChange, 2000)}, sp("0"), nil, 60000, remembered},
		{"hostile/quotes-value", lastChange, obj{memoryKey: `"; /sbin/reboot; echo "` + lastChange + `'`}, sp("0"), nil, 60000, remembered},
		{"hostile/2000-chars-value", lastChange, obj{memoryKey: long[:2000], long[:2000]: long[:2000]}, sp("0"), nil, 60000, remembered},
		{"hostile/padded-value", lastChange, obj{memoryKey: " " + lastChange}, sp("0"), nil, 60000, remembered},
		{"hostile/newline-value", lastChange, obj{memoryKey: lastChange + "\n"}, sp("0"), nil, 60000, remembered},
		{"hostile/empty-value", lastChange, obj{memoryKey: ""}, sp("0"), nil, 60000, remembered},
		{"hostile/65-chars-value", lastChange, obj{memoryKey: lc64 + "1"}, sp("0"), nil, 60000, remembered},
		{"hostile/unicode-value", lastChange, obj{memoryKey: "2025-09-20T11:02:08.456Ｚ"}, sp("0"), nil, 60000, remembered},
		{"hostile/escaped-surrogates-value", lastChange, raw(`{"cfgsnap-last-change":"\ud83d\ude00\ud800"}`), sp("0"), nil, 60000, remembered},
		{"hostile/nul-value", lastChange, raw(`{"cfgsnap-last-change":"` + lastChange + `\u0000"}`), sp("0"), nil, 60000, remembered},
		{"hostile/number-value", lastChange, obj{memoryKey: 20250920}, sp("0"), nil, 60000, remembered},
		{"hostile/out-of-range-value", lastChange, raw(`{"cfgsnap-last-change":1e400}`), sp("0"), nil, 60000, remembered},
		{"hostile/true-value", lastChange, obj{memoryKey: true}, sp("0"), nil, 60000, remembered},
		{"hostile/list-value", lastChange, obj{memoryKey: []string{lastChange}}, sp("0"), nil, 60000, remembered},
		{"hostile/object-value", lastChange, obj{memoryKey: obj{memoryKey: lastChange}}, sp("0"), nil, 60000, remembered},
		{"hostile/null-value", lastChange, raw(`{"cfgsnap-last-change":null}`), sp("0"), nil, 60000, remembered},
		{"hostile/nested-200-value", lastChange, raw(`{"cfgsnap-last-change":` + nested(200) + `}`), sp("0"), nil, 60000, remembered},
		// ... and without a usable last-change in the event either: nothing
		// to remember, the pending rule alone.
		{"hostile/number-value-no-last-change", nil, obj{memoryKey: 20250920}, sp("0"), nil, 0, nil},
		{"hostile/unicode-value-no-last-change", "", obj{memoryKey: "é 中文 😀"}, sp("2"), nil, 60000, nil},
		// Quotes are printable ASCII: a usable value, kept, and written back
		// escaped by json.dumps (never on the cmdline but as hex).
		{"hostile/quotes-value-kept", 12345, obj{memoryKey: `"; /sbin/reboot; echo "` + lastChange, "x": 1}, sp("0"), nil, 0,
			obj{memoryKey: `"; /sbin/reboot; echo "` + lastChange}},

		// A last-change that cannot be one (not a short printable ASCII
		// string, or none at all): the pending rule alone, and what was
		// remembered stays.
		{"unusable/number", 12345, remembered, sp("0"), nil, 0, remembered},
		{"unusable/number-pending-2", 12345, remembered, sp("2"), nil, 60000, remembered},
		{"unusable/empty", "", obj{memoryKey: older}, sp("0"), nil, 0, obj{memoryKey: older}},
		{"unusable/65-chars", lc64 + "1", obj{memoryKey: older}, sp("0"), nil, 0, obj{memoryKey: older}},
		{"unusable/newline", lastChange + "\n", obj{memoryKey: older}, sp("0"), nil, 0, obj{memoryKey: older}},
		{"unusable/non-ascii", "2025-09-20T11:02:08.456Ｚ", obj{memoryKey: older}, sp("0"), nil, 0, obj{memoryKey: older}},
		{"unusable/object", obj{"v": lastChange}, nil, sp("0"), nil, 0, nil},
		{"unusable/no-path", nil, remembered, sp("0"), nil, 0, remembered},
		{"unusable/no-path-pending-2", nil, remembered, sp("2"), nil, 60000, remembered},
		{"unusable/no-path-no-persistent-data", nil, nil, sp("2"), nil, 60000, nil},
		{"usable/64-chars", lc64, remembered, sp("0"), nil, 60000, obj{memoryKey: lc64}},
		{"usable/64-chars-same", lc64, obj{memoryKey: lc64}, sp("0"), nil, 0, obj{memoryKey: lc64}},
	} {
		dir := e.spool(t, m.pending)
		opts := obj{"spool-dir": dir}
		if m.retry != nil {
			opts["retry-interval"] = m.retry
		}
		add(testCase{name: "memory/" + m.name, input: lcEvent(m.lc, m.pdata, opts), mirror: []string{dir},
			run: true, binary: e.standin, delay: m.delay, memory: m.memory})
	}
	// A bad retry-interval warns, and the rule holds with the default.
	dir := e.spool(t, sp("0"))
	add(testCase{name: "memory/new/interval-bogus", input: lcEvent(lastChange, nil, obj{"spool-dir": dir, "retry-interval": "bogus"}), mirror: []string{dir},
		run: true, binary: e.standin, delay: 60000, memory: remembered, printed: "option retry-interval"})

	// Odd paths: never a failure, no last-change.
	for name, paths := range map[string]string{
		"object":         `{"path":"` + lastChangePath + `","value":"` + lastChange + `"}`,
		"string":         `"` + lastChangePath + `"`,
		"not-objects":    `["` + lastChangePath + `",1,null,[]]`,
		"no-path-member": `[{"value":"` + lastChange + `"}]`,
		"path-not-str":   `[{"path":["` + lastChangePath + `"],"value":"` + lastChange + `"}]`,
	} {
		in := `{"paths":` + paths + `,"options":{"sudo":"false","spool-dir":"/nonexistent"}}`
		add(testCase{name: "memory/paths/" + name, input: in, run: true, binary: e.standin})
	}
	// The first last-change path counts, as in the binary.
	two := func(a, b string) string {
		return `{"paths":[{"path":"` + lastChangePath + `","value":"` + a + `"},{"path":"` + lastChangePath + `","value":"` + b + `"}],` +
			`"options":{"sudo":"false","spool-dir":"/nonexistent"},"persistent-data":{"cfgsnap-last-change":"` + lastChange + `"}}`
	}
	add(testCase{name: "memory/paths/first-counts-same", input: two(lastChange, older), run: true, binary: e.standin, memory: remembered})
	add(testCase{name: "memory/paths/first-counts-new", input: two(older, lastChange), run: true, binary: e.standin, delay: 60000, memory: obj{memoryKey: older}})

	// Nothing run: nothing new was handed on, so the usable remembered value
	// comes back, alone; without one, no persistent-data.
	pd := obj{memoryKey: older, "x": obj{"y": []int{1}}}
	add(testCase{name: "memory/bad-BINARY", input: lcEvent(lastChange, pd, nil), binary: "cfgsnap", printed: binaryError, memory: obj{memoryKey: older}})
	add(testCase{name: "memory/bad-BINARY-no-persistent-data", input: lcEvent(lastChange, nil, nil), binary: "cfgsnap", printed: binaryError})
	add(testCase{name: "memory/bad-BINARY-others-only", input: lcEvent(lastChange, obj{"x": "y"}, nil), binary: "cfgsnap", printed: binaryError})
	add(testCase{name: "memory/bad-BINARY-unusable-value", input: lcEvent(lastChange, obj{memoryKey: "é 中文 😀"}, nil), binary: "cfgsnap", printed: binaryError})
	add(testCase{name: "memory/bad-BINARY-not-an-object", input: lcEvent(lastChange, []obj{pd}, nil), binary: "cfgsnap", printed: binaryError})
	big := obj{memoryKey: older, "big": strings.Repeat("x", 70000)}
	add(testCase{name: "memory/too-long", input: lcEvent(lastChange, big, nil), binary: e.standin, printed: "too long", memory: obj{memoryKey: older}})
	add(testCase{name: "memory/too-long-others-only", input: lcEvent(lastChange, obj{"big": strings.Repeat("x", 70000)}, nil), binary: e.standin, printed: "too long"})

	// An object whose options are not an object: the binary refuses it, but
	// its persistent-data and last-change count as in any object.
	add(testCase{name: "memory/options-not-an-object",
		input: `{"paths":[{"path":"` + lastChangePath + `","value":"` + lastChange + `"}],"options":"x","persistent-data":{"y":1}}`,
		run:   true, binary: defaultBinary, sudo: true, delay: 60000, memory: remembered})
	add(testCase{name: "memory/options-not-an-object-same",
		input: `{"paths":[{"path":"` + lastChangePath + `","value":"` + lastChange + `"}],"options":"x","persistent-data":{"y":1,"cfgsnap-last-change":"` + lastChange + `"}}`,
		run:   true, binary: defaultBinary, sudo: true, memory: remembered})

	// Not a JSON object: no persistent-data back, as there is no last-change
	// and none remembered.
	for name, in := range map[string]string{
		"truncated": `{"paths":[{"path":"` + lastChangePath + `","value":"` + lastChange + `"}],"persistent-data":{"cfgsnap-last-change":"` + older + `"`,
		"array":     `[{"paths":[{"path":"` + lastChangePath + `","value":"` + lastChange + `"}],"persistent-data":{"cfgsnap-last-change":"` + older + `"}}]`,
		"string":    `"{\"persistent-data\":{\"cfgsnap-last-change\":\"` + older + `\"}}"`,
	} {
		add(testCase{name: "memory/malformed/" + name, input: in, run: true, binary: defaultBinary, sudo: true})
	}
}

func (e *env) check(t *testing.T, c testCase, r result) {
	if r.Error != nil {
		t.Fatalf("the script failed: %s", *r.Error)
	}
	if r.Output == nil {
		t.Fatal("no output")
	}

	// Printed: nothing, or exactly one line saying what is wrong.
	if c.printed == "" {
		if r.Printed != "" {
			t.Errorf("printed %q, want nothing", r.Printed)
		}
	} else if lines := strings.Split(r.Printed, "\n"); len(lines) != 2 || lines[1] != "" || !strings.Contains(lines[0], c.printed) {
		t.Errorf("printed %q, want one line containing %q", r.Printed, c.printed)
	}

	// ASCII only: MicroPython would write non-ASCII as it is, and a surrogate
	// from the input as bytes that are not UTF-8.
	for i, b := range []byte(*r.Output) {
		if b >= 0x80 {
			t.Fatalf("output is not ASCII at byte %d: %.200q", i, (*r.Output)[max(0, i-40):])
		}
	}

	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*r.Output), &top); err != nil {
		t.Fatalf("output %q: %v", *r.Output, err)
	}
	var actions []map[string]json.RawMessage
	wantKeys := 1
	if c.memory != nil {
		wantKeys = 2
	}
	if err := json.Unmarshal(top["actions"], &actions); err != nil || len(top) != wantKeys || actions == nil {
		t.Fatalf(`output %.300s: want {"actions": [...]}, with "persistent-data" %v, and nothing else`, *r.Output, c.memory != nil)
	}
	if c.memory != nil {
		if got, want := jsonValue(t, top["persistent-data"]), jsonValue(t, c.memory); !reflect.DeepEqual(got, want) {
			t.Errorf("persistent-data %.300s, want %.300s", top["persistent-data"], marshal(t, c.memory))
		}
		// Whatever the case: our key alone, holding a usable last-change.
		var pd map[string]any
		if err := json.Unmarshal(top["persistent-data"], &pd); err != nil || len(pd) != 1 {
			t.Errorf("persistent-data %.300s: want an object with %q alone", top["persistent-data"], memoryKey)
		} else if v, _ := pd[memoryKey].(string); !usableLC.MatchString(v) {
			t.Errorf("persistent-data %.300s: want %q holding 1 to 64 printable ASCII characters", top["persistent-data"], memoryKey)
		}
	}
	var cmdline string
	runs, delays := 0, []int{}
	for _, a := range actions {
		if len(a) != 1 {
			t.Errorf("action %v: want one key", a)
		}
		switch {
		case a["run-script"] != nil:
			runs++
			var rs map[string]any
			if err := json.Unmarshal(a["run-script"], &rs); err != nil {
				t.Fatal(err)
			}
			cmdline, _ = rs["cmdline"].(string)
			if len(rs) != 2 || cmdline == "" || rs["always-execute"] != true {
				t.Errorf("run-script %v: want cmdline and always-execute true", rs)
			}
		case a["reinvoke-with-delay"] != nil:
			var ms int
			if err := json.Unmarshal(a["reinvoke-with-delay"], &ms); err != nil {
				t.Errorf("reinvoke-with-delay %s: want whole milliseconds", a["reinvoke-with-delay"])
			}
			delays = append(delays, ms)
		default:
			t.Errorf("unexpected action %v", a)
		}
	}
	if !c.run {
		if len(actions) != 0 {
			t.Errorf("actions %s, want none", top["actions"])
		}
		return
	}
	if runs != 1 {
		t.Fatalf("%d run-script actions, want 1: %s", runs, *r.Output)
	}
	wantDelays := []int{}
	if c.delay > 0 {
		wantDelays = []int{c.delay}
	}
	if !reflect.DeepEqual(delays, wantDelays) {
		t.Errorf("reinvoke-with-delay %v, want %v", delays, wantDelays)
	}
	e.checkCmdline(t, c, cmdline)
}

func (e *env) checkCmdline(t *testing.T, c testCase, cmdline string) {
	if !cmdlineRE.MatchString(cmdline) {
		t.Fatalf("cmdline %.200q does not match %s", cmdline, cmdlineRE)
	}
	rest, sudo := strings.CutPrefix(cmdline, sudoPrefix)
	if sudo != c.sudo {
		t.Errorf("sudo %v, want %v: %.120q", sudo, c.sudo, cmdline)
	}
	hexArg, found := strings.CutPrefix(rest, c.binary+" handle ")
	if !found {
		t.Fatalf("cmdline %.200q does not start %q", cmdline, c.binary+" handle ")
	}
	got, err := hex.DecodeString(hexArg)
	if err != nil || string(got) != c.input {
		t.Fatalf("hex decodes to %.200q (%v), want the input %.200q", got, err, c.input)
	}

	// Split on whitespace without a shell: the same three words.
	want := []string{c.binary, "handle", hexArg}
	fields := strings.Fields(cmdline)
	if sudo {
		if len(fields) < 2 || fields[0] != "/usr/bin/sudo" || fields[1] != "-n" {
			t.Fatalf("fields %.200q: want /usr/bin/sudo -n first", fields)
		}
		fields = fields[2:]
	}
	if !reflect.DeepEqual(fields, want) {
		t.Fatalf("fields %.200q, want %.200q", fields, want)
	}

	// Run it through sh -c as returned, less the sudo prefix (sudo -n passes
	// the words after it unchanged, and may be missing here). A binary other
	// than the stand-in (the default, or one that does not exist here) is
	// swapped for the stand-in, word for word.
	shellCmd := e.standin + strings.TrimPrefix(rest, c.binary)
	want[0] = e.standin
	e.runStandin(t, exec.Command("/bin/sh", "-c", shellCmd), want)
	e.runStandin(t, exec.Command(want[0], strings.Fields(shellCmd)[1:]...), want)
}

// runStandin runs cmd, which starts the stand-in, and compares the argv it recorded.
func (e *env) runStandin(t *testing.T, cmd *exec.Cmd, want []string) {
	t.Helper()
	rec := filepath.Join(filepath.Dir(e.standin), "argv.json")
	os.Remove(rec)
	// Under -race the stand-in (this test binary) would sleep 1 s on exit.
	cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%.200q: %v\n%s", cmd.Args, err, out)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatalf("%.200q: the stand-in recorded nothing: %v", cmd.Args, err)
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(argv, want) {
		t.Errorf("%.200q: stand-in got argv %.200q, want %.200q", cmd.Args, argv, want)
	}
}

// marshal encodes v (a json.RawMessage as it is).
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonValue decodes v, or the JSON encoding of v, keeping each number's digits
// (json.Number), so that a number written back rounded or reformatted shows.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, ok := v.(json.RawMessage)
	if !ok {
		b = marshal(t, v)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%.200s: %v", b, err)
	}
	return out
}

func decoded(r result) any {
	if r.Output == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(*r.Output), &v); err != nil {
		return *r.Output
	}
	return v
}

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
