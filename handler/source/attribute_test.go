package source

import (
	"context"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// commitsPeer is a JSON-RPC server whose commit list is whatever list returns when
// a request arrives, so that commits can finish while Attribute waits.
func commitsPeer(t *testing.T, list func() []snapshot.Commit) (Source, *rpcPeer) {
	t.Helper()
	p := &rpcPeer{user: "admin", password: testPassword, answer: func(c rpcCommand) (any, []byte) {
		if c.Path != "/system/configuration/commit" {
			t.Errorf("unexpected get %s", c.Path)
		}
		return map[string]any{"commit": commitList(list(), false, false, "")}, nil
	}}
	return openRPC(t, startRPC(t, p), nil), p
}

func byID(cs []snapshot.Commit, id int64) snapshot.Commit {
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	panic("no commit with that id")
}

func TestAttributeCoalescedLastChanges(t *testing.T) {
	t.Parallel()
	all := testCommits()
	src, p := commitsPeer(t, func() []snapshot.Commit { return all })
	lastChanges := []time.Time{
		byID(all, 5).Ended,                       // newest first: the event order is not trusted
		byID(all, 2).Ended,                       // alice's commit
		byID(all, 2).Ended.Add(time.Millisecond), // the same commit seen twice
		byID(all, 4).Started,                     // a commit that started exactly then counts
	}
	got, err := Attribute(context.Background(), src, lastChanges, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, got, []snapshot.Commit{byID(all, 2), byID(all, 4), byID(all, 5)})
	if n := p.requests.Load(); n != 1 {
		t.Errorf("read the commit list %d times; nothing was running, once is enough", n)
	}
}

// Failed and reverting commits changed nothing: the change belongs to the newest
// complete commit before them, and there is nothing to wait for.
func TestAttributeSkipsFailedAndReverting(t *testing.T) {
	t.Parallel()
	all := testCommits()
	bob := byID(all, 3) // failed
	reverting := snapshot.Commit{ID: 6, Type: "shared", Status: "reverting", Username: "erin",
		Started: byID(all, 5).Ended.Add(time.Minute)}
	all = append(all, reverting)
	src, p := commitsPeer(t, func() []snapshot.Commit { return all })
	got, err := Attribute(context.Background(), src,
		[]time.Time{bob.Ended, reverting.Started.Add(time.Second)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, got, []snapshot.Commit{byID(all, 2), byID(all, 5)})
	if n := p.requests.Load(); n != 1 {
		t.Errorf("read the commit list %d times; failed and reverting commits are not waited for", n)
	}
}

func TestAttributeWaitsForARunningCommit(t *testing.T) {
	t.Parallel()
	base := testCommits()
	frank := snapshot.Commit{ID: 6, Type: "shared", Username: "frank", Comment: "mtu 9000",
		Started: byID(base, 5).Ended.Add(time.Hour)}
	start := time.Now()
	src, p := commitsPeer(t, func() []snapshot.Commit {
		c := frank
		switch since := time.Since(start); {
		case since < 150*time.Millisecond:
			c.Status = "validating"
		case since < 300*time.Millisecond:
			c.Status = "save"
		default:
			c.Status, c.Ended = "complete", c.Started.Add(300*time.Millisecond)
		}
		return append(append([]snapshot.Commit(nil), base...), c)
	})
	got, err := Attribute(context.Background(), src, []time.Time{frank.Started.Add(100 * time.Millisecond)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := frank
	done.Status, done.Ended = "complete", frank.Started.Add(300*time.Millisecond)
	sameCommits(t, got, []snapshot.Commit{done})
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Attribute returned after %v; the commit completed after 300ms", d)
	}
	if n := p.requests.Load(); n < 2 {
		t.Errorf("read the commit list %d times, want a re-read", n)
	}
}

// A commit that stays unconfirmed (commit confirmed, not yet accepted) past the
// wait: the newest complete commit before it is taken.
func TestAttributeGivesUpAfterWait(t *testing.T) {
	t.Parallel()
	all := testCommits()
	gina := snapshot.Commit{ID: 6, Type: "private", Name: "private-gina", Status: "unconfirmed", Username: "gina",
		Started: byID(all, 5).Ended.Add(time.Hour)}
	all = append(all, gina)
	src, p := commitsPeer(t, func() []snapshot.Commit { return all })
	start := time.Now()
	got, err := Attribute(context.Background(), src, []time.Time{gina.Started.Add(time.Second)}, 400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, got, []snapshot.Commit{byID(all, 5)})
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("Attribute returned after %v, want after the 400ms wait", d)
	}
	if n := p.requests.Load(); n < 2 || n > 5 {
		t.Errorf("read the commit list %d times in 400ms, want about every 200ms", n)
	}
}

// Commits from private candidates carry their candidate's name and their own user,
// even when candidates of several users commit in turn.
func TestAttributePrivateCandidates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 9, 21, 8, 0, 0, 0, time.UTC)
	all := []snapshot.Commit{
		{ID: 1, Type: "shared", Status: "complete", Username: "admin", Started: t0, Ended: t0.Add(time.Second)},
		{ID: 2, Type: "private", Name: "private-alice", Status: "complete", Username: "alice",
			Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour + 400*time.Millisecond)},
		{ID: 3, Type: "private", Name: "private-bob", Status: "complete", Username: "bob",
			Started: t0.Add(time.Hour + 500*time.Millisecond), Ended: t0.Add(time.Hour + 900*time.Millisecond)},
		{ID: 4, Type: "private", Name: "private-alice", Status: "failed", Username: "alice",
			Started: t0.Add(time.Hour + time.Second), Ended: t0.Add(time.Hour + 1100*time.Millisecond)},
	}
	src, _ := commitsPeer(t, func() []snapshot.Commit { return all })
	got, err := Attribute(context.Background(), src,
		[]time.Time{all[1].Ended, all[2].Ended, all[3].Ended}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, got, []snapshot.Commit{all[1], all[2]})
}

func TestAttributeNothingToAttribute(t *testing.T) {
	t.Parallel()
	all := testCommits()
	src, _ := commitsPeer(t, func() []snapshot.Commit { return all })
	got, err := Attribute(context.Background(), src, []time.Time{byID(all, 1).Started.Add(-time.Hour)}, time.Second)
	if err != nil || got != nil {
		t.Errorf("a last-change older than every commit: Attribute = %v, %v; want nil, nil", got, err)
	}
	empty, _ := commitsPeer(t, func() []snapshot.Commit { return nil })
	got, err = Attribute(context.Background(), empty, []time.Time{time.Now()}, time.Second)
	if err != nil || got != nil {
		t.Errorf("an empty commit list: Attribute = %v, %v; want nil, nil", got, err)
	}
	noSRCLI := openFile(t, "file:/etc/opt/srlinux/config.json", t.TempDir()+"/sr_cli")
	got, err = Attribute(context.Background(), noSRCLI, []time.Time{time.Now()}, time.Second)
	if err != nil || got != nil {
		t.Errorf("a file source without sr_cli: Attribute = %v, %v; want nil, nil", got, err)
	}
}
