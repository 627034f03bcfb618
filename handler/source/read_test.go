package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// simSwitch is a switch behind its JSON-RPC server: a commit list and a running
// configuration that says which commit left it ("rev"), so a test can tell
// what a read holds. duringRead runs inside each read of the configuration,
// before the configuration is served: commits it makes are in what is read.
type simSwitch struct {
	mu         sync.Mutex
	t0         time.Time
	commits    []snapshot.Commit
	rev        int64 // the newest commit applied to the running configuration
	reads      int
	duringRead func(n int)
}

func newSimSwitch(t *testing.T) (*simSwitch, Source) {
	t.Helper()
	s := &simSwitch{t0: time.Date(2025, 9, 20, 11, 0, 0, 0, time.UTC)}
	s.commit("admin", "complete") // the boot commit
	p := &rpcPeer{user: "admin", password: testPassword, answer: func(c rpcCommand) (any, []byte) {
		switch {
		case c.Path == "/system/configuration/commit" && c.Datastore == "state":
			s.mu.Lock()
			defer s.mu.Unlock()
			return map[string]any{"commit": commitList(s.commits, false, false, "")}, nil
		case c.Path == "/" && c.Datastore == "running":
			s.mu.Lock()
			s.reads++
			n, hook := s.reads, s.duringRead
			s.mu.Unlock()
			if hook != nil {
				hook(n)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			return map[string]any{"system": map[string]any{"name": map[string]any{"host-name": "leaf1"}}, "rev": s.rev}, nil
		}
		t.Errorf("unexpected get %s from %s", c.Path, c.Datastore)
		return nil, nil
	}}
	return s, openRPC(t, startRPC(t, p), nil)
}

// commit adds a commit by user with status; a complete one changes the
// configuration. It returns the commit and its last-change.
func (s *simSwitch) commit(user, status string) (snapshot.Commit, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := int64(len(s.commits) + 1)
	started := s.t0.Add(time.Duration(id) * time.Second)
	c := snapshot.Commit{ID: id, Type: "shared", Status: status, Username: user, Comment: fmt.Sprintf("change %d", id), Started: started}
	if status == "complete" || status == "failed" {
		c.Ended = started.Add(300 * time.Millisecond)
	}
	if status == "complete" {
		s.rev = id
	}
	s.commits = append(s.commits, c)
	return c, started.Add(200 * time.Millisecond)
}

// setStatus moves commit id to status, as the switch does when it completes.
func (s *simSwitch) setStatus(id int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.commits[id-1]
	c.Status = status
	if status == "complete" {
		c.Ended = c.Started.Add(300 * time.Millisecond)
		s.rev = max(s.rev, id)
	}
}

func (s *simSwitch) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// buffer is a Sink in memory.
type buffer struct{ bytes.Buffer }

func (b *buffer) Reset() error { b.Buffer.Reset(); return nil }

// rev is the commit the configuration read says left it.
func (b *buffer) rev(t *testing.T) int64 {
	t.Helper()
	var cfg struct{ Rev int64 }
	if err := json.Unmarshal(b.Bytes(), &cfg); err != nil {
		t.Fatalf("what Read wrote is not the configuration: %v: %q", err, b.String())
	}
	return cfg.Rev
}

// plain hides the JSON-RPC source's one-request bracket: the source then reads
// as sr_cli does, list, configuration and list in three exchanges.
type plain struct{ Source }

// bothWays runs a test once with the bracketed JSON-RPC read and once with
// three separate reads.
func bothWays(t *testing.T, test func(t *testing.T, sw *simSwitch, src Source)) {
	for _, way := range []string{"bracketed", "three reads"} {
		t.Run(way, func(t *testing.T) {
			t.Parallel()
			sw, src := newSimSwitch(t)
			if way == "three reads" {
				src = plain{src}
			}
			test(t, sw, src)
		})
	}
}

func lastChanges(lcs ...time.Time) func() []time.Time {
	return func() []time.Time { return lcs }
}

func mark(c snapshot.Commit, lc time.Time) snapshot.Mark {
	return snapshot.Mark{Commit: c.ID, Started: c.Started, LastChange: lc}
}

func TestReadSettledNamesEveryCommitSinceTheMark(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		boot, bootLC := sw.commits[0], sw.t0
		alice, _ := sw.commit("alice", "complete")
		sw.commit("bob", "failed") // never named
		carol, carolLC := sw.commit("carol", "complete")
		var got buffer
		r, err := Read(t.Context(), src, Request{Since: mark(boot, bootLC), LastChanges: lastChanges(carolLC), Budget: time.Second}, &got)
		if err != nil {
			t.Fatal(err)
		}
		sameCommits(t, r.Commits, []snapshot.Commit{alice, carol})
		if r.Unsettled || r.Possibly != nil || got.rev(t) != carol.ID || !r.LastChange.Equal(carolLC) {
			t.Errorf("unsettled %v, possibly %v, rev %d, last-change %v; want a settled read of commit %d at %v", r.Unsettled, ids(r.Possibly), got.rev(t), r.LastChange, carol.ID, carolLC)
		}
		if r.Mark != mark(carol, carolLC) {
			t.Errorf("mark %+v, want %+v", r.Mark, mark(carol, carolLC))
		}
		if n := sw.readCount(); n != 1 {
			t.Errorf("read the configuration %d times, want once", n)
		}
	})
}

// The defect of the issue "Exact attribution": a commit that completes while the
// configuration is read is in the content, so it must be in the name and record.
func TestReadAgainWhenACommitCompletesDuringTheRead(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		hugo, hugoLC := sw.commit("hugo", "complete")
		var gina snapshot.Commit
		sw.duringRead = func(n int) {
			if n == 1 {
				gina, _ = sw.commit("gina", "complete")
			}
		}
		var got buffer
		r, err := Read(t.Context(), src, Request{Since: mark(sw.commits[0], sw.t0), LastChanges: lastChanges(hugoLC), Budget: 5 * time.Second}, &got)
		if err != nil {
			t.Fatal(err)
		}
		sameCommits(t, r.Commits, []snapshot.Commit{hugo, gina})
		if got.rev(t) != gina.ID || r.Unsettled {
			t.Errorf("content of commit %d, unsettled %v; want commit %d's configuration, settled", got.rev(t), r.Unsettled, gina.ID)
		}
		// No event named gina's commit yet: its end stands for its last-change.
		if !r.LastChange.Equal(gina.Ended) {
			t.Errorf("last-change %v, want gina's commit's end %v", r.LastChange, gina.Ended)
		}
		if n := sw.readCount(); n != 2 {
			t.Errorf("read the configuration %d times, want twice", n)
		}
	})
}

// A switch that keeps committing for the whole budget: no guess. The reading
// names what completed before the last read began, and says what else it may hold.
func TestReadThatNeverSettles(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		first, _ := sw.commit("hugo", "complete")
		sw.duringRead = func(int) { sw.commit("bot", "complete") }
		var got buffer
		start := time.Now()
		r, err := Read(t.Context(), src, Request{Since: mark(sw.commits[0], sw.t0), Budget: 300 * time.Millisecond}, &got)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
			t.Errorf("Read returned after %v, want soon after its 300ms budget", d)
		}
		if !r.Unsettled || len(r.Commits) == 0 || len(r.Possibly) == 0 {
			t.Fatalf("unsettled %v, commits %v, possibly %v; want an unsettled reading naming some and listing others", r.Unsettled, ids(r.Commits), ids(r.Possibly))
		}
		if r.Commits[0].ID != first.ID {
			t.Errorf("commits %v, want them to start at %d, the first after the mark", ids(r.Commits), first.ID)
		}
		newest, rev := r.Commits[len(r.Commits)-1].ID, got.rev(t)
		if rev < newest || rev > r.Possibly[len(r.Possibly)-1].ID || r.Possibly[0].ID != newest+1 {
			t.Errorf("content of commit %d, named %v, possibly %v: the content must lie between them", rev, ids(r.Commits), ids(r.Possibly))
		}
		if r.Mark.Commit != newest {
			t.Errorf("mark at %d, want %d: the possibly included commits belong to the next snapshot", r.Mark.Commit, newest)
		}
	})
}

func TestReadWaitsForARunningCommit(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		frank, lc := sw.commit("frank", "validating")
		go func() {
			time.Sleep(150 * time.Millisecond)
			sw.setStatus(frank.ID, "save")
			time.Sleep(150 * time.Millisecond)
			sw.setStatus(frank.ID, "complete")
		}()
		var got buffer
		r, err := Read(t.Context(), src, Request{Since: mark(sw.commits[0], sw.t0), LastChanges: lastChanges(lc), Budget: 5 * time.Second}, &got)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Commits) != 1 || r.Commits[0].ID != frank.ID || r.Commits[0].Status != "complete" || got.rev(t) != frank.ID || r.Unsettled {
			t.Errorf("commits %+v, rev %d, unsettled %v; want frank's commit, complete, and its configuration", r.Commits, got.rev(t), r.Unsettled)
		}
		if n := sw.readCount(); n != 1 {
			t.Errorf("read the configuration %d times; waiting for the commit first needs one read", n)
		}
	})
}

// A commit that stays unconfirmed (commit confirmed, not yet accepted) past the
// budget: an event's read is postponed when nothing else completed, and an
// unsettled reading lists it otherwise.
func TestReadUnconfirmedCommit(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		since := mark(sw.commits[0], sw.t0)
		gina, _ := sw.commit("gina", "unconfirmed")
		var got buffer
		_, err := Read(t.Context(), src, Request{Since: since, Budget: 300 * time.Millisecond}, &got)
		if fail.KindOf(err) != fail.Source || !strings.Contains(fmt.Sprint(err), "stay queued") {
			t.Errorf("nothing complete but an unconfirmed commit: %v; want the events kept for the next run", err)
		}
		// By hand, a snapshot is taken all the same, and says so.
		got.Reset()
		r, err := Read(t.Context(), src, Request{Since: since, Manual: true, Budget: 300 * time.Millisecond}, &got)
		if err != nil || !r.Unsettled || len(r.Commits) != 0 || len(r.Possibly) != 1 || r.Possibly[0].ID != gina.ID {
			t.Errorf("manual read: %+v, %v; want unsettled, no commit named, gina's possibly included", r, err)
		}
	})
}

func TestReadUnchanged(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		alice, lc := sw.commit("alice", "complete")
		sw.commit("bob", "failed")
		var got buffer
		// A reload, a retry, or an event whose commit a snapshot holds already.
		r, err := Read(t.Context(), src, Request{Since: mark(alice, lc), LastChanges: lastChanges(lc.Add(time.Hour)), Budget: time.Second}, &got)
		if err != nil || !r.Unchanged || got.Len() != 0 || sw.readCount() != 0 {
			t.Errorf("nothing new: %+v, %v, %d bytes, %d reads; want unchanged without reading", r, err, got.Len(), sw.readCount())
		}
		// By hand it is read all the same, and names no commit.
		r, err = Read(t.Context(), src, Request{Since: mark(alice, lc), Manual: true, Budget: time.Second}, &got)
		if err != nil || r.Unchanged || r.Commits != nil || got.rev(t) != alice.ID || r.Mark != mark(alice, lc) {
			t.Errorf("manual read: %+v, %v; want alice's configuration, no commit, the mark unchanged", r, err)
		}
	})
}

func TestReadSinceWhat(t *testing.T) {
	bothWays(t, func(t *testing.T, sw *simSwitch, src Source) {
		alice, aliceLC := sw.commit("alice", "complete")
		bob, _ := sw.commit("bob", "complete")
		read := func(since snapshot.Mark) []int64 {
			var got buffer
			r, err := Read(t.Context(), src, Request{Since: since, Manual: true, Budget: time.Second}, &got)
			if err != nil {
				t.Fatal(err)
			}
			return ids(r.Commits)
		}
		for _, c := range []struct {
			what  string
			since snapshot.Mark
			want  []int64
		}{
			{"no snapshot yet: everything the switch lists", snapshot.Mark{}, []int64{1, alice.ID, bob.ID}},
			{"the mark's commit", mark(alice, aliceLC), []int64{bob.ID}},
			{"a spool from before commits were tracked: its last-change", snapshot.Mark{LastChange: aliceLC}, []int64{bob.ID}},
			{"the same id before a reboot", snapshot.Mark{Commit: alice.ID, Started: alice.Started.Add(-24 * time.Hour)}, []int64{1, alice.ID, bob.ID}},
			{"a higher id before a reboot", snapshot.Mark{Commit: 40, Started: alice.Started}, []int64{1, alice.ID, bob.ID}},
		} {
			if got := read(c.since); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: named %v, want %v", c.what, got, c.want)
			}
		}
	})
}

// The newest commit's last-change comes from the newest event that it set,
// including events queued while the configuration was read.
func TestReadLastChangeFromEvents(t *testing.T) {
	sw, src := newSimSwitch(t)
	alice, aliceLC := sw.commit("alice", "complete")
	bob, bobLC := sw.commit("bob", "complete")
	queued := []time.Time{aliceLC}
	// bob's event arrives during the read, and so does one of a commit that
	// the switch lists only after it: that one is not bob's.
	sw.duringRead = func(int) { queued = append(queued, bobLC, bob.Ended.Add(time.Second)) }
	var got buffer
	r, err := Read(t.Context(), src, Request{Since: mark(sw.commits[0], sw.t0), LastChanges: func() []time.Time { return queued }, Budget: time.Second}, &got)
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, r.Commits, []snapshot.Commit{alice, bob})
	if !r.LastChange.Equal(bobLC) {
		t.Errorf("last-change %v, want bob's event's %v", r.LastChange, bobLC)
	}
}

// Without a commit list the events' last-change is all there is.
func TestReadWithoutCommitList(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "checkpoint-0.json", []byte(`{"system": {}}`+"\n"))
	src := openFile(t, "file:"+cfg, t.TempDir()+"/no-sr_cli")
	lc := time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC)
	var got buffer
	r, err := Read(context.Background(), src, Request{Since: snapshot.Mark{LastChange: lc}, LastChanges: lastChanges(lc), Budget: time.Second}, &got)
	if err != nil || !r.Unchanged || got.Len() != 0 {
		t.Errorf("the same last-change again: %+v, %v; want unchanged", r, err)
	}
	r, err = Read(context.Background(), src, Request{Since: snapshot.Mark{LastChange: lc}, LastChanges: lastChanges(lc.Add(time.Second)), Budget: time.Second}, &got)
	if err != nil || r.Unchanged || r.NoList == nil || r.Commits != nil || !r.LastChange.Equal(lc.Add(time.Second)) || got.String() != `{"system": {}}`+"\n" {
		t.Errorf("a new last-change: %+v, %v, %q; want the file read, no commits, the event's last-change", r, err, got.String())
	}
	if r.Mark.LastChange != lc.Add(time.Second) {
		t.Errorf("mark %+v, want the new last-change", r.Mark)
	}
}
