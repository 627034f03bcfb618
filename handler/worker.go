package handler

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/event"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/netns"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/source"
	"github.com/cfgsnap/cfgsnap/handler/spool"
)

// Work is the detached worker that Handle starts. If another worker holds the
// spool's lock it returns at once: that worker picks up the queued event. After
// releasing the lock it looks once more, so an event queued in that instant is
// not left waiting for the next commit. A holder that was killed cannot look
// again: Work waits for its lock instead (spool.TakeOver).
//
// base holds the options given on the command line; each queued event's options
// are applied over a copy of it.
func Work(ctx context.Context, base *option.Config, env Env) error {
	env.isWorker = true // its log is worker.log
	s, err := openSpool(base, env)
	if err != nil {
		return err
	}
	for {
		unlock, ok, err := s.TakeOver(ctx)
		if err != nil {
			return fail.As(fail.Internal, fmt.Errorf("locking the spool: %w", err))
		}
		if !ok {
			return nil
		}
		r, err := drain(ctx, s, base, env)
		line := ""
		if err == nil {
			line, err = r.line(), r.captureErr
		}
		if line != "" {
			if serr := s.SetStatus(line); serr != nil {
				env.logf("saving the report: %v", serr)
			}
			env.logf("%s", line)
		}
		unlock()
		if err != nil {
			return err
		}
		if jobs, err := s.Jobs(); err != nil || len(jobs) == 0 {
			return err
		}
	}
}

// Flush captures any queued events and delivers everything pending, waiting for
// a running worker to finish first. It returns the report line.
func Flush(ctx context.Context, c *option.Config, env Env) (string, error) {
	s, unlock, err := lockSpool(ctx, c, env)
	if err != nil {
		return "", err
	}
	defer unlock()
	r, err := drain(ctx, s, c, env)
	if err != nil {
		return "", err
	}
	line := r.line()
	s.SetStatus(line)
	if r.captureErr != nil {
		return line, r.captureErr
	}
	// By hand, a target that still lacks snapshots is a failure to report.
	for _, t := range r.targets {
		if _, failed := r.failed[t]; failed {
			return line, r.failure(t)
		}
	}
	return line, nil
}

// Snapshot takes a snapshot now, by hand: named with the current time and the
// invoking user, spooled, and delivered with everything else pending. The error
// says whether this snapshot reached every target.
func Snapshot(ctx context.Context, c *option.Config, env Env) (string, error) {
	if err := checkTargets(c); err != nil {
		return "", err
	}
	s, unlock, err := lockSpool(ctx, c, env)
	if err != nil {
		return "", err
	}
	defer unlock()
	nw := openNet(c)
	defer nw.close()
	e, err := capture(ctx, s, c, nw, env, nil, &snapshot.Record{
		User: invokingUser(), Comment: c.Comment, LastChange: env.now(),
	})
	if err != nil {
		return "", err
	}
	r := deliver(ctx, s, c, nw, env)
	r.captured, r.captures = e, 1
	line := r.line()
	s.SetStatus(line)
	return line, r.errFor(*e)
}

// lockSpool opens the spool and waits for the running worker, if any: runs by
// hand must not deliver alongside it.
func lockSpool(ctx context.Context, c *option.Config, env Env) (*spool.Spool, func(), error) {
	s, err := openSpool(c, env)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := s.Lock(ctx)
	if err != nil {
		return nil, nil, fail.As(fail.Busy, fmt.Errorf("waiting for the running cfgsnap: %w", err))
	}
	return s, unlock, nil
}

// drain captures what the queued events announce and delivers all that is
// pending. It runs under the spool's lock. The switch's commit list, not the
// events, says what is new: an event whose commit an earlier snapshot holds is
// consumed without a capture.
func drain(ctx context.Context, s *spool.Spool, base *option.Config, env Env) (report, error) {
	c := base
	var r report
	nw := (*network)(nil)
	defer func() { nw.close() }()
	for {
		jobs, err := s.Jobs()
		if err != nil {
			return report{}, fail.As(fail.Internal, fmt.Errorf("reading queued events: %w", err))
		}
		if len(jobs) == 0 {
			break
		}
		var lastChanges []time.Time
		lastChanges, c = readJobs(jobs, base, env)
		if nw == nil {
			nw = openNet(c)
		}
		if len(lastChanges) > 0 {
			// Events queued during the read may name its newest commit's last-change.
			queued := func() []time.Time {
				if jobs, err := s.Jobs(); err == nil {
					lcs, _ := readJobs(jobs, base, Env{})
					return append(lcs, lastChanges...)
				}
				return lastChanges
			}
			e, err := capture(ctx, s, c, nw, env, queued, nil)
			switch {
			case err != nil:
				// Keep the events: the next run tries the capture again.
				r.captureErr = err
			case e == nil:
				r.skipped = true
			default:
				r.captured = e
				r.captures++
			}
			if err != nil {
				break
			}
		}
		if err := s.RemoveJobs(jobs); err != nil {
			return report{}, fail.As(fail.Internal, fmt.Errorf("removing handled events: %w", err))
		}
	}
	if nw == nil {
		nw = openNet(c)
	}
	d := deliver(ctx, s, c, nw, env)
	d.captured, d.captures, d.skipped, d.captureErr = r.captured, r.captures, r.skipped, r.captureErr
	return d, nil
}

// readJobs returns the last-changes of the queued events, and the options of
// the newest one over base: it carries the instance's current configuration.
// An event that no longer parses (handle checked it) is dropped and logged.
func readJobs(jobs []spool.Job, base *option.Config, env Env) ([]time.Time, *option.Config) {
	var lastChanges []time.Time
	c := base
	for _, j := range jobs {
		ev, err := event.Parse(j.Event)
		if err != nil {
			env.logf("dropping queued event %s: %v", j.ID, err)
			continue
		}
		lastChanges = append(lastChanges, ev.LastChange)
		c = cloneConfig(base)
		if err := c.SetEvent(ev.Options); err != nil {
			env.logf("queued event %s: options: %v", j.ID, err)
			c = base
		}
	}
	return lastChanges, c
}

func cloneConfig(c *option.Config) *option.Config {
	cp := *c
	cp.Targets = append([]string(nil), c.Targets...)
	cp.Identities = append([]string(nil), c.Identities...)
	return &cp
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

// network is the management namespace, opened once per run. An error opening it
// is kept and returned by every dial, so the configuration is still captured and
// spooled when only delivery is impossible.
type network struct {
	ns  *netns.Net
	err error
}

func openNet(c *option.Config) *network {
	name, err := netns.Resolve(c.NetNS)
	if err != nil {
		return &network{err: err}
	}
	ns, err := netns.Open(name)
	return &network{ns: ns, err: err}
}

func (n *network) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.err != nil {
		return nil, n.err
	}
	return n.ns.DialContext(ctx, network, addr)
}

func (n *network) close() {
	if n != nil && n.ns != nil {
		n.ns.Close()
	}
}

// capture reads the configuration and the commits it holds into a new spool
// entry, and moves the spool's mark past them. It returns nil when no commit
// completed since the last capture (a reload, a retry, an event whose commit an
// earlier snapshot holds). For a manual snapshot, manual carries the user, the
// comment and the time; lastChanges is then nil.
func capture(ctx context.Context, s *spool.Spool, c *option.Config, nw *network, env Env,
	lastChanges func() []time.Time, manual *snapshot.Record) (*spool.Entry, error) {
	src, err := source.Open(c, nw.dial)
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
	sink := newConfigSink(w)
	rd, err := source.Read(ctx, src, source.Request{
		Since: mark, LastChanges: lastChanges, Manual: manual != nil, Budget: c.CommitWait,
	}, sink)
	switch {
	case err != nil:
		return nil, fail.As(fail.Source, err)
	case rd.Unchanged:
		return nil, nil
	case rd.NoList != nil:
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

// configSink is where a configuration goes as it is read: the spool, and the
// host-name finder beside it. A read that commits overtook starts both again.
type configSink struct {
	io.Writer
	spooled *spool.Writer
	host    *snapshot.HostFinder
}

func newConfigSink(w *spool.Writer) *configSink {
	s := &configSink{spooled: w}
	s.start()
	return s
}

func (s *configSink) start() {
	s.host = snapshot.NewHostFinder()
	s.Writer = io.MultiWriter(s.spooled, s.host)
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
