package source

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// pollInterval is how often Read reads the commit list again while a commit runs.
const pollInterval = 200 * time.Millisecond

// A Sink receives the configuration. Reset drops what it received, so that the
// configuration can be read again from the start.
type Sink interface {
	io.Writer
	Reset() error
}

// A Request says what Read is to read.
type Request struct {
	// Since is where the previous snapshot of this switch ended.
	Since snapshot.Mark
	// LastChanges returns the last-changes of the events behind this read. It is
	// called once the configuration is read, so that events queued meanwhile
	// count. Nil for a manual snapshot.
	LastChanges func() []time.Time
	// Manual reads even when nothing changed since Since.
	Manual bool
	// Budget bounds the waiting: for a running commit to complete, and for a
	// read that commits overtook to be read again.
	Budget time.Duration
}

// A Reading is what Read found.
type Reading struct {
	// Unchanged: no commit completed since Since, and nothing was read.
	Unchanged bool
	// Commits are the complete commits after Since whose changes the
	// configuration holds, oldest first; their newest names the snapshot.
	Commits []snapshot.Commit
	// Unsettled: the switch kept committing for the whole budget, so the
	// configuration holds Commits and perhaps some of Possibly.
	Unsettled bool
	Possibly  []snapshot.Commit
	// LastChange is when the newest of Commits changed the configuration: the
	// last-change of its event, or its end when no event for it has arrived.
	LastChange time.Time
	// Mark is where the history stands once this reading is a snapshot.
	Mark snapshot.Mark
	// NoList says why there is no commit list; the reading then names no
	// commits, and its LastChange is the newest event's.
	NoList error
}

// Read reads the configuration into sink and says which commits it holds.
//
// Neither sr_cli nor JSON-RPC says which commit a read reflects, so Read reads
// the commit list on both sides of the configuration. The read is settled when
// both lists agree on every commit after Since (a failed commit changed
// nothing and is ignored) and no commit was running: the configuration is then
// exactly as the newest complete commit left it. A running commit (validating,
// publishing, unconfirmed, checkpoint, save) is waited for first, polling
// every 200 ms. A read that commits overtook is read again, within the budget.
//
// When the budget runs out first, Read does not guess: the reading names the
// newest commit that had completed before the last read began, lists the
// commits that ran or completed during it as Possibly, and is Unsettled. The
// next reading holds those. An event-triggered read for which no commit
// completed before the read began returns an error instead, so that its events
// stay queued for the next run; a manual one names no commit.
//
// Failed and reverting commits are never named. A switch that gives no commit
// list (a file source without sr_cli) gets one plain read, and the events'
// last-change decides whether anything is new.
func Read(ctx context.Context, src Source, req Request, sink Sink) (Reading, error) {
	deadline := time.Now().Add(req.Budget)
	list, err := src.Commits(ctx)
	if err != nil || list == nil {
		return readUnlisted(ctx, src, req, sink, err)
	}
	base := after(req.Since, list)
	if !req.Manual && !slices.ContainsFunc(list, func(c snapshot.Commit) bool {
		return c.ID > base && (c.Status == "complete" || inProgress(c.Status))
	}) {
		return Reading{Unchanged: true, Mark: req.Since}, nil
	}
	before := list
	for {
		if before, err = waitRunning(ctx, src, before, base, deadline); err != nil {
			return Reading{}, err
		}
		var later []snapshot.Commit
		if b, ok := src.(bracketer); ok {
			before, later, err = b.bracket(ctx, sink)
		} else if err = src.WriteConfig(ctx, sink); err == nil {
			later, err = src.Commits(ctx)
			if err != nil || later == nil {
				// The configuration is read; what it holds is not certain.
				later, err = nil, nil
			}
		}
		if err != nil {
			return Reading{}, err
		}
		if later != nil && settled(before, later, base) {
			return reading(req, complete(later, base), nil), nil
		}
		if later == nil || !time.Now().Before(deadline) {
			return unsettled(req, before, later, base)
		}
		if err := sink.Reset(); err != nil {
			return Reading{}, err
		}
		before = later
	}
}

// bracketer is a source that reads the commit list on both sides of the
// configuration in one exchange, which narrows the window for commits.
type bracketer interface {
	bracket(ctx context.Context, w io.Writer) (before, after []snapshot.Commit, err error)
}

// after returns the id after which the commits in list are new to the history
// that m ends: 0 when all are.
func after(m snapshot.Mark, list []snapshot.Commit) int64 {
	if m.Commit == 0 {
		if m.LastChange.IsZero() {
			return 0 // no snapshot yet
		}
		// A spool from before commits were tracked knows the last-change only.
		if c := commitAt(list, m.LastChange); c != nil {
			return c.ID
		}
		return 0
	}
	newest := int64(0)
	for _, c := range list {
		if c.ID == m.Commit {
			if m.Started.IsZero() || c.Started.Equal(m.Started) {
				return m.Commit
			}
			return 0 // the same id for another commit: the switch rebooted
		}
		newest = max(newest, c.ID)
	}
	if newest < m.Commit {
		return 0 // numbering started again: the switch rebooted
	}
	return m.Commit // the mark's commit aged out of the list; numbering goes on
}

// commitAt is the commit that set last-change lc: the newest complete commit
// that started at or before it. Start, not end, is compared: SR Linux sets
// last-change when a commit has been applied, before it records "ended" (which
// also covers the checkpoint and save steps).
func commitAt(list []snapshot.Commit, lc time.Time) *snapshot.Commit {
	var found *snapshot.Commit
	for i := range list {
		c := &list[i]
		if c.Status == "complete" && !c.Started.IsZero() && !c.Started.After(lc) && (found == nil || c.ID > found.ID) {
			found = c
		}
	}
	return found
}

// waitRunning reads the list again while a commit after base runs, until
// deadline.
func waitRunning(ctx context.Context, src Source, list []snapshot.Commit, base int64, deadline time.Time) ([]snapshot.Commit, error) {
	for running(list, base) != nil {
		left := time.Until(deadline)
		if left <= 0 {
			return list, nil
		}
		t := time.NewTimer(min(pollInterval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			c := running(list, base)
			return nil, fail.New(fail.Source, "stopped waiting for commit %d (%s) to complete: %v", c.ID, c.Status, context.Cause(ctx))
		case <-t.C:
		}
		next, err := src.Commits(ctx)
		if err != nil {
			return nil, err
		}
		if next != nil {
			list = next
		}
	}
	return list, nil
}

// running returns the newest commit after base that may still change the
// configuration, or nil.
func running(list []snapshot.Commit, base int64) *snapshot.Commit {
	var r *snapshot.Commit
	for i := range list {
		if c := &list[i]; c.ID > base && inProgress(c.Status) && (r == nil || c.ID > r.ID) {
			r = c
		}
	}
	return r
}

// settled reports whether a configuration read between the lists before and
// later is exactly as the newest complete commit after base left it.
func settled(before, later []snapshot.Commit, base int64) bool {
	return running(before, base) == nil && maps.Equal(statuses(before, base), statuses(later, base))
}

// statuses maps the commits after base to their status, leaving out failed
// ones, which changed nothing.
func statuses(list []snapshot.Commit, base int64) map[int64]string {
	m := map[int64]string{}
	for _, c := range list {
		if c.ID > base && c.Status != "failed" {
			m[c.ID] = c.Status
		}
	}
	return m
}

// complete returns the complete commits after base, oldest first.
func complete(list []snapshot.Commit, base int64) []snapshot.Commit {
	var out []snapshot.Commit
	for _, c := range list {
		if c.ID > base && c.Status == "complete" {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b snapshot.Commit) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// unsettled is the reading of a read that commits kept overtaking: it names
// what had completed before the read began. later is nil when the list could
// not be read after the configuration.
func unsettled(req Request, before, later []snapshot.Commit, base int64) (Reading, error) {
	named := complete(before, base)
	done := map[int64]bool{}
	for _, c := range named {
		done[c.ID] = true
	}
	var possibly []snapshot.Commit
	for _, list := range [][]snapshot.Commit{before, later} {
		for _, c := range list {
			if c.ID > base && !done[c.ID] && (c.Status == "complete" || inProgress(c.Status)) {
				done[c.ID] = true
				possibly = append(possibly, c)
			}
		}
	}
	slices.SortFunc(possibly, func(a, b snapshot.Commit) int { return cmp.Compare(a.ID, b.ID) })
	if len(named) == 0 && !req.Manual {
		return Reading{}, fail.New(fail.Source, "the configuration did not settle within commit-wait (%v): %s still changing it; the events stay queued for the next run", req.Budget, describe(possibly))
	}
	r := reading(req, named, possibly)
	r.Unsettled = true
	return r, nil
}

// reading is the Reading whose configuration holds named (and perhaps
// possibly).
func reading(req Request, named, possibly []snapshot.Commit) Reading {
	r := Reading{Commits: named, Possibly: possibly, Mark: req.Since}
	if len(named) == 0 {
		return r
	}
	newest := named[len(named)-1]
	var lcs []time.Time
	if req.LastChanges != nil {
		lcs = req.LastChanges()
	}
	for _, lc := range lcs {
		if setBy(newest, lc) && lc.After(r.LastChange) {
			r.LastChange = lc
		}
	}
	if r.LastChange.IsZero() {
		r.LastChange = newest.Ended
		if r.LastChange.IsZero() {
			r.LastChange = newest.Started
		}
	}
	r.Mark = snapshot.Mark{Commit: newest.ID, Started: newest.Started, LastChange: r.LastChange}
	return r
}

// setBy reports whether last-change lc is c's: SR Linux sets last-change when
// a commit has been applied, after it started and before it records its end
// (which also covers the checkpoint and save steps). A later commit's
// last-change, which an event may bring before that commit is even listed,
// is after c's end.
func setBy(c snapshot.Commit, lc time.Time) bool {
	return !lc.Before(c.Started) && (c.Ended.IsZero() || !lc.After(c.Ended))
}

// readUnlisted reads a switch that gives no commit list: once, unless the
// events' last-change was captured already.
func readUnlisted(ctx context.Context, src Source, req Request, sink Sink, listErr error) (Reading, error) {
	var newest time.Time
	if req.LastChanges != nil {
		for _, lc := range req.LastChanges() {
			if lc.After(newest) {
				newest = lc
			}
		}
	}
	if !req.Manual && !newest.IsZero() && !newest.After(req.Since.LastChange) {
		return Reading{Unchanged: true, Mark: req.Since, NoList: listErr}, nil
	}
	if err := src.WriteConfig(ctx, sink); err != nil {
		return Reading{}, err
	}
	if listErr == nil {
		listErr = fmt.Errorf("the source has no commit list")
	}
	m := req.Since
	if !newest.IsZero() {
		m.LastChange = newest
	}
	return Reading{LastChange: newest, Mark: m, NoList: listErr}, nil
}

// inProgress reports whether status (srl_nokia-configuration commit-status) belongs
// to a commit that may still change the configuration and become complete.
func inProgress(status string) bool {
	switch status {
	case "validating", "publishing", "unconfirmed", "checkpoint", "save":
		return true
	}
	return false
}

// describe names commits for a message: "commit 43 by bob (validating)".
func describe(cs []snapshot.Commit) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("commit %d by %q (%s)", c.ID, c.Username, c.Status))
	}
	if len(parts) == 0 {
		return "no commit"
	}
	return strings.Join(parts, ", ")
}
