package handler_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler"
	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/spool"
)

// sw is a simulated switch: the stand-in sr_cli from lab/sim serving a running
// configuration and a commit list that the test changes as commits happen.
type sw struct {
	t       testing.TB
	dir     string
	commits []snapshot.Commit
	out     string // the file:// target's folder
	spool   string
}

func newSwitch(t *testing.T) *sw {
	t.Helper()
	s := &sw{t: t, dir: t.TempDir(), out: filepath.Join(t.TempDir(), "backups"), spool: filepath.Join(t.TempDir(), "spool")}
	stand, err := os.ReadFile("../lab/sim/sr_cli")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "sr_cli"), stand, 0o755); err != nil {
		t.Fatal(err)
	}
	s.setConfig("leaf1", "initial")
	return s
}

// setConfig writes a small but real-shaped running configuration.
func (s *sw) setConfig(host, description string) []byte {
	cfg := fmt.Appendf(nil, `{
  "srl_nokia-system:system": {"srl_nokia-system-name:name": {"host-name": %q}},
  "srl_nokia-interfaces:interface": [{"name": "ethernet-1/1", "description": %q}]
}
`, host, description)
	if err := os.WriteFile(filepath.Join(s.dir, "running.json"), cfg, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return cfg
}

// commit records a complete commit by user and returns its last-change.
func (s *sw) commit(user, comment string) time.Time {
	// Commits follow each other as on a switch: the next starts after the last ended.
	started := time.Now().UTC().Truncate(time.Millisecond)
	if n := len(s.commits); n > 0 {
		started = s.commits[n-1].Ended.Add(time.Second)
	}
	s.commits = append(s.commits, snapshot.Commit{ID: int64(len(s.commits) + 1), Type: "shared", Status: "complete",
		Username: user, Comment: comment, Started: started, Ended: started.Add(5 * time.Millisecond)})
	b, _ := json.Marshal(map[string]any{"system": map[string]any{"configuration": map[string]any{"commit": s.commits}}})
	if err := os.WriteFile(filepath.Join(s.dir, "commits.json"), b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return started.Add(5 * time.Millisecond)
}

// event is the event handler's input for a last-change, with the instance's options.
func (s *sw) event(lastChange time.Time, extra map[string]any) []byte {
	opts := map[string]any{
		"target": "file://" + s.out, "sr-cli": filepath.Join(s.dir, "sr_cli"),
		"netns": "none", "spool-dir": s.spool, "commit-wait": "0.5",
	}
	for k, v := range extra {
		opts[k] = v
	}
	b, _ := json.Marshal(map[string]any{
		"paths":   []any{map[string]any{"path": "system configuration last-change", "value": lastChange.Format(time.RFC3339Nano)}},
		"options": opts,
	})
	return b
}

// handle runs Handle with a worker starter that only counts: the test runs the
// worker itself, to control when it runs.
func (s *sw) handle(raw []byte) string {
	s.t.Helper()
	line, err := handler.Handle(s.t.Context(), raw, option.New(), handler.Env{Worker: func(*option.Config, []string) error { return nil }})
	if err != nil {
		s.t.Fatalf("handle: %v", err)
	}
	return line
}

func (s *sw) work() error {
	c := option.New()
	c.SpoolDir = s.spool
	return handler.Work(s.t.Context(), c, handler.Env{Logf: s.t.Logf})
}

// landed lists the files a user finds in the backup folder, hidden ones
// included, but not the records beside each snapshot (records lists those).
func (s *sw) landed() map[string]string {
	files := map[string]string{}
	filepath.WalkDir(s.out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !destination.IsRecordName(p) {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(s.out, p)
			files[rel] = string(b)
		}
		return nil
	})
	return files
}

func (s *sw) status() (string, string) {
	st, _ := os.ReadFile(filepath.Join(s.spool, "status"))
	pending, _ := os.ReadFile(filepath.Join(s.spool, "pending"))
	return string(st), strings.TrimSpace(string(pending))
}

func TestCommitLandsNamedByTimeAndUser(t *testing.T) {
	s := newSwitch(t)
	cfg := s.setConfig("leaf1", "uplink to spine1")
	lc := s.commit("alice", "describe uplink")
	line := s.handle(s.event(lc, nil))
	if !strings.Contains(line, "queued last-change "+lc.Format("2006-01-02T15:04:05.000Z")) {
		t.Errorf("handle said %q", line)
	}
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join("leaf1", "leaf1_"+snapshot.Timestamp(lc)+"_alice.json")
	got := s.landed()
	if got[want] != string(cfg) || len(got) != 1 {
		t.Fatalf("landed %v, want only %s with the running config", keys(got), want)
	}
	status, pending := s.status()
	if !strings.Contains(status, "commit 1 by alice") || pending != "0" {
		t.Errorf("status %q, pending %q", status, pending)
	}
	// The next handle shows this run's outcome in the instance state.
	if line := s.handle(s.event(lc, nil)); !strings.Contains(line, "last run: captured leaf1/") {
		t.Errorf("second handle said %q", line)
	}
}

// TestHugeUserNameKeepsTheReport: a user name is whatever the committer chose;
// the report must still say how each target did and what is pending.
func TestHugeUserNameKeepsTheReport(t *testing.T) {
	s := newSwitch(t)
	user := strings.Repeat("u", 100_000)
	s.handle(s.event(s.commit(user, "long"), nil))
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	status, _ := s.status()
	target := "file://" + s.out + " ok (1 delivered); 0 pending"
	if len(status) > 4096 || !strings.HasSuffix(strings.TrimSpace(status), target) || !strings.Contains(status, "commit 1 by "+user[:64]+"... (100000 bytes)") {
		t.Errorf("status is %d bytes: %.120q...%q; want the user clipped and the end %q", len(status), status, status[max(0, len(status)-80):], target)
	}
}

func TestBurstIsCoalescedAndLastStateWins(t *testing.T) {
	s := newSwitch(t)
	var lc time.Time
	users := []string{"alice", "bob", "carol", "dave"}
	for i, u := range users {
		s.setConfig("leaf1", fmt.Sprintf("change %d", i))
		lc = s.commit(u, "")
		s.handle(s.event(lc, nil))
	}
	final := s.setConfig("leaf1", "change 3")
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	got := s.landed()
	want := filepath.Join("leaf1", "leaf1_"+snapshot.Timestamp(lc)+"_dave.json")
	if len(got) != 1 || got[want] != string(final) {
		t.Fatalf("landed %v, want one snapshot %s of the last state", keys(got), want)
	}
	status, _ := s.status()
	if !strings.Contains(status, "commits 1 by alice, 2 by bob, 3 by carol, 4 by dave)") {
		t.Errorf("the report should name every coalesced commit: %q", status)
	}
	// The next capture is compared with this one.
	s.setConfig("leaf1", "change 4")
	lc = s.commit("erin", "")
	s.handle(s.event(lc, nil))
	s.work()
	if status, _ := s.status(); !strings.Contains(status, "commit 5 by erin; 0 added, 0 removed, 1 changed)") {
		t.Errorf("the report should count what changed since the last capture: %q", status)
	}
}

func TestSameLastChangeIsNotCapturedTwice(t *testing.T) {
	s := newSwitch(t)
	lc := s.commit("alice", "")
	s.handle(s.event(lc, nil))
	s.work()
	// A reload, or the script's retry, sends the same last-change again.
	s.handle(s.event(lc, nil))
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	if got := s.landed(); len(got) != 1 {
		t.Errorf("landed %v, want one snapshot", keys(got))
	}
	if status, _ := s.status(); !strings.Contains(status, "unchanged") {
		t.Errorf("status %q", status)
	}
}

func TestUndeliveredStaysSpooledUntilFlushed(t *testing.T) {
	s := newSwitch(t)
	// The target folder's parent is a file: every save fails, as with a full or
	// read-only disk.
	os.WriteFile(filepath.Dir(s.out)+"/blocker", nil, 0o600)
	blocked := filepath.Join(filepath.Dir(s.out), "blocker", "srl")
	cfg := s.setConfig("leaf1", "x")
	lc := s.commit("alice", "")
	s.handle(s.event(lc, map[string]any{"target": "file://" + blocked}))
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	status, pending := s.status()
	if pending != "1" || !strings.Contains(status, "FAILED") {
		t.Fatalf("status %q, pending %q: want the failure reported and the snapshot kept", status, pending)
	}
	// The user fixes the target and flushes by hand.
	c := option.New()
	c.SpoolDir, c.NetNS = s.spool, "none"
	line, err := handler.Flush(t.Context(), c, handler.Env{})
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(line, "FAILED") || !strings.Contains(err.Error(), "stays spooled (1 pending)") {
		t.Errorf("flush to a still-broken target: %q, %v (kind %d): want the failure and exit 5", line, err, fail.KindOf(err))
	}
	os.Remove(filepath.Dir(s.out) + "/blocker")
	line, err = handler.Flush(t.Context(), c, handler.Env{})
	if err != nil || !strings.Contains(line, "1 delivered") || !strings.HasSuffix(line, "0 pending") {
		t.Fatalf("flush: %q, %v", line, err)
	}
	want := filepath.Join(filepath.Dir(s.out), "blocker", "srl", "leaf1", "leaf1_"+snapshot.Timestamp(lc)+"_alice.json")
	if b, err := os.ReadFile(want); err != nil || string(b) != string(cfg) {
		t.Errorf("%s after flush: %v", want, err)
	}
}

func TestCaptureFailureKeepsTheEvent(t *testing.T) {
	s := newSwitch(t)
	lc := s.commit("alice", "")
	os.Rename(filepath.Join(s.dir, "running.json"), filepath.Join(s.dir, "away.json"))
	s.handle(s.event(lc, nil))
	if err := s.work(); fail.KindOf(err) != fail.Source {
		t.Fatalf("work with sr_cli failing: %v, want a Source error", err)
	}
	if status, _ := s.status(); !strings.Contains(status, "capture FAILED") {
		t.Errorf("status %q", status)
	}
	// sr_cli works again: the next run captures the kept event.
	os.Rename(filepath.Join(s.dir, "away.json"), filepath.Join(s.dir, "running.json"))
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	if got := s.landed(); len(got) != 1 {
		t.Errorf("landed %v after recovery", keys(got))
	}
}

func TestOneWorkerAtATime(t *testing.T) {
	s := newSwitch(t)
	lc := s.commit("alice", "")
	s.handle(s.event(lc, nil))
	sp, err := spool.Open(s.spool, 100, 1<<30, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := sp.TryLock()
	if !ok || err != nil {
		t.Fatal("could not take the lock", err)
	}
	// Another worker runs: this one leaves the event to it.
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	if got := s.landed(); len(got) != 0 {
		t.Fatalf("a second worker delivered while the first held the lock: %v", keys(got))
	}
	unlock()
	// Many workers at once, as a burst of events starts them: one snapshot.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { s.work() })
	}
	wg.Wait()
	if got := s.landed(); len(got) != 1 {
		t.Errorf("landed %v, want exactly one snapshot", keys(got))
	}
}

func TestManualSnapshot(t *testing.T) {
	s := newSwitch(t)
	cfg := s.setConfig("leaf1", "before upgrade")
	c := option.New()
	c.Targets, c.SRCLI, c.NetNS, c.SpoolDir, c.Comment = []string{"file://" + s.out}, filepath.Join(s.dir, "sr_cli"), "none", s.spool, "before upgrade"
	t.Setenv("SUDO_USER", "carol")
	now := time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)
	line, err := handler.Snapshot(t.Context(), c, handler.Env{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join("leaf1", "leaf1_20260301T083000.000Z_carol.json")
	if got := s.landed(); got[want] != string(cfg) {
		t.Fatalf("landed %v, want %s", keys(got), want)
	}
	if !strings.Contains(line, "manual, by carol") {
		t.Errorf("line %q", line)
	}

	// An unreachable target: the error says so, with the exit code for it, and
	// the snapshot waits in the spool.
	c.Targets = []string{"file://" + filepath.Join(s.dir, "running.json", "sub")}
	_, err = handler.Snapshot(t.Context(), c, handler.Env{Now: func() time.Time { return now.Add(time.Minute) }})
	if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "stays spooled (1 pending)") {
		t.Errorf("snapshot to a broken target: %v (kind %d)", err, fail.KindOf(err))
	}
}

func TestHandleRefusesBadInput(t *testing.T) {
	s := newSwitch(t)
	lc := s.commit("alice", "")
	for _, c := range []struct {
		raw  []byte
		kind fail.Kind
		says string
	}{
		{[]byte(`{"paths":[]}`), fail.Event, "last-change"},
		{s.event(lc, map[string]any{"target": []string{}}), fail.Usage, "target: no value"},
		{s.event(lc, map[string]any{"target": "ftp://h/x"}), fail.Usage, "unknown scheme"},
		{s.event(lc, map[string]any{"target": "sftp://u:secret@h/x"}), fail.Usage, "password in the URL"},
		{s.event(lc, map[string]any{"tagret": "sftp://h/x"}), fail.Usage, `unknown option "tagret"`},
		// What can never work is refused now, not at every capture or delivery.
		{s.event(lc, map[string]any{"name": "../{host}.json"}), fail.Usage, "name"},
		{s.event(lc, map[string]any{"target": "sftp://backup@h/srl%0Aevil"}), fail.Usage, "control characters"},
		{s.event(lc, map[string]any{"host-key": "SHA256:not-a-fingerprint"}), fail.Usage, "ssh-keygen -lf"},
	} {
		_, err := handler.Handle(t.Context(), c.raw, option.New(), handler.Env{Worker: func(*option.Config, []string) error { return nil }})
		if fail.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%.80s: %v (kind %d), want kind %d saying %q", c.raw, err, fail.KindOf(err), c.kind, c.says)
		}
	}
	if jobs, _ := os.ReadDir(filepath.Join(s.spool, "jobs")); len(jobs) != 0 {
		t.Errorf("refused events were queued: %d", len(jobs))
	}
}

// The real worker starter is exercised with the real binary in cmd/cfgsnap's
// end-to-end test; here, a starter that fails must not lose the event.
func TestHandleKeepsEventWhenWorkerCannotStart(t *testing.T) {
	s := newSwitch(t)
	lc := s.commit("alice", "")
	line, err := handler.Handle(t.Context(), s.event(lc, nil), option.New(), handler.Env{Worker: func(*option.Config, []string) error {
		return fmt.Errorf("fork: resource temporarily unavailable")
	}})
	if err != nil || !strings.Contains(line, "worker not started (fork: resource temporarily unavailable); the event stays queued") {
		t.Fatalf("%q %v", line, err)
	}
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	if got := s.landed(); len(got) != 1 {
		t.Errorf("the queued event was not captured by the next worker: %v", keys(got))
	}
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// TestWebhookSaysWhereItIsStored lists the webhook first: it is still sent
// after the store, and names where the snapshot landed.
func TestWebhookSaysWhereItIsStored(t *testing.T) {
	s := newSwitch(t)
	var got struct {
		User   string   `json:"user"`
		Stored []string `json:"stored"`
		SHA256 string   `json:"sha256"`
	}
	var signature string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signature = r.Header.Get("X-Cfgsnap-Signature")
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer hook.Close()
	// The instance may name secrets only in cfgsnap's own folder, the spool.
	if _, err := spool.Open(s.spool, 10, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(s.spool, "webhook-secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)

	lc := s.commit("alice", "")
	s.handle(s.event(lc, map[string]any{
		"target":              []string{hook.URL + "/hook/cfgsnap", "file://" + s.out},
		"webhook-secret-file": secret,
	}))
	if err := s.work(); err != nil {
		t.Fatal(err)
	}
	name := "leaf1/leaf1_" + snapshot.Timestamp(lc) + "_alice.json"
	if got.User != "alice" || !slices.Equal(got.Stored, []string{"file://" + s.out + "/" + name}) || len(got.SHA256) != 64 {
		t.Errorf("webhook got %+v, want alice's snapshot stored at file://%s/%s", got, s.out, name)
	}
	if !strings.HasPrefix(signature, "sha256=") {
		t.Errorf("unsigned webhook: %q", signature)
	}
	if status, pending := s.status(); pending != "0" || strings.Index(status, "file://") > strings.Index(status, hook.URL) {
		t.Errorf("status %q: want the store reported before the webhook", status)
	}
}

// TestRetentionKeepsTheNewest: keep 2 through the whole pipeline leaves the two
// newest snapshots of this switch, and what cfgsnap did not write.
func TestRetentionKeepsTheNewest(t *testing.T) {
	s := newSwitch(t)
	notes := filepath.Join(s.out, "leaf1", "notes.txt")
	os.MkdirAll(filepath.Dir(notes), 0o700)
	os.WriteFile(notes, []byte("rack 4, row B"), 0o600)
	var want []string
	for i, u := range []string{"alice", "bob", "carol", "dave"} {
		s.setConfig("leaf1", fmt.Sprint("change ", i))
		lc := s.commit(u, "")
		s.handle(s.event(lc, map[string]any{"keep": "2"}))
		if err := s.work(); err != nil {
			t.Fatal(err)
		}
		want = append(want, filepath.Join("leaf1", "leaf1_"+snapshot.Timestamp(lc)+"_"+u+".json"))
	}
	got := keys(s.landed())
	slices.Sort(got)
	if w := []string{want[2], want[3], filepath.Join("leaf1", "notes.txt")}; !slices.Equal(got, w) {
		t.Errorf("left %q, want %q", got, w)
	}
	recs, _ := filepath.Glob(filepath.Join(s.out, "leaf1", "*.rec.json"))
	if w := []string{filepath.Join(s.out, want[2]+".rec.json"), filepath.Join(s.out, want[3]+".rec.json")}; !slices.Equal(recs, w) {
		t.Errorf("records left %q, want those of the snapshots kept, %q", recs, w)
	}
	// A template retention cannot read is refused before anything is queued.
	_, err := handler.Handle(t.Context(), s.event(s.commit("erin", ""), map[string]any{"keep": "2", "name": "{host}/{user}.json"}),
		option.New(), handler.Env{Worker: func(*option.Config, []string) error { return nil }})
	if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "{time}") {
		t.Errorf("keep with a name without {time}: %v", err)
	}
}

// TestEachTargetOnItsOwn: a target that fails is retried later without
// re-sending to the one that succeeded, and the report says which is which.
func TestEachTargetOnItsOwn(t *testing.T) {
	s := newSwitch(t)
	var posts atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { posts.Add(1) }))
	defer hook.Close()
	os.WriteFile(filepath.Dir(s.out)+"/blocker", nil, 0o600)
	blocked := filepath.Join(filepath.Dir(s.out), "blocker", "srl")
	t.Setenv("CFGSNAP_WEBHOOK_SECRET", "s3cret")

	lc := s.commit("alice", "")
	s.handle(s.event(lc, map[string]any{"target": []string{"file://" + blocked, hook.URL + "/hook"}}))
	s.work()
	status, pending := s.status()
	if posts.Load() != 1 || pending != "1" || !strings.Contains(status, "file://"+blocked+" FAILED") || !strings.Contains(status, hook.URL+"/hook ok (1 delivered)") {
		t.Fatalf("status %q, pending %s, %d posts: want the file target failed and the webhook done", status, pending, posts.Load())
	}
	os.Remove(filepath.Dir(s.out) + "/blocker")
	c := option.New()
	c.SpoolDir = s.spool
	line, err := handler.Flush(t.Context(), c, handler.Env{})
	if err != nil || posts.Load() != 1 || !strings.Contains(line, "file://"+blocked+" ok (1 delivered)") || !strings.HasSuffix(line, "0 pending") {
		t.Errorf("flush: %q %v, %d posts: want the file delivered and the webhook not sent again", line, err, posts.Load())
	}
}
