package handler

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/redact"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/source"
	"github.com/cfgsnap/cfgsnap/handler/spool"
)

// capture reads the configuration and the commits it holds into a new spool
// entry, and moves the spool's mark past them. It returns nil when no commit
// completed since the last capture (a reload, a retry, an event whose commit an
// earlier snapshot holds). For a manual snapshot, manual carries the user, the
// comment and the time; lastChanges is then nil.
func capture(ctx context.Context, r *run, lastChanges func() []time.Time, manual *snapshot.Record) (*spool.Entry, error) {
	s, c, env := r.spool, r.c, r.env
	src, err := source.Open(c, r.network().dial)
	if err != nil {
		return nil, err
	}
	rules, err := redact.FromOptions(c)
	if err != nil {
		return nil, err
	}
	mark, err := s.Captured()
	if err != nil {
		env.logf("%v; capturing as if nothing was captured before", err)
	}
	w, err := s.Create()
	if err != nil {
		return nil, fail.As(fail.Internal, fmt.Errorf("spool: %w", err))
	}
	defer w.Abort() // after Commit, it does nothing
	sink := newConfigSink(w, rules)
	rd, err := source.Read(ctx, src, source.Request{
		Since: mark, LastChanges: lastChanges, Manual: manual != nil, Budget: c.CommitWait,
	}, sink)
	switch {
	case err != nil:
		return nil, fail.As(fail.Source, err)
	case rd.Unchanged:
		return nil, nil
	}
	if sink.redactor != nil {
		if err := sink.redactor.End(); err != nil {
			return nil, err
		}
	}
	if rd.NoList != nil {
		// Who committed is worth less than the configuration itself.
		env.logf("commit list unavailable, user unknown: %v", rd.NoList)
	}
	rec := snapshot.Record{LastChange: rd.LastChange, Taken: env.now(),
		Commits: rd.Commits, Unsettled: rd.Unsettled, Possibly: rd.Possibly}
	if manual != nil {
		rec.Manual, rec.User, rec.Comment, rec.LastChange = true, manual.User, manual.Comment, manual.LastChange
	} else if n := len(rd.Commits); n > 0 {
		rec.User, rec.Comment = rd.Commits[n-1].Username, rd.Commits[n-1].Comment
	}
	if sink.redactor != nil {
		rec.Redacted, rec.RedactedValues = true, sink.redactor.Count()
	}
	rec.Host = hostName(sink.host, env)
	if rec.Name, err = snapshot.Name(c.Name, rec); err != nil {
		return nil, err
	}
	rec.Changes = changes(s, w, env)
	e, err := w.Commit(rec, c.Targets)
	if err != nil {
		return nil, err
	}
	env.audit(s.Dir(), "captured "+audit(e.Record))
	if err := s.SetCaptured(rd.Mark); err != nil {
		env.logf("recording what was captured (the next run may capture it again): %v", err)
	}
	if err := s.KeepAsPrevious(e); err != nil {
		env.logf("the next snapshot's change summary will be unknown: %v", err)
	}
	return &e, nil
}

// configSink is where a configuration goes as it is read: the spool, through
// the redactor when option redact is set, and the host-name finder beside it.
// A read that commits overtook starts them all again.
type configSink struct {
	io.Writer
	spooled  *spool.Writer
	rules    *redact.Rules // nil: no redaction
	redactor *redact.Writer
	host     *snapshot.HostFinder
}

func newConfigSink(w *spool.Writer, rules *redact.Rules) *configSink {
	s := &configSink{spooled: w, rules: rules}
	s.start()
	return s
}

func (s *configSink) start() {
	s.host = snapshot.NewHostFinder()
	var spooled io.Writer = s.spooled
	if s.rules != nil {
		s.redactor = s.rules.Writer(s.spooled)
		spooled = s.redactor
	}
	s.Writer = io.MultiWriter(spooled, s.host)
}

func (s *configSink) Reset() error {
	if err := s.spooled.Reset(); err != nil {
		return err
	}
	s.start()
	return nil
}

// audit is a snapshot's line in worker.log: its name, its hash and every
// commit it holds, with user and comment quoted so that the line stays one.
func audit(rec snapshot.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (sha256 %s, %d bytes", rec.Name, rec.SHA256, rec.Size)
	if rec.Manual {
		fmt.Fprintf(&b, ", manual by %q", rec.User)
		if rec.Comment != "" {
			fmt.Fprintf(&b, ": %q", rec.Comment)
		}
	}
	b.WriteString("): ")
	b.WriteString(auditCommits(rec.Commits, "no commit"))
	if rec.Unsettled {
		b.WriteString("; unsettled, possibly also: ")
		b.WriteString(auditCommits(rec.Possibly, "none listed"))
	}
	return b.String()
}

func auditCommits(cs []snapshot.Commit, none string) string {
	if len(cs) == 0 {
		return none
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("commit %d by %q at %s %q", c.ID, c.Username, c.Started.UTC().Format("2006-01-02T15:04:05.000Z"), c.Comment)
	}
	return strings.Join(parts, ", ")
}

// maxCompare bounds the configurations that get a change summary: comparing
// holds both in memory, and a switch's worker must stay small.
const maxCompare = 16 << 20

// changes summarises what changed since the previous capture; nil (unknown) for
// the first one, a very large one, or a configuration that is not JSON.
func changes(s *spool.Spool, w *spool.Writer, env Env) *snapshot.Changes {
	prev, err := s.Previous()
	if err != nil {
		return nil
	}
	defer prev.Close()
	cur, err := os.Open(w.Path())
	if err != nil {
		return nil
	}
	defer cur.Close()
	if a, b := fileSize(prev), fileSize(cur); a > maxCompare || b > maxCompare {
		env.logf("change summary skipped: configurations of %d and %d bytes are over %d", a, b, maxCompare)
		return nil
	}
	c, err := diff.Compare(prev, cur)
	if err != nil {
		env.logf("change summary unavailable: %v", err)
		return nil
	}
	return c
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return -1
	}
	return st.Size()
}

// hostName is system name host-name from the captured configuration, else the
// OS host name: a configuration that is not JSON (a flat file source) is still
// worth keeping.
func hostName(found *snapshot.HostFinder, env Env) string {
	h, err := found.Host()
	if err == nil && h != "" {
		return h
	}
	if err != nil {
		env.logf("no host name in the configuration (%v); using the OS host name", err)
	}
	h, _ = os.Hostname()
	return h
}

// invokingUser names who ran a manual snapshot: the user behind sudo, if any.
func invokingUser() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
