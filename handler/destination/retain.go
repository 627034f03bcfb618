package destination

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Retention is what options keep and keep-days ask of destinations that keep
// files: how many of a switch's snapshots, and how old, stay after each save.
type Retention struct {
	// Keep is how many of a host's newest snapshots stay; 0 keeps any number.
	Keep int
	// KeepDays deletes a host's snapshots whose time is more than this many
	// days before now; 0 keeps any age.
	KeepDays int
	// Template is the name template (option name). Retention deletes only
	// files whose names it gives the host, and reads their time from them.
	Template string
}

// On reports whether r deletes anything at all.
func (r Retention) On() bool { return r.Keep > 0 || r.KeepDays > 0 }

// Check refuses, with a fail.Usage error, a retention that is on with a
// template from whose names retention cannot tell a host's snapshots or read
// their time (snapshot.CheckPattern says which and why): one without {time} in
// its file name, say, or one that does not show where {host} ends, such as
// {host}-{user}-{time}.json, where leaf1 with user b-admin is named as leaf1-b
// with user admin. A retention that is off accepts any template. WithRetention checks the same; calling Check when
// options are read refuses the combination before a snapshot is queued.
func (r Retention) Check() error {
	if !r.On() {
		return nil
	}
	return snapshot.CheckPattern(r.Template)
}

// WithRetention applies r after each successful Save to d, if d is a Pruner
// or wraps one (Unwrap): it lists the folder of the snapshot just saved and
// removes the snapshots of the same host that are beyond the newest r.Keep or
// older than r.KeepDays days (now tells the time), but
//
//   - only files whose names r.Template gives that host (snapshot.Pattern), so
//     it never removes what cfgsnap did not write: notes, temporaries, files in
//     subfolders, other switches' snapshots, even those of switches whose names
//     extend this one's (leaf1-b, dc1-leaf1 for leaf1), as Check guarantees;
//   - never the snapshot just saved, and never the newest one (by the time its
//     name shows), even when all are older than r.KeepDays;
//   - ages and order come from the {time} in each name, not from modification
//     times, which copies and restores change.
//
// Under a wrapper that stores each snapshot with a suffix added (a Suffixer:
// WithEncryption stores NAME.age), the snapshots are the names the template
// gives with that suffix, and only those: the files stored in the clear before
// encryption was turned on, or encrypted before it was turned off, are not
// what cfgsnap now writes, and are left alone.
//
// A failure to list or remove is logged and does not fail the Save: the
// snapshot is stored, and the next Save tries again. The record given to Save
// must carry the Host its Name was made with; a name that does not follow the
// template for rec.Host (a template changed while the snapshot waited in the
// spool, say) is saved without pruning, and logged.
//
// A retention that is off returns d as it is. One with a template that
// r.Check refuses returns Check's fail.Usage error, whatever d is. A d that
// holds no Pruner (SCP, which has no listing; notifications) is returned as it
// is, and logf says once that keep and keep-days do not apply to it.
//
// Wrap it around WithLog and WithRetry: Save is then logged before what
// retention removes after it, and a retried Save prunes once, after the try
// that succeeded. Inside them it works too.
func WithRetention(d Destination, r Retention, now func() time.Time, logf Logf) (Destination, error) {
	if !r.On() {
		return d, nil
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	p, ok := As[Pruner](d)
	if !ok {
		logf("%s: options keep and keep-days do not apply here (cfgsnap cannot list and remove files there); nothing is removed", d)
		return d, nil
	}
	return &retaining{Destination: d, p: p, r: r, suffix: StoredName(d, ""), now: now, logf: logf}, nil
}

type retaining struct {
	Destination        // saves
	p           Pruner // lists and removes: Destination or one it wraps
	r           Retention
	suffix      string // what a Suffixer among the wrappers adds to each name
	now         func() time.Time
	logf        Logf
}

// Unwrap returns the destination inside, for its optional interfaces.
func (w *retaining) Unwrap() Destination { return w.Destination }

// Save saves, then prunes; pruning cannot fail the Save.
func (w *retaining) Save(ctx context.Context, rec snapshot.Record, data io.Reader) error {
	if err := w.Destination.Save(ctx, rec, data); err != nil {
		return err
	}
	w.prune(ctx, rec)
	return nil
}

// prune applies the retention to the folder of rec.Name, which was just saved.
func (w *retaining) prune(ctx context.Context, rec snapshot.Record) {
	pat, err := snapshot.NewPattern(w.r.Template, rec.Host)
	if err != nil { // WithRetention checked the template: not expected
		w.logf("%s: retention skipped: %v", w, err)
		return
	}
	savedAt, ok := pat.Match(rec.Name)
	if !ok {
		w.logf("%s: retention skipped after saving %s: the name does not follow template %q for host %q (was option name changed since it was captured?); nothing removed",
			w, rec.Name, w.r.Template, rec.Host)
		return
	}
	// Every name the pattern matches lies in this one folder: CheckPattern
	// allows no field but {host} in folders.
	dir := path.Dir(rec.Name)
	if dir == "." {
		dir = ""
	}
	saved := rec.Name + w.suffix
	files, err := w.p.List(ctx, dir)
	if err != nil {
		w.logf("%s: retention: listing the folder of %s failed, nothing removed (the snapshot is saved; the next save tries again): %s", w, saved, w.reason(err))
		return
	}
	snaps := []dated{{name: saved, at: savedAt}}
	for _, f := range files {
		name, ours := strings.CutSuffix(f.Name, w.suffix)
		if f.Name == saved || !ours || IsRecordName(f.Name) {
			continue
		}
		if at, ok := pat.Match(name); ok {
			snaps = append(snaps, dated{name: f.Name, at: at})
		}
	}
	for _, v := range w.r.doomed(snaps, saved, w.now()) {
		if err := ctx.Err(); err != nil {
			w.logf("%s: retention stopped before removing %s: %v", w, v.name, err)
			return
		}
		if err := w.p.Remove(ctx, v.name); err != nil {
			w.logf("%s: retention: removing %s (%s) failed: %s", w, v.name, v.why, w.reason(err))
			continue
		}
		w.logf("%s: retention removed %s (%s)", w, v.name, v.why)
		// Its record and signature (WithRecords) go with it, after it: a
		// record never names a snapshot that is not there.
		base := strings.TrimSuffix(v.name, w.suffix)
		for _, f := range []string{base + RecordSuffix, base + SignatureSuffix} {
			if err := w.p.Remove(ctx, f); err != nil {
				w.logf("%s: retention: removing %s failed: %s", w, f, w.reason(err))
			}
		}
	}
}

// reason is err without the destination it names first, as destination
// errors do, so that a line names the destination once.
func (w *retaining) reason(err error) string {
	return strings.TrimPrefix(err.Error(), w.String()+": ")
}

// dated is a snapshot of the host and the time its name shows.
type dated struct {
	name string
	at   time.Time
	why  string // for doomed's result: the limit it is beyond
}

// doomed returns the snapshots of snaps (one host's, saved among them) that r
// removes at now, newest first, each with the limit it is beyond. It never
// returns saved, nor the newest snapshot.
func (r Retention) doomed(snaps []dated, saved string, now time.Time) []dated {
	// Newest first; equal times (two snapshots in the same millisecond) in
	// reverse name order, so the outcome does not depend on the listing's.
	slices.SortFunc(snaps, func(a, b dated) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return cmp.Compare(b.name, a.name)
	})
	// Days of 24 hours in UTC, where none is longer or shorter; by date,
	// since a Duration of a million days (the option's limit) overflows.
	cutoff := now.UTC().AddDate(0, 0, -r.KeepDays)
	var out []dated
	for i, s := range snaps {
		switch {
		case i == 0 || s.name == saved:
			continue
		case r.Keep > 0 && i >= r.Keep:
			s.why = fmt.Sprintf("keep %d: not among the newest %d", r.Keep, r.Keep)
		case r.KeepDays > 0 && s.at.Before(cutoff):
			s.why = fmt.Sprintf("keep-days %d: older than %d days", r.KeepDays, r.KeepDays)
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}
