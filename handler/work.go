package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/event"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
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
		r, err := drain(ctx, &run{spool: s, c: base, env: env})
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
	r, err := drain(ctx, &run{spool: s, c: c, env: env})
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
	r := &run{spool: s, c: c, env: env}
	defer r.close()
	e, err := capture(ctx, r, nil, &snapshot.Record{
		User: invokingUser(), Comment: c.Comment, LastChange: env.now(),
	})
	if err != nil {
		return "", err
	}
	rep := report{captured: e, captures: 1}
	deliver(ctx, r, &rep)
	line := rep.line()
	s.SetStatus(line)
	return line, rep.errFor(*e)
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
// consumed without a capture. r.c holds the flags' options; each batch of
// events brings the newest event's over them.
func drain(ctx context.Context, r *run) (report, error) {
	defer r.close()
	base := r.c
	var rep report
	for {
		jobs, err := r.spool.Jobs()
		if err != nil {
			return report{}, fail.As(fail.Internal, fmt.Errorf("reading queued events: %w", err))
		}
		if len(jobs) == 0 {
			break
		}
		var lastChanges []time.Time
		lastChanges, r.c = readJobs(jobs, base, r.env)
		if len(lastChanges) > 0 {
			// Events queued during the read may name its newest commit's last-change.
			queued := func() []time.Time {
				if jobs, err := r.spool.Jobs(); err == nil {
					lcs, _ := parseJobs(jobs, Env{})
					return append(lcs, lastChanges...)
				}
				return lastChanges
			}
			e, err := capture(ctx, r, queued, nil)
			switch {
			case err != nil:
				// Keep the events: the next run tries the capture again.
				rep.captureErr = err
			case e == nil:
				rep.skipped = true
			default:
				rep.captured = e
				rep.captures++
			}
			if err != nil {
				break
			}
		}
		if err := r.spool.RemoveJobs(jobs); err != nil {
			return report{}, fail.As(fail.Internal, fmt.Errorf("removing handled events: %w", err))
		}
	}
	deliver(ctx, r, &rep)
	return rep, nil
}

// readJobs returns the last-changes of the queued events, and the options of
// the newest one over base: it carries the instance's current configuration.
func readJobs(jobs []spool.Job, base *option.Config, env Env) ([]time.Time, *option.Config) {
	lastChanges, newest := parseJobs(jobs, env)
	if newest == nil {
		return lastChanges, base
	}
	c := base.Clone()
	if err := c.SetEvent(newest.Options); err != nil {
		env.logf("queued event %s: options: %v", newest.id, err)
		return lastChanges, base
	}
	return lastChanges, c
}

// queuedEvent is a job's event and its ID, for messages.
type queuedEvent struct {
	event.Event
	id string
}

// parseJobs returns the last-changes of the queued events and the newest
// event (nil if none parses). An event that no longer parses (handle checked
// it) is dropped and logged.
func parseJobs(jobs []spool.Job, env Env) ([]time.Time, *queuedEvent) {
	var lastChanges []time.Time
	var newest *queuedEvent
	for _, j := range jobs {
		ev, err := event.Parse(j.Event)
		if err != nil {
			env.logf("dropping queued event %s: %v", j.ID, err)
			continue
		}
		lastChanges = append(lastChanges, ev.LastChange)
		newest = &queuedEvent{ev, j.ID}
	}
	return lastChanges, newest
}
