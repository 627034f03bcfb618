package handler

import (
	"fmt"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/spool"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// report is what one run did, for its one line.
type report struct {
	captured   *spool.Entry // the newest snapshot captured
	captures   int          // snapshots captured this run; worker.log has a line for each
	skipped    bool         // the events brought no commit that was not captured already
	captureErr error
	targets    []string          // in the order tried
	delivered  map[string]int    // target -> snapshots delivered this run
	failed     map[string]error  // target -> why it stopped
	left       map[string]string // entry ID -> a target it still lacks, for errFor
	pending    int
	config     *option.Config // for showing targets without their secrets
}

// line is the run's report: one line, shown in the instance state by the next
// handle and printed by manual runs.
func (r report) line() string {
	var parts []string
	switch {
	case r.captureErr != nil:
		parts = append(parts, "capture FAILED: "+r.captureErr.Error())
	case r.captures > 1:
		parts = append(parts, fmt.Sprintf("captured %d snapshots, the newest %s", r.captures, describe(r.captured.Record)))
	case r.captured != nil:
		parts = append(parts, "captured "+describe(r.captured.Record))
	case r.skipped:
		parts = append(parts, "configuration unchanged since the last capture")
	}
	for _, t := range r.targets {
		if err, ok := r.failed[t]; ok {
			parts = append(parts, fmt.Sprintf("%s FAILED after %d delivered: %s", target.Display(t, r.config), r.delivered[t], r.reason(t, err)))
		} else {
			parts = append(parts, fmt.Sprintf("%s ok (%d delivered)", target.Display(t, r.config), r.delivered[t]))
		}
	}
	parts = append(parts, fmt.Sprintf("%d pending", r.pending))
	return strings.ReplaceAll(strings.Join(parts, "; "), "\n", " ")
}

// describe names a snapshot and who made it: every commit it holds, and, for a
// read that never settled, the commits it may also hold.
func describe(rec snapshot.Record) string {
	var says []string
	if rec.Manual {
		says = append(says, "manual, by "+shownUser(rec.User))
	} else if len(rec.Commits) == 0 {
		says = append(says, "by "+shownUser(rec.User))
	}
	if cs := commitList(rec.Commits); cs != "" {
		says = append(says, cs)
	}
	if rec.Unsettled {
		says = append(says, "unsettled, possibly also "+orNone(commitList(rec.Possibly)))
	}
	if rec.Redacted {
		says = append(says, fmt.Sprintf("redacted values: %d", rec.RedactedValues))
	}
	if rec.Changes != nil && len(rec.Commits) > 0 {
		says = append(says, fmt.Sprintf("%d added, %d removed, %d changed", rec.Changes.Added, rec.Changes.Removed, rec.Changes.Changed))
	}
	return fmt.Sprintf("%s (%s)", rec.Name, strings.Join(says, "; "))
}

// commitList is "commit 42 by alice" or "commits 42 by alice, 43 by bob".
func commitList(commits []snapshot.Commit) string {
	var cs []string
	for _, c := range commits {
		cs = append(cs, fmt.Sprintf("%d by %s", c.ID, shownUser(c.Username)))
	}
	switch len(cs) {
	case 0:
		return ""
	case 1:
		return "commit " + cs[0]
	}
	return "commits " + strings.Join(cs, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// maxReportUser bounds a user name in the report, where anyone who can commit
// chooses it: a long one would crowd out the targets' results.
const maxReportUser = 64

func shownUser(user string) string {
	switch {
	case user == "":
		return "unknown"
	case len(user) > maxReportUser:
		return fmt.Sprintf("%s... (%d bytes)", strings.ToValidUTF8(user[:maxReportUser], ""), len(user))
	}
	return user
}

// errFor says whether entry e reached all its targets: nil, or the first
// failure of a target it still lacks, with what happens next.
func (r report) errFor(e spool.Entry) error {
	t, ok := r.left[e.ID]
	if !ok {
		return nil
	}
	return r.failure(t)
}

// failure is why target t failed, with what happens next. The kind, hence the
// exit code, is the failure's own: a refused host key is not an unreachable server.
func (r report) failure(t string) error {
	err := r.failed[t]
	if err == nil {
		err = fail.New(fail.Deliver, "not delivered")
	}
	return fail.New(fail.KindOf(err), "%s: %s; the snapshot stays spooled (%d pending): cfgsnap flush retries", target.Display(t, r.config), r.reason(t, err), r.pending)
}

// reason is err without the target it names first, as destination errors do,
// so that a line names the target once.
func (r report) reason(t string, err error) string {
	return strings.TrimPrefix(err.Error(), target.Display(t, r.config)+": ")
}
