package main_test

// Exact attribution: commits keep arriving while a slow switch is read, and
// every file that lands must hold the configuration as the commit in its name
// left it (issue "Exact attribution"). The switch is the simulated one of
// e2e_test.go, read through the stand-in sr_cli or a stand-in JSON-RPC server;
// the backup host runs sshd (SFTP and git) and a webhook receiver, which
// collects every snapshot's record as a user's receiver would.

import (
	"bytes"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/srlsim"
)

// attribution is one run: how the switch is read and how commits arrive.
type attribution struct {
	source     string // sr_cli or jsonrpc
	users      []string
	commits    int
	gap        func(r *mathrand.Rand) time.Duration // between two commits
	failedAt   int                                  // the commit (1-based, of the burst) that fails
	readDelay  time.Duration                        // how long the switch takes to give its configuration
	commitWait string                               // option commit-wait
	// minSnapshots is how many snapshots the burst must at least make, so that
	// the run tests what it claims to: reads that commits overtake.
	minSnapshots int
}

func testAttribution(t *testing.T, s *suite, a attribution) {
	l := newLab(t, s)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(uint64(seed), 1))

	backups := filepath.Join(l.serverRoot, "srv", "backups")
	repo := newBareRepo(t, filepath.Join(l.serverRoot, "srv/git/configs.git"))
	hook := &hookReceiver{}
	hookTarget := "http://" + net.JoinHostPort(hookHost, strconv.Itoa(l.serve(hook))) + "/hook/cfgsnap/leaf11"
	keys := l.spool // the instance may name secrets only in cfgsnap's folder
	write(t, filepath.Join(keys, "webhook-secret"), []byte("attribution\n"), 0o600)
	opts := l.options(l.targetURL("sftp", backups), l.targetURL("git+ssh", repo.dir), hookTarget)
	opts["webhook-secret-file"] = filepath.Join(keys, "webhook-secret")
	opts["commit-wait"] = a.commitWait

	sw := &simSwitch{l: l}
	switch a.source {
	case "sr_cli":
		write(t, filepath.Join(l.switchDir, "delay"), []byte(fmt.Sprintf("%.3f\n", a.readDelay.Seconds())), 0o644)
	case "jsonrpc":
		const password = "NokiaSrl1!"
		sock := srlsim.ServeJSONRPC(t, l.switchDir, srlsim.Options{User: "admin", Password: password, ReadDelay: a.readDelay})
		write(t, filepath.Join(keys, "jsonrpc-password"), []byte(password+"\n"), 0o600)
		opts["source"], opts["jsonrpc-socket"], opts["jsonrpc-user"] = "jsonrpc", sock, "admin"
		opts["jsonrpc-password-file"] = filepath.Join(keys, "jsonrpc-password")
	}

	// The baseline: one commit, captured alone, before the burst.
	events := make(chan time.Time, a.commits+1)
	sw.commit("admin", "baseline", false, events)
	var memory map[string]any
	memory = l.fire(<-events, opts, memory)
	baseline := len(records(t, hook))

	// The burst: commits arrive while the worker reads, and the event handler
	// runs the script for each, one run at a time, with the newest last-change
	// when several queued up (as it does: each run carries the path's value).
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		for i := 1; i <= a.commits; i++ {
			time.Sleep(a.gap(rng))
			user := a.users[i%len(a.users)]
			sw.commit(user, fmt.Sprintf("change %d by %s", i, user), i == a.failedAt, events)
		}
	}()
	start := time.Now()
	fired := 0
	for lc := range events {
		for more := true; more; {
			select {
			case next, ok := <-events:
				if ok {
					lc = next
				} else {
					more = false
				}
			default:
				more = false
			}
		}
		out, _ := l.runScript(l.event(lc, opts, memory))
		line, _ := cmdline(t, out)
		memory = remembers(t, out, lc)
		l.runCmdline(line)
		fired++
	}
	<-done
	l.waitWorker()
	t.Logf("%d commits (%d complete) in %v, %d events fired; %s", a.commits, len(sw.complete()), time.Since(start).Round(time.Millisecond), fired, l.status())

	if n := sw.check(t, hook, backups, repo, baseline); n < a.minSnapshots {
		t.Errorf("the burst made %d snapshots, want at least %d: the reads were not overtaken as the test means them to be", n, a.minSnapshots)
	}
}

// simSwitch drives the lab's switch through commits as SR Linux makes them: the
// commit is listed while it validates, the running configuration changes, it
// completes, then last-change fires the event. Files change whole, by rename.
type simSwitch struct {
	l  *lab
	mu sync.Mutex
	// states is the running configuration each complete commit left;
	// lastChange and failed are keyed by commit id too.
	states     map[int][]byte
	lastChange map[int]time.Time
	failed     map[int]bool
	running    []byte
}

// commit makes one commit by user; a failing one changes nothing. The
// last-change of a complete one goes to events.
func (s *simSwitch) commit(user, comment string, fails bool, events chan<- time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.l
	if s.states == nil {
		s.states, s.lastChange, s.failed = map[int][]byte{}, map[int]time.Time{}, map[int]bool{}
		l.commits = []commit{{ID: 1, Type: "shared", Status: "complete", Username: "admin",
			Started: "2025-09-20T10:00:00.000Z", Ended: "2025-09-20T10:00:01.000Z"}}
	}
	id := len(l.commits) + 1
	now := func() string { return time.Now().UTC().Format(srlTime) }
	l.commits = append(l.commits, commit{ID: id, Type: "shared", Status: "validating", Comment: comment, Username: user, Started: now()})
	l.writeCommits()
	c := &l.commits[id-1]
	if fails {
		time.Sleep(5 * time.Millisecond)
		c.Status, c.Ended = "failed", now()
		l.writeCommits()
		s.failed[id] = true
		return
	}
	cfg := l.running("leaf11", func(cfg map[string]any) {
		sys := cfg["srl_nokia-system:system"].(map[string]any)
		sys["srl_nokia-system-banner:banner"] = map[string]any{"login-banner": comment}
	})
	writeAtomic(l.t, filepath.Join(l.switchDir, "running.json"), cfg, 0o644)
	lc := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(2 * time.Millisecond) // checkpoint and save: "ended" comes after last-change
	c.Status, c.Ended = "complete", now()
	l.writeCommits()
	s.states[id], s.lastChange[id], s.running = cfg, lc, cfg
	events <- lc
}

// complete lists the ids of the complete commits, oldest first.
func (s *simSwitch) complete() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []int
	for id := range s.states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// record is a snapshot's record as the webhook received it.
type record struct {
	Name       string    `json:"name"`
	User       string    `json:"user"`
	LastChange time.Time `json:"last_change"`
	SHA256     string    `json:"sha256"`
	Commits    []struct {
		ID       int    `json:"id"`
		Username string `json:"username"`
		Comment  string `json:"comment"`
	} `json:"commits"`
	Unsettled bool `json:"unsettled"`
	Possibly  []struct {
		ID int `json:"id"`
	} `json:"possibly_included"`
}

func records(t *testing.T, hook *hookReceiver) []record {
	t.Helper()
	var out []record
	for _, p := range hook.all() {
		var r record
		if err := json.Unmarshal(p.body, &r); err != nil {
			t.Fatalf("a webhook body is not a record: %v\n%s", err, p.body)
		}
		out = append(out, r)
	}
	return out
}

// check is what a user would check after the burst, on the content: every
// file on the server holds what the switch held after the commit its name and
// record claim; every complete commit is named exactly once; git shows each
// snapshot by its newest commit's user with everyone else as co-authors.
func (s *simSwitch) check(t *testing.T, hook *hookReceiver, backups string, repo *bareRepo, baseline int) (burst int) {
	t.Helper()
	recs := records(t, hook)
	want := func(id int) []byte { return s.states[id] }
	named := map[int]int{}
	var names []string
	unsettled := 0
	for _, r := range recs {
		names = append(names, r.Name)
		if len(r.Commits) == 0 {
			t.Errorf("%s names no commit", r.Name)
			continue
		}
		for _, c := range r.Commits {
			named[c.ID]++
			if s.failed[c.ID] {
				t.Errorf("%s names commit %d, which failed", r.Name, c.ID)
			}
		}
		for _, c := range r.Possibly {
			if s.failed[c.ID] {
				t.Errorf("%s lists commit %d as possibly included; it failed", r.Name, c.ID)
			}
		}
		newest := r.Commits[len(r.Commits)-1]
		if r.User != newest.Username {
			t.Errorf("%s: user %q, want %q, whose commit %d is its newest", r.Name, r.User, newest.Username, newest.ID)
		}
		ts := r.LastChange.UTC().Format(tsLayout)
		if !r.LastChange.Equal(s.lastChange[newest.ID]) {
			// No event named it when it was read: its end stands in.
			ended, _ := time.Parse(srlTime, s.l.commits[newest.ID-1].Ended)
			if !r.LastChange.Equal(ended) {
				t.Errorf("%s: last-change %v is neither commit %d's last-change %v nor its end %v", r.Name, r.LastChange, newest.ID, s.lastChange[newest.ID], ended)
			}
		}
		if wantName := "leaf11/leaf11_" + ts + "_" + newest.Username + ".json"; r.Name != wantName {
			t.Errorf("record named %s, want %s", r.Name, wantName)
		}
		got, err := os.ReadFile(filepath.Join(backups, r.Name))
		if err != nil {
			t.Errorf("%s is not on the server: %v", r.Name, err)
			continue
		}
		if !r.Unsettled {
			if !bytes.Equal(got, want(newest.ID)) {
				t.Errorf("%s (commits %v) does not hold the configuration commit %d left, byte for byte: it holds %s", r.Name, commitIDs(r), newest.ID, s.whose(got))
			}
			continue
		}
		unsettled++
		last := newest.ID
		if n := len(r.Possibly); n > 0 {
			last = r.Possibly[n-1].ID
		}
		if id := s.stateOf(got); id < newest.ID || id > last {
			t.Errorf("%s is unsettled between commits %d and %d, but holds %s", r.Name, newest.ID, last, s.whose(got))
		}
	}
	if files := files(t, backups); !slices.Equal(files, sorted(names)) {
		t.Errorf("the server holds %q; want exactly the %d snapshots the records name %q", files, len(names), sorted(names))
	}
	for _, id := range s.complete() {
		if n := named[id]; n != 1 {
			t.Errorf("commit %d is named by %d records, want exactly 1", id, n)
		}
	}
	t.Logf("%d snapshots after the baseline's %d, %d unsettled; commits per snapshot: %v", len(recs)-baseline, baseline, unsettled, perSnapshot(recs))

	// git: one commit per change of content, authored by the newest commit's
	// user, every other user of the snapshot a co-author.
	log := repo.git("log", "--reverse", "--format=%H", "main")
	var prev []byte
	i := 0
	for _, h := range strings.Fields(log) {
		content := []byte(repo.git("show", h+":leaf11.json"))
		for i < len(recs) && bytes.Equal(s.fileOf(backups, recs[i]), prev) {
			i++ // the same content as the commit before: git makes none
		}
		if i == len(recs) {
			t.Errorf("git commit %s has no snapshot left to match", h)
			break
		}
		r := recs[i]
		i++
		if !bytes.Equal(content, s.fileOf(backups, r)) {
			t.Errorf("git commit %s holds %s, want the content of %s", h, s.whose(content), r.Name)
		}
		author := strings.TrimSpace(repo.git("log", "-1", "--format=%an", h))
		var coAuthors []string
		for _, c := range r.Commits {
			if c.Username != author && !slices.Contains(coAuthors, c.Username) {
				coAuthors = append(coAuthors, c.Username)
			}
		}
		var wantTrailers []string
		for _, u := range coAuthors {
			wantTrailers = append(wantTrailers, u+" <"+u+"@leaf11>")
		}
		trailers := strings.TrimSpace(repo.git("log", "-1", "--format=%(trailers:key=Co-authored-by,valueonly)", h))
		if author != r.User || trailers != strings.Join(wantTrailers, "\n") {
			t.Errorf("git commit %s for %s: author %q and co-authors %q, want %q and %q", h, r.Name, author, trailers, r.User, wantTrailers)
		}
		prev = content
	}
	repo.fsck("attribution")

	// worker.log: one line per snapshot, naming all its commits.
	logText, _ := os.ReadFile(filepath.Join(s.l.spool, "worker.log"))
	for _, r := range recs {
		line := ""
		for _, l := range strings.Split(string(logText), "\n") {
			if strings.Contains(l, "captured "+r.Name+" (sha256 "+r.SHA256) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("worker.log has no line for %s", r.Name)
			continue
		}
		for _, c := range r.Commits {
			if !strings.Contains(line, fmt.Sprintf("commit %d by %q", c.ID, c.Username)) {
				t.Errorf("worker.log's line for %s does not name commit %d by %s: %s", r.Name, c.ID, c.Username, line)
			}
		}
	}
	return len(recs) - baseline
}

// fileOf is what landed on the server for r.
func (s *simSwitch) fileOf(backups string, r record) []byte {
	b, _ := os.ReadFile(filepath.Join(backups, r.Name))
	return b
}

// stateOf is the commit whose configuration b is, or -1.
func (s *simSwitch) stateOf(b []byte) int {
	for id, st := range s.states {
		if bytes.Equal(st, b) {
			return id
		}
	}
	return -1
}

func (s *simSwitch) whose(b []byte) string {
	if id := s.stateOf(b); id > 0 {
		return fmt.Sprintf("commit %d's configuration", id)
	}
	return fmt.Sprintf("%d bytes that are no commit's configuration", len(b))
}

func commitIDs(r record) []int {
	var ids []int
	for _, c := range r.Commits {
		ids = append(ids, c.ID)
	}
	return ids
}

func perSnapshot(recs []record) []int {
	var n []int
	for _, r := range recs {
		n = append(n, len(r.Commits))
	}
	return n
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
