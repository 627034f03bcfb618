package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The real peers these tests talk to: a stand-in sr_cli executable and an HTTP
// server that speaks SR Linux's JSON-RPC, both serving the fixtures' data.

func fixture(t *testing.T, name string) []byte { return testenv.ReadFixture(t, name) }

// configWithoutPreamble is a fixture config as JSON-RPC's result[0] has it: the
// file form minus "_preamble", sent compact as a server would.
func configWithoutPreamble(t *testing.T, name string) []byte {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(fixture(t, name), &cfg); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	if _, ok := cfg["_preamble"]; !ok {
		t.Fatalf("fixture %s has no _preamble; the test expects the file form", name)
	}
	delete(cfg, "_preamble")
	return compact(t, cfg)
}

func compact(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// standInSRCLI writes an executable that behaves like sr_cli for the commands
// cfgsnap sends: it insists on exactly ["-d", COMMAND], prints the file that
// outputs maps COMMAND to, and fails like sr_cli on anything else. A command mapped
// to "" fails with a two-line error on stderr.
func standInSRCLI(t *testing.T, outputs map[string]string) string {
	t.Helper()
	testenv.NeedCommand(t, "sh")
	var s strings.Builder
	s.WriteString("#!/bin/sh\n")
	s.WriteString("if [ \"$#\" -ne 2 ] || [ \"$1\" != -d ]; then echo \"stand-in sr_cli: want -d COMMAND, got: $*\" >&2; exit 64; fi\n")
	s.WriteString("case \"$2\" in\n")
	cmds := make([]string, 0, len(outputs))
	for c := range outputs {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	for _, cmd := range cmds {
		if out := outputs[cmd]; out != "" {
			fmt.Fprintf(&s, "%s) exec cat %s ;;\n", shellQuote(cmd), shellQuote(out))
		} else {
			fmt.Fprintf(&s, "%s) echo 'Error: Could not connect to the management server' >&2; echo 'Traceback: details nobody needs' >&2; exit 1 ;;\n", shellQuote(cmd))
		}
	}
	s.WriteString("*) echo \"Parsing error: Unknown token '$2'\" >&2; exit 1 ;;\nesac\n")
	p := filepath.Join(t.TempDir(), "sr_cli")
	if err := os.WriteFile(p, []byte(s.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile puts b in a fresh file and returns its path.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rpcPeer is a JSON-RPC server as SR Linux runs it: POST /jsonrpc, basic auth, one
// "get" with one command per request in these tests. answer returns result[0] for
// the command, or a whole response body when raw is set.
type rpcPeer struct {
	t        *testing.T
	user     string
	password string
	answer   func(c rpcCommand) (result any, raw []byte)
	requests atomic.Int32
}

func (p *rpcPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/jsonrpc" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if u, pw, ok := r.BasicAuth(); !ok || u != p.user || pw != p.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	cmds, err := p.commands(r)
	if err != nil {
		p.t.Errorf("request: %v", err)
		w.Write([]byte(`{"error":{"code":-32600,"message":"Invalid request"},"id":0,"jsonrpc":"2.0"}`))
		return
	}
	// The server answers the commands in order; a whole raw body answers them all.
	var results []any
	var raw []byte
	for _, c := range cmds {
		var result any
		if result, raw = p.answer(c); raw != nil {
			break
		}
		results = append(results, result)
	}
	if raw == nil {
		raw = compact(p.t, map[string]any{"result": results, "id": 0, "jsonrpc": "2.0"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(raw)
}

// commands checks the request against the fixtures' request shape
// (jsonrpc-get-root-running.request.json, and jsonrpc-get-multi-state for
// several commands, each with its datastore) and returns its commands.
func (p *rpcPeer) commands(r *http.Request) ([]rpcCommand, error) {
	var got struct {
		JSONRPC string `json:"jsonrpc"`
		ID      *int   `json:"id"`
		Method  string `json:"method"`
		Params  struct {
			Commands []map[string]any `json:"commands"`
		} `json:"params"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		return nil, err
	}
	want := rpcFixtureRequest(p.t, "jsonrpc-get-root-running.request.json")
	if got.JSONRPC != want.JSONRPC || got.ID == nil || *got.ID != *want.ID || got.Method != want.Method {
		return nil, fmt.Errorf("envelope jsonrpc=%q id=%v method=%q, want %q %v %q", got.JSONRPC, got.ID, got.Method, want.JSONRPC, *want.ID, want.Method)
	}
	if len(got.Params.Commands) == 0 {
		return nil, fmt.Errorf("no commands")
	}
	var cmds []rpcCommand
	for _, c := range got.Params.Commands {
		path, _ := c["path"].(string)
		ds, _ := c["datastore"].(string)
		if len(c) != 2 || path == "" || ds == "" {
			return nil, fmt.Errorf("command %v, want exactly path and datastore", c)
		}
		cmds = append(cmds, rpcCommand{Path: path, Datastore: ds})
	}
	return cmds, nil
}

type fixtureRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      *int   `json:"id"`
	Method  string `json:"method"`
	Params  struct {
		Commands []rpcCommand `json:"commands"`
	} `json:"params"`
}

func rpcFixtureRequest(t *testing.T, name string) fixtureRequest {
	var f fixtureRequest
	if err := json.Unmarshal(fixture(t, name), &f); err != nil || f.ID == nil || len(f.Params.Commands) != 1 {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return f
}

// startRPC serves p over TCP and returns a config that reaches it.
func startRPC(t *testing.T, p *rpcPeer) *option.Config {
	t.Helper()
	p.t = t
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return rpcOptions(t, p, srv.URL)
}

// rpcOptions are the options of the jsonrpc source for p served at base.
func rpcOptions(t *testing.T, p *rpcPeer, base string) *option.Config {
	c := option.New()
	c.Source = "jsonrpc"
	c.JSONRPCURL = base + "/jsonrpc"
	c.JSONRPCUser = p.user
	c.JSONRPCPasswordFile = writeFile(t, "password", []byte(p.password+"\n"))
	return c
}

// The commit list the tests use, built from the YANG excerpt's leaves and
// statuses: a boot commit, two shared and two private-candidate commits, one failed.
func testCommits() []snapshot.Commit {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return tm
	}
	return []snapshot.Commit{
		{ID: 1, Type: "shared", Status: "complete", Username: "admin", Comment: "boot",
			Started: at("2025-09-20T10:00:00.100Z"), Ended: at("2025-09-20T10:00:01.200Z")},
		{ID: 2, Type: "shared", Status: "complete", Username: "alice", Comment: "add vlan 10",
			Started: at("2025-09-20T11:02:07.900Z"), Ended: at("2025-09-20T11:02:08.500Z")},
		{ID: 3, Type: "private", Name: "private-bob", Status: "failed", Username: "bob",
			Started: at("2025-09-20T11:05:00Z"), Ended: at("2025-09-20T11:05:00.300Z")},
		{ID: 4, Type: "private", Name: "private-carol", Status: "complete", Username: "carol", Comment: "bgp peer 10.0.0.2",
			Started: at("2025-09-20T11:10:00Z"), Ended: at("2025-09-20T11:10:00.800Z")},
		{ID: 5, Type: "shared", Status: "complete", Username: "dave",
			Started: at("2025-09-20T11:20:00Z"), Ended: at("2025-09-20T11:20:01Z")},
	}
}

// commitEntry renders c as a list entry: ids as numbers or strings, dates with or
// without the CLI's " (N seconds ago)", keys with or without a module prefix.
func commitEntry(c snapshot.Commit, idString, ago bool, prefix string) map[string]any {
	date := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		s := t.Format("2006-01-02T15:04:05.000Z07:00")
		if ago {
			s += " (3 seconds ago)"
		}
		return s
	}
	var id any = c.ID
	if idString {
		id = fmt.Sprint(c.ID)
	}
	m := map[string]any{"id": id, "type": c.Type, "status": c.Status, "username": c.Username, "started": date(c.Started)}
	if c.Name != "" {
		m["name"] = c.Name
	}
	if c.Comment != "" {
		m["comment"] = c.Comment
	}
	if e := date(c.Ended); e != nil {
		m["ended"] = e
	}
	if m["started"] == nil {
		delete(m, "started")
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[prefix+k] = v
	}
	return out
}

func commitList(cs []snapshot.Commit, idString, ago bool, prefix string) []any {
	l := make([]any, len(cs))
	for i, c := range cs {
		l[i] = commitEntry(c, idString, ago, prefix)
	}
	return l
}

func sameCommits(t *testing.T, got, want []snapshot.Commit) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d commits %v, want %d %v", len(got), ids(got), len(want), ids(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || g.Name != w.Name || g.Status != w.Status ||
			g.Comment != w.Comment || g.Username != w.Username || !g.Started.Equal(w.Started) || !g.Ended.Equal(w.Ended) {
			t.Errorf("commit %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func ids(cs []snapshot.Commit) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}
