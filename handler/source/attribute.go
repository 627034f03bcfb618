package source

import (
	"context"
	"sort"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// pollInterval is how often Attribute re-reads the commit list while a commit runs.
const pollInterval = 200 * time.Millisecond

// Attribute returns the commits that produced lastChanges (the values of "system
// configuration last-change" the event carried, several when events were
// coalesced), deduplicated and oldest first; nil when there are none.
//
// The commit of a last-change is the newest commit with status complete that
// started at or before it. Start, not end, is compared: SR Linux sets last-change
// when a commit has been applied, which is before or about when it records
// "ended" (which also covers the checkpoint and save steps), so comparing ends
// could skip the very commit that set the time; and no commit that started after
// a last-change can have caused it.
//
// When the newest commit that started at or before a last-change is still running
// (validating, publishing, unconfirmed, checkpoint, save), Attribute re-reads the
// list every 200 ms until it is complete or wait has passed, and then takes the
// newest complete one. Failed and reverting commits are never attributed: they did
// not change the running configuration.
func Attribute(ctx context.Context, src Source, lastChanges []time.Time, wait time.Duration) ([]snapshot.Commit, error) {
	if len(lastChanges) == 0 {
		return nil, nil
	}
	deadline := time.Now().Add(wait)
	for {
		commits, err := src.Commits(ctx)
		if err != nil {
			return nil, err
		}
		picked, running := attribute(commits, lastChanges)
		left := time.Until(deadline)
		if running == nil || left <= 0 {
			return picked, nil
		}
		t := time.NewTimer(min(pollInterval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail.New(fail.Source, "stopped waiting for commit %d (%s) to complete: %v", running.ID, running.Status, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// attribute picks the commit of each last-change from one reading of the list. running
// is a commit that decides the answer but has not finished, or nil.
func attribute(commits []snapshot.Commit, lastChanges []time.Time) (picked []snapshot.Commit, running *snapshot.Commit) {
	sorted := append([]snapshot.Commit(nil), commits...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	seen := make(map[int64]bool)
	for _, lc := range lastChanges {
		var newest, complete *snapshot.Commit
		for i := range sorted {
			c := &sorted[i]
			if c.Started.IsZero() || c.Started.After(lc) {
				continue
			}
			newest = c
			if c.Status == "complete" {
				complete = c
			}
		}
		if newest != nil && inProgress(newest.Status) {
			running = newest
		}
		if complete != nil && !seen[complete.ID] {
			seen[complete.ID] = true
			picked = append(picked, *complete)
		}
	}
	sort.Slice(picked, func(i, j int) bool { return picked[i].ID < picked[j].ID })
	return picked, running
}

// inProgress reports whether status (srl_nokia-configuration commit-status) belongs
// to a commit that may still become complete.
func inProgress(status string) bool {
	switch status {
	case "validating", "publishing", "unconfirmed", "checkpoint", "save":
		return true
	}
	return false
}
