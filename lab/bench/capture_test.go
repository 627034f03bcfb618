package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/srlsim"
)

// captures is how many snapshots of each source are measured, after the first.
const captures = 50

// capture: `cfgsnap snapshot` of the real configuration to a file:// target,
// with exact attribution (the commit list, the configuration, the commit list
// again) through the stand-in sr_cli and through a stand-in JSON-RPC server on
// a unix socket, against the same snapshot from source file:PATH: one read and
// no commit list, the capture before exact attribution.
func (l *lab) capture() []row {
	dir := l.t.TempDir()
	sw := l.standIn(filepath.Join(dir, "switch"))
	sock, passwordFile := sw.serveJSONRPC(filepath.Join(dir, "jsonrpc"))
	cfgPath := filepath.Join(dir, "config.json")
	type source struct {
		name  string
		flags []string
		// same says whether the landed file holds cfg: byte for byte, but
		// JSON-RPC sends one long line, which cfgsnap indents.
		same func(got, cfg []byte) bool
		// listed: the source gives the commit list, so the snapshot names its commit.
		listed bool
		runs   []proc
	}
	sources := []*source{
		{name: "file", flags: []string{"--source", "file:" + cfgPath}, same: bytes.Equal},
		{name: "sr_cli", flags: []string{"--source", "sr_cli", "--sr-cli", sw.srCLI}, same: bytes.Equal, listed: true},
		{name: "jsonrpc", flags: []string{"--source", "jsonrpc", "--jsonrpc-socket", sock,
			"--jsonrpc-user", "admin", "--jsonrpc-password-file", passwordFile}, same: l.sameJSON, listed: true},
	}
	// Round by round, so that a slow moment of the machine falls on every
	// source alike. Round 0 is not measured: it leaves each spool the previous
	// snapshot a switch's spool holds.
	for round := range captures + 1 {
		cfg := l.config(round + 1)
		id := sw.commit(fmt.Sprintf("bench v%d", round+1), cfg)
		writeAtomic(l.t, cfgPath, cfg)
		for _, s := range sources {
			out := filepath.Join(dir, "out-"+s.name)
			p := run(l.t, append([]string{l.bin, "snapshot", "--target", "file://" + out, "--netns", "none",
				"--spool-dir", filepath.Join(dir, "spool-"+s.name)}, s.flags...)...)
			files := snapshots(out)
			if len(files) != 1 {
				l.t.Fatalf("snapshot from %s: %d files in %s, want 1: %q", s.name, len(files), out, files)
			}
			if got, err := os.ReadFile(files[0]); err != nil || !s.same(got, cfg) {
				l.t.Fatalf("snapshot from %s: %s does not hold the configuration of commit %d (%v)", s.name, files[0], id, err)
			}
			// The first snapshot names every commit so far; each after it, the one new commit.
			if named := fmt.Sprintf("; commit %d by bench;", id); s.listed && round > 0 && !bytes.Contains(p.stdout, []byte(named)) {
				l.t.Fatalf("snapshot from %s printed %q, which does not name commit %d alone", s.name, p.stdout, id)
			}
			os.Remove(files[0])
			if round > 0 {
				s.runs = append(s.runs, p)
			}
		}
	}
	anchor := sources[0].runs
	what := "the same snapshot from source file:PATH, one read and no commit list (the capture before exact attribution): " + dur(p50(anchor))
	size := mib(int64(len(l.config(0))))
	return []row{
		{fmt.Sprintf("capture with exact attribution: `cfgsnap snapshot` of the real %s config through sr_cli (commit list, configuration, commit list: three sr_cli runs) to file://, wall p50 of %d", size, captures),
			dur(p50(sources[1].runs)), what, ratio(p50(sources[1].runs), p50(anchor))},
		{fmt.Sprintf("capture with exact attribution: the same through JSON-RPC on a unix socket (one request: list, configuration, list), wall p50 of %d", captures),
			dur(p50(sources[2].runs)), what, ratio(p50(sources[2].runs), p50(anchor))},
	}
}

// sameJSON says whether a and b are the same JSON value.
func (l *lab) sameJSON(a, b []byte) bool {
	decode := func(b []byte) any {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			l.t.Fatalf("not JSON: %v", err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

// standIn is the simulated switch of lab/sim: the stand-in sr_cli, with the
// running configuration (running.json) and the commit list (commits.json)
// beside it, as the e2e tests keep them.
type standIn struct {
	l       *lab
	dir     string
	srCLI   string
	commits []commit
}

// commit is one entry of "system configuration commit".
type commit struct {
	ID       int    `json:"id"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Comment  string `json:"comment"`
	Username string `json:"username"`
	Started  string `json:"started"`
	Ended    string `json:"ended"`
}

func (l *lab) standIn(dir string) *standIn {
	b, err := os.ReadFile(filepath.Join(l.repo, "lab/sim/sr_cli"))
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	s := &standIn{l: l, dir: dir, srCLI: filepath.Join(dir, "sr_cli")}
	if err := os.WriteFile(s.srCLI, b, 0o755); err != nil {
		l.t.Fatal(err)
	}
	// Id 1 is the boot commit.
	s.commits = []commit{{ID: 1, Type: "shared", Status: "complete", Username: "admin",
		Started: "2025-09-20T10:00:00.000Z", Ended: "2025-09-20T10:00:01.000Z"}}
	return s
}

// commit makes a complete commit that leaves cfg running: the configuration
// changes, then the list names the commit, each file whole, by rename. It
// returns the commit's id.
func (s *standIn) commit(comment string, cfg []byte) int {
	writeAtomic(s.l.t, filepath.Join(s.dir, "running.json"), cfg)
	ended := time.Now().UTC().Truncate(time.Millisecond)
	started := ended.Add(-20 * time.Millisecond)
	// Commits are serialised: one starts after the one before has ended.
	if prev, _ := time.Parse(srlTime, s.commits[len(s.commits)-1].Ended); !started.After(prev) {
		started = prev.Add(time.Millisecond)
		ended = started.Add(time.Millisecond)
	}
	s.commits = append(s.commits, commit{ID: len(s.commits) + 1, Type: "shared", Status: "complete",
		Comment: comment, Username: "bench", Started: started.Format(srlTime), Ended: ended.Format(srlTime)})
	list := map[string]any{"system": map[string]any{"configuration": map[string]any{"commit": s.commits}}}
	writeAtomic(s.l.t, filepath.Join(s.dir, "commits.json"), marshal(s.l.t, list))
	return len(s.commits)
}

// serveJSONRPC serves the stand-in switch's files over JSON-RPC on a unix
// socket (package srlsim), and returns the socket and a file in dir holding
// the password, as root keeps it.
func (s *standIn) serveJSONRPC(dir string) (sock, passwordFile string) {
	t := s.l.t
	const password = "NokiaSrl1!"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	passwordFile = filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srlsim.ServeJSONRPC(t, s.dir, srlsim.Options{User: "admin", Password: password}), passwordFile
}
