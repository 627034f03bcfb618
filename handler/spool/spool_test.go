package spool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	cfg := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")

	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// The source streams the configuration in.
	if n, err := io.Copy(w, bytes.NewReader(cfg)); err != nil || n != int64(len(cfg)) {
		t.Fatalf("copy: %d, %v", n, err)
	}
	// What the caller reads back to find the host name is what was written.
	r, err := w.Reopen()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.HostName(r); err != nil {
		t.Errorf("HostName of the reopened snapshot: %v", err)
	}
	r.Close()
	if b, _ := os.ReadFile(w.Path()); !bytes.Equal(b, cfg) {
		t.Errorf("Path() holds %d bytes, want the %d written", len(b), len(cfg))
	}

	lc := time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC)
	rec := snapshot.Record{Host: "leaf11", LastChange: lc, User: "admin", Comment: "vlan 10",
		Commits: []snapshot.Commit{{ID: 7, Status: "complete", Username: "admin"}},
		Taken:   lc.Add(time.Second), Name: "leaf11/leaf11_20250920T110208.456Z_admin.json"}
	e, err := w.Commit(rec, []string{"sftp://backup@10.0.0.5/srl", "file:///var/backup", "sftp://backup@10.0.0.5/srl"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cfg)
	if e.Record.Size != int64(len(cfg)) || e.Record.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("Commit filled size %d sha256 %s; want %d %x", e.Record.Size, e.Record.SHA256, len(cfg), sum)
	}
	if !slices.Equal(e.Targets, []string{"sftp://backup@10.0.0.5/srl", "file:///var/backup"}) {
		t.Errorf("targets %q: want each target once, in order", e.Targets)
	}

	// Another process sees the same entry, record and content.
	s2, _ := openSpool(t, dir, 10, 1<<20)
	es := pending(t, s2)
	if len(es) != 1 {
		t.Fatalf("Pending: %d entries, want 1", len(es))
	}
	want := rec
	want.Size, want.SHA256 = e.Record.Size, e.Record.SHA256
	want.Seq, want.ChainRestarted = 1, true // the spool's first record starts its chain
	got := es[0]
	if got.ID != e.ID || !reflectEqualJSON(t, got.Record, want) || !slices.Equal(got.Targets, e.Targets) {
		t.Errorf("Pending()[0] = %+v\nwant %+v", got, Entry{ID: e.ID, Record: want, Targets: e.Targets})
	}
	f, err := s2.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(b, cfg) {
		t.Errorf("Open returned %d bytes that differ from the %d spooled", len(b), len(cfg))
	}
	if p := readPending(t, dir); p != "1\n" {
		t.Errorf("pending file %q, want 1", p)
	}
}

func reflectEqualJSON(t *testing.T, a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Logf("%s\n!=\n%s", ja, jb)
		return false
	}
	return true
}

func TestOrderFollowsCommitWhenClockStepsBack(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 100, 1<<20)
	// NTP may step the clock back after boot: order must not follow it.
	clock := time.Date(2025, 9, 20, 11, 0, 0, 0, time.UTC)
	s.now = func() time.Time { clock = clock.Add(-time.Minute); return clock }
	var want []string
	for i := range 20 {
		n := fmt.Sprintf("snap-%02d", i)
		commit(t, s, n, "config "+n, "file:///a")
		want = append(want, n)
	}
	// A later process whose clock is even further back.
	s2, _ := openSpool(t, dir, 100, 1<<20)
	s2.now = func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }
	commit(t, s2, "snap-20", "config", "file:///a")
	want = append(want, "snap-20")

	es := pending(t, s)
	if got := names(es); !slices.Equal(got, want) {
		t.Fatalf("Pending order %v, want commit order %v", got, want)
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	if !sort.StringsAreSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("IDs %v are not strictly increasing", ids)
	}
}

func TestBoundCount(t *testing.T) {
	dir := t.TempDir()
	s, log := openSpool(t, dir, 3, 1<<20)
	for i := range 5 {
		commit(t, s, fmt.Sprintf("snap-%d.json", i), "config", "sftp://a/x", "file:///b")
	}
	if got := names(pending(t, s)); !slices.Equal(got, []string{"snap-2.json", "snap-3.json", "snap-4.json"}) {
		t.Errorf("kept %v, want the newest 3", got)
	}
	lines := log.Lines()
	if len(lines) != 2 {
		t.Fatalf("logged %q, want one line per drop", lines)
	}
	for i, l := range lines {
		if !strings.Contains(l, fmt.Sprintf("snap-%d.json", i)) || !strings.Contains(l, "never reached sftp://a/x, file:///b") {
			t.Errorf("drop %d logged as %q: want the name and the targets it never reached", i, l)
		}
	}
	if p := readPending(t, dir); p != "3\n" {
		t.Errorf("pending file %q, want 3", p)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	if len(files) != 6 {
		t.Errorf("snapshots folder holds %d files, want 3 configurations and 3 records", len(files))
	}
}

func TestBoundBytes(t *testing.T) {
	dir := t.TempDir()
	s, log := openSpool(t, dir, 100, 100)
	c40 := strings.Repeat("x", 40)
	a := commit(t, s, "a", c40, "sftp://one", "sftp://two")
	if err := s.Delivered(a, "sftp://one", ""); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "b", c40, "sftp://one", "sftp://two")
	commit(t, s, "c", c40, "sftp://one", "sftp://two") // 120 bytes: a goes
	if got := names(pending(t, s)); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("kept %v, want b c", got)
	}
	commit(t, s, "d", strings.Repeat("y", 90), "sftp://one") // 170: b and c go
	if got := names(pending(t, s)); !slices.Equal(got, []string{"d"}) {
		t.Errorf("kept %v, want d", got)
	}
	lines := log.Lines()
	want := []string{"a ", "b ", "c "}
	if len(lines) != len(want) {
		t.Fatalf("logged %q, want drops of a, b, c", lines)
	}
	for i, l := range lines {
		if !strings.Contains(l, "dropped snapshot "+want[i]) {
			t.Errorf("line %d %q: want the drop of %s", i, l, want[i])
		}
	}
	// a had reached sftp://one: only the missed target is reported.
	if !strings.HasSuffix(lines[0], "never reached sftp://two") {
		t.Errorf("drop of a logged as %q: want only sftp://two as never reached", lines[0])
	}
	if p := readPending(t, dir); p != "1\n" {
		t.Errorf("pending file %q, want 1", p)
	}
}

func TestSnapshotLargerThanSpool(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 100)
	commit(t, s, "small", "fits", "file:///a")
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	_, werr := io.Copy(w, strings.NewReader(strings.Repeat("z", 101)))
	_, cerr := w.Commit(snapshot.Record{Name: "big"}, []string{"file:///a"})
	for _, err := range []error{werr, cerr} {
		if fail.KindOf(err) != fail.Usage || !strings.Contains(fmt.Sprint(err), "raise spool-max-bytes") {
			t.Errorf("error %v: want a usage error telling to raise spool-max-bytes", err)
		}
	}
	// The spooled snapshot is kept, nothing of the big one remains.
	if got := names(pending(t, s)); !slices.Equal(got, []string{"small"}) {
		t.Errorf("pending %v, want small only", got)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left %v", l)
	}
}

func TestDeliveredPerTarget(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	e := commit(t, s, "n", "config", "sftp://a", "sftp://b")
	other := commit(t, s, "other", "config", "sftp://a")

	if err := s.Delivered(e, "sftp://a", "sftp://a/n"); err != nil {
		t.Fatal(err)
	}
	// A new process (the next run) sees only what is left, and where the
	// snapshot already is, for the notifications still to send.
	s2, _ := openSpool(t, dir, 10, 1<<20)
	es := pending(t, s2)
	if len(es) != 2 || !slices.Equal(es[0].Targets, []string{"sftp://b"}) || !slices.Equal(es[0].Record.Stored, []string{"sftp://a/n"}) {
		t.Fatalf("after delivery to a: %+v, want n waiting for b only, stored at sftp://a/n", es)
	}
	if p := readPending(t, dir); p != "2\n" {
		t.Errorf("pending file %q, want 2", p)
	}
	// Repeating a delivery, even with the stale entry, changes nothing.
	if err := s2.Delivered(e, "sftp://a", ""); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delivered(es[0], "sftp://b", ""); err != nil {
		t.Fatal(err)
	}
	if got := names(pending(t, s2)); !slices.Equal(got, []string{"other"}) {
		t.Errorf("pending %v, want other only", got)
	}
	if _, err := s2.Open(e); err == nil {
		t.Error("Open of a delivered entry succeeded")
	}
	if err := s2.Delivered(e, "sftp://b", ""); err != nil {
		t.Errorf("Delivered on an entry already gone: %v", err)
	}
	if err := s2.Delivered(other, "sftp://a", ""); err != nil {
		t.Fatal(err)
	}
	if p := readPending(t, dir); p != "0\n" {
		t.Errorf("pending file %q, want 0", p)
	}
	if files, _ := os.ReadDir(filepath.Join(dir, "snapshots")); len(files) != 0 {
		t.Errorf("snapshots folder still holds %d files", len(files))
	}
}

func TestAbortAndMisuse(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a config"))
	w.Abort()
	w.Abort()
	if _, err := w.Commit(snapshot.Record{}, []string{"file:///a"}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	w, _ = s.Create()
	if _, err := w.Commit(snapshot.Record{}, nil); fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "set option target") {
		t.Errorf("Commit without targets: %v; want a usage error asking for a target", err)
	}
	for _, bad := range []Entry{{ID: "../../etc/passwd"}, {ID: ""}, {ID: "00000000000000000001/x"}} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad.ID)
		}
		if err := s.Delivered(bad, "file:///a", ""); err == nil {
			t.Errorf("Delivered(%q) succeeded", bad.ID)
		}
	}
	if err := s.RemoveJobs([]Job{{ID: "../lock"}}); err == nil {
		t.Error("RemoveJobs of a foreign path succeeded")
	}
	if es := pending(t, s); len(es) != 0 {
		t.Errorf("pending %v, want none", names(es))
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left %v", l)
	}
}

func TestJobs(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	var events [][]byte
	for i := range 6 {
		ev := fmt.Appendf(nil, `{"paths":[{"path":"system configuration last-change","value":"2025-09-20T11:02:%02d.456Z"}]}`, i)
		if err := s.AddJob(ev); err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	jobs, err := s.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 6 {
		t.Fatalf("Jobs: %d, want 6", len(jobs))
	}
	for i, j := range jobs {
		if !bytes.Equal(j.Event, events[i]) {
			t.Errorf("job %d holds %s, want %s (oldest first)", i, j.Event, events[i])
		}
	}
	if err := s.RemoveJobs(jobs[:4]); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveJobs(jobs[:2]); err != nil {
		t.Errorf("removing jobs already removed: %v", err)
	}
	s2, _ := openSpool(t, dir, 10, 1<<20)
	left, err := s2.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || !bytes.Equal(left[0].Event, events[4]) || !bytes.Equal(left[1].Event, events[5]) {
		t.Errorf("after removing 4 of 6: %d jobs, want the last 2", len(left))
	}
	err = s.AddJob(make([]byte, MaxEventBytes+1))
	if fail.KindOf(err) != fail.Event {
		t.Errorf("oversized event: %v; want an Event error", err)
	}
}

// TestAddJobFast checks AddJob on the test's disk stays far inside the
// event handler's ~10 s window, fsyncs included.
func TestAddJobFast(t *testing.T) {
	s, _ := openSpool(t, t.TempDir(), 10, 1<<20)
	event := testenv.ReadFixture(t, "eh-input-backup-last-change.json")
	var took []time.Duration
	for range 30 {
		start := time.Now()
		if err := s.AddJob(event); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("AddJob: median %v, slowest %v", took[len(took)/2], took[len(took)-1])
	if took[len(took)/2] > 30*time.Millisecond {
		t.Errorf("AddJob median %v, want well under 100 ms", took[len(took)/2])
	}

	// What the event handler's run does: Open a spool holding snapshots, queue.
	dir := t.TempDir()
	s, _ = openSpool(t, dir, 10, 1<<20)
	for i := range 10 {
		commit(t, s, fmt.Sprint(i), "config", "sftp://a")
	}
	took = took[:0]
	for range 10 {
		start := time.Now()
		s, err := Open(dir, 10, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddJob(event); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("Open+AddJob with 10 snapshots spooled: median %v, slowest %v", took[len(took)/2], took[len(took)-1])
	if took[len(took)/2] > 50*time.Millisecond {
		t.Errorf("Open+AddJob median %v, want well under 100 ms", took[len(took)/2])
	}
}

// TestAddJobWhileOpening runs the event handler's AddJob against other
// processes' Open, which removes leftovers: no job may be lost or fail.
func TestAddJobWhileOpening(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	stop := make(chan struct{})
	var opens sync.WaitGroup
	opens.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := Open(dir, 10, 1<<20, nil); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var adds sync.WaitGroup
	for g := range 4 {
		adds.Go(func() {
			for i := range 25 {
				if err := s.AddJob(fmt.Appendf(nil, `{"g":%d,"i":%d}`, g, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	adds.Wait()
	close(stop)
	opens.Wait()
	jobs, err := s.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		seen[string(j.Event)] = true
	}
	if len(jobs) != 100 || len(seen) != 100 {
		t.Errorf("%d jobs (%d distinct) after 100 AddJob, want 100", len(jobs), len(seen))
	}
}

// TestOpenKeepsWritesInProgress: a run that starts while the worker streams a
// snapshot must not take the worker's temporary file for a leftover.
func TestOpenKeepsWritesInProgress(t *testing.T) {
	dir := t.TempDir()
	worker, _ := openSpool(t, dir, 10, 1<<20)
	w, err := worker.Create()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("first half "))
	openSpool(t, dir, 10, 1<<20) // another process's Open
	w.Write([]byte("second half"))
	if _, err := w.Commit(snapshot.Record{Name: "n"}, []string{"file:///a"}); err != nil {
		t.Fatalf("Commit after another Open: %v", err)
	}
	es := pending(t, worker)
	if len(es) != 1 || es[0].Record.Size != int64(len("first half second half")) {
		t.Errorf("pending %+v, want the whole snapshot", es)
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	kept := commit(t, s, "kept", "config", "file:///a")
	snaps := filepath.Join(dir, "snapshots")
	// What a kill leaves: temporary files in every folder, a configuration
	// renamed before its record, a record whose configuration went missing.
	write := func(p, content string) {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, ".tmp-pending-1"), "9")
	write(filepath.Join(dir, "jobs", ".tmp-job-1"), `{"pa`)
	write(filepath.Join(snaps, ".tmp-snapshot-1"), "half")
	write(filepath.Join(snaps, "00000000000000000001.json"), "orphan")
	meta, _ := json.Marshal(meta{Record: snapshot.Record{Name: "lost.json"}, Targets: []string{"sftp://x"}})
	write(filepath.Join(snaps, "00000000000000000002.meta"), string(meta))
	write(filepath.Join(dir, "pending"), "7\n")

	_, log := openSpool(t, dir, 10, 1<<20)
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("Open left %v", l)
	}
	files, _ := os.ReadDir(snaps)
	var got []string
	for _, f := range files {
		got = append(got, f.Name())
	}
	if want := []string{kept.ID + ".json", kept.ID + ".meta"}; !slices.Equal(got, want) {
		t.Errorf("snapshots folder holds %v, want %v", got, want)
	}
	if p := readPending(t, dir); p != "1\n" {
		t.Errorf("pending file %q, want 1", p)
	}
	if lines := log.Lines(); len(lines) != 1 || !strings.Contains(lines[0], "lost.json") || !strings.Contains(lines[0], "never reached sftp://x") {
		t.Errorf("logged %q, want the drop of lost.json", lines)
	}
}

func TestOpenBoundsAfterLoweringThem(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	for i := range 5 {
		commit(t, s, fmt.Sprint(i), "config", "file:///a")
	}
	s2, log := openSpool(t, dir, 2, 1<<20)
	if got := names(pending(t, s2)); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("after lowering spool-max-count to 2: %v, want 3 4", got)
	}
	if len(log.Lines()) != 3 || readPending(t, dir) != "2\n" {
		t.Errorf("logged %q, pending %q; want 3 drops, 2 pending", log.Lines(), readPending(t, dir))
	}
}

func TestOpenBadOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, c := range []struct {
		dir      string
		count    int
		bytes    int64
		kind     fail.Kind
		contains string
	}{
		{"", 1, 1, fail.Usage, "spool-dir"},
		{t.TempDir(), 0, 1, fail.Usage, "spool-max-count"},
		{t.TempDir(), 1, 0, fail.Usage, "spool-max-bytes"},
		{file, 1, 1, fail.Usage, "not a folder"},
		{filepath.Join(file, "sub"), 1, 1, fail.Usage, file},
		{filepath.Join(t.TempDir(), strings.Repeat("s", 300)), 1, 1, fail.Usage, "file name too long"},
	} {
		_, err := Open(c.dir, c.count, c.bytes, nil)
		if fail.KindOf(err) != c.kind || !strings.Contains(fmt.Sprint(err), c.contains) || strings.Contains(fmt.Sprint(err), "\n") {
			t.Errorf("Open(%q, %d, %d): %v; want one line of kind %d naming %s", c.dir, c.count, c.bytes, err, c.kind, c.contains)
		}
	}
}

func TestPermissions(t *testing.T) {
	for _, umask := range []int{0o077, 0o000} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			// Before the umask: under umask 000, t.TempDir would be
			// world-writable, and Open rightly refuses a spool below it.
			dir := filepath.Join(t.TempDir(), "etc", "cfgsnap")
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			s, _ := openSpool(t, dir, 10, 1<<20)
			if err := s.AddJob([]byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			commit(t, s, "n", "config", "file:///a")
			if err := s.SetStatus("ok"); err != nil {
				t.Fatal(err)
			}
			unlock, _, _ := s.TryLock()
			unlock()
			want := map[string]os.FileMode{".": 0o755 | os.ModeDir, "pending": 0o644,
				"jobs": 0o700 | os.ModeDir, "snapshots": 0o700 | os.ModeDir}
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil {
					t.Fatal(err)
				}
				rel, _ := filepath.Rel(dir, p)
				fi, _ := d.Info()
				m, ok := want[rel]
				if !ok {
					m = 0o600 // every other file: configurations hold secrets
				}
				if fi.Mode() != m {
					t.Errorf("%s has mode %v, want %v", rel, fi.Mode(), m)
				}
				return nil
			})
		})
	}
	t.Run("private folders tightened", func(t *testing.T) {
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "snapshots"), 0o777)
		os.Chmod(filepath.Join(dir, "snapshots"), 0o777)
		openSpool(t, dir, 10, 1<<20)
		if fi, _ := os.Stat(filepath.Join(dir, "snapshots")); fi.Mode().Perm() != 0o700 {
			t.Errorf("snapshots left at %v, want 0700", fi.Mode().Perm())
		}
	})
}

func TestStatus(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	if st, err := s.Status(); st != "" || err != nil {
		t.Errorf("Status before any run: %q, %v; want empty", st, err)
	}
	if err := s.SetStatus("2 delivered,\n1 failed: sftp://a: timeout\r\n"); err != nil {
		t.Fatal(err)
	}
	s2, _ := openSpool(t, dir, 10, 1<<20)
	if st, err := s2.Status(); st != "2 delivered, 1 failed: sftp://a: timeout" || err != nil {
		t.Errorf("Status in the next run: %q, %v; want the line, on one line", st, err)
	}
	s2.SetStatus("captured " + strings.Repeat("é", 5000) + "; 3 pending")
	st, _ := s2.Status()
	if len(st) > 4096 || !strings.HasPrefix(st, "captured éé") || !strings.HasSuffix(st, "é; 3 pending") || !utf8.ValidString(st) {
		t.Errorf("long status kept as %d bytes, %q...%q; want at most 4096, its start and its end, cut between characters", len(st), st[:20], st[len(st)-20:])
	}
}

func TestTryLockTwoSpools(t *testing.T) {
	dir := t.TempDir()
	a, _ := openSpool(t, dir, 10, 1<<20)
	b, _ := openSpool(t, dir, 10, 1<<20)
	unlockA, ok, err := a.TryLock()
	if !ok || err != nil {
		t.Fatalf("first TryLock: %v %v", ok, err)
	}
	if _, ok, err := b.TryLock(); ok || err != nil {
		t.Fatalf("second TryLock while held: %v %v; want false, nil", ok, err)
	}
	if _, err := b.Lock(ctxTimeout(t, 50*time.Millisecond)); fail.KindOf(err) != fail.Busy {
		t.Fatalf("Lock while held: %v; want a Busy error", err)
	}
	go func() { time.Sleep(30 * time.Millisecond); unlockA() }()
	unlockB, err := b.Lock(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlockA() // twice is harmless
	if _, ok, _ := a.TryLock(); ok {
		t.Fatal("a took the lock b holds")
	}
	unlockB()
}

func TestLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	cmd := child(t, "hold", dir)
	defer cmd.Process.Kill()
	if _, ok, err := s.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while another process holds the lock: %v, %v; want false", ok, err)
	}
	_, err := s.Lock(ctxTimeout(t, 100*time.Millisecond))
	if fail.KindOf(err) != fail.Busy || !strings.Contains(err.Error(), "locked by another cfgsnap") {
		t.Fatalf("Lock: %v; want Busy", err)
	}
	// SIGKILL gives the holder no chance to unlock: the kernel must.
	cmd.Process.Kill()
	cmd.Wait()
	unlock, err := s.Lock(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	unlock()
}

// TestTakeOver: a worker leaves the queue to a live holder at once, but waits
// for the lock of one that was killed and has not let go of it yet.
func TestTakeOver(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	live := child(t, "hold", dir)
	if _, ok, err := s.TakeOver(t.Context()); ok || err != nil {
		t.Fatalf("TakeOver from a live holder: %v, %v; want false", ok, err)
	}
	live.Process.Kill()
	live.Wait()

	dying := child(t, "hold-dying", dir)
	dying.Process.Kill()
	dying.Wait()
	if _, ok, _ := s.TryLock(); ok {
		t.Fatal("the lock was free at once: the test shows nothing")
	}
	unlock, ok, err := s.TakeOver(t.Context())
	if !ok || err != nil {
		t.Fatalf("TakeOver from a killed holder whose lock outlives it briefly: %v, %v; want the lock", ok, err)
	}
	unlock()
}

func TestCaptured(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	if m, err := s.Captured(); m != (snapshot.Mark{}) || err != nil {
		t.Errorf("Captured before any capture: %+v, %v; want zero", m, err)
	}
	lc := time.Date(2025, 9, 20, 13, 2, 8, 456e6, time.FixedZone("CEST", 2*3600))
	want := snapshot.Mark{Commit: 42, Started: lc.Add(-time.Second), LastChange: lc}
	if err := s.SetCaptured(want); err != nil {
		t.Fatal(err)
	}
	s2, _ := openSpool(t, dir, 10, 1<<20)
	if m, err := s2.Captured(); m.Commit != 42 || !m.Started.Equal(want.Started) || !m.LastChange.Equal(lc) || err != nil {
		t.Errorf("Captured in the next run: %+v, %v; want %+v", m, err, want)
	}
	// A spool written before commits were tracked holds the last-change alone.
	os.WriteFile(filepath.Join(dir, "captured"), []byte("2025-09-20T11:02:08.456Z\n"), 0o600)
	if m, err := s2.Captured(); m.Commit != 0 || !m.LastChange.Equal(lc) || err != nil {
		t.Errorf("Captured from an older spool: %+v, %v; want last-change %v and no commit", m, err, lc)
	}
	os.WriteFile(filepath.Join(dir, "captured"), []byte("yesterday"), 0o600)
	if _, err := s2.Captured(); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("damaged file: %v; want an error saying to remove it", err)
	}
}

func TestPreviousOutlivesDelivery(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	if _, err := s.Previous(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Previous before any capture: %v, want fs.ErrNotExist", err)
	}
	first := commit(t, s, "a", "config one", "sftp://a")
	if err := s.KeepAsPrevious(first); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(first, "sftp://a", ""); err != nil {
		t.Fatal(err)
	}
	second := commit(t, s, "b", "config two", "sftp://a")
	f, err := s.Previous()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "config one" {
		t.Errorf("previous after delivery: %q", got)
	}
	s.KeepAsPrevious(second)
	f, _ = s.Previous()
	got, _ = io.ReadAll(f)
	f.Close()
	if string(got) != "config two" {
		t.Errorf("previous after the next capture: %q", got)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left %v", l)
	}
}
