package handler

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
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
	now := env.now()
	e, err := capture(ctx, s, c, nw, env, []time.Time{now}, &snapshot.Record{
		Manual: true, User: invokingUser(), Comment: c.Comment,
	})
	if err != nil {
		return "", err
	}
	r := deliver(ctx, s, c, nw, env)
	r.captured = &e
	line := r.line()
	s.SetStatus(line)
	return line, r.errFor(e)
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

// drain turns the queued events into one snapshot and delivers all that is
// pending. It runs under the spool's lock.
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
			newest := latest(lastChanges)
			seen, _ := s.Captured()
			if newest.Equal(seen) {
				// A reinvocation (retry) or reload: same configuration, nothing new to capture.
				r.skipped = true
			} else {
				e, err := capture(ctx, s, c, nw, env, lastChanges, nil)
				if err != nil {
					// Keep the events: the next run tries the capture again.
					r.captureErr = err
					break
				}
				r.captured = &e
				if err := s.SetCaptured(newest); err != nil {
					env.logf("recording the captured last-change: %v", err)
				}
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
	d.captured, d.skipped, d.captureErr = r.captured, r.skipped, r.captureErr
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
		if err := c.SetJSON(ev.Options); err != nil {
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

func latest(ts []time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
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

// capture reads the configuration and the commits behind lastChanges into a new
// spool entry. For a manual snapshot, manual carries the user and comment.
func capture(ctx context.Context, s *spool.Spool, c *option.Config, nw *network, env Env,
	lastChanges []time.Time, manual *snapshot.Record) (spool.Entry, error) {
	src, err := source.Open(c, nw.dial)
	if err != nil {
		return spool.Entry{}, err
	}
	rec := snapshot.Record{LastChange: latest(lastChanges), Taken: env.now()}
	if manual != nil {
		rec.Manual, rec.User, rec.Comment = true, manual.User, manual.Comment
	} else {
		// Attribute waits for the commit to complete, so it comes before the read.
		commits, err := source.Attribute(ctx, src, lastChanges, c.CommitWait)
		if err != nil {
			// Who committed is worth less than the configuration itself.
			env.logf("commit list unavailable, user unknown: %v", err)
		}
		rec.Commits = commits
		if n := len(commits); n > 0 {
			rec.User, rec.Comment = commits[n-1].Username, commits[n-1].Comment
		}
	}
	w, err := s.Create()
	if err != nil {
		return spool.Entry{}, fail.As(fail.Internal, fmt.Errorf("spool: %w", err))
	}
	host := snapshot.NewHostFinder()
	if err := src.WriteConfig(ctx, io.MultiWriter(w, host)); err != nil {
		w.Abort()
		return spool.Entry{}, fail.As(fail.Source, err)
	}
	rec.Host = hostName(host, env)
	if rec.Name, err = snapshot.Name(c.Name, rec); err != nil {
		w.Abort()
		return spool.Entry{}, err
	}
	rec.Changes = changes(s, w, env)
	e, err := w.Commit(rec, c.Targets)
	if err != nil {
		return e, err
	}
	if err := s.KeepAsPrevious(e); err != nil {
		env.logf("the next snapshot's change summary will be unknown: %v", err)
	}
	return e, nil
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
