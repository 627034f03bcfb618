package handler

import (
	"context"
	"fmt"
	"slices"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/spool"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// deliver sends every pending snapshot to the targets it still lacks, oldest
// first. A target that fails is not tried again this run, so snapshots reach each
// destination in order; what is not delivered stays in the spool.
func deliver(ctx context.Context, run *run, r *report) {
	s := run.spool
	r.delivered, r.failed, r.left, r.config = map[string]int{}, map[string]error{}, map[string]string{}, run.c
	entries, err := s.Pending()
	if err != nil {
		if r.captureErr == nil { // a capture's failure says more
			r.captureErr = fail.As(fail.Internal, fmt.Errorf("reading the spool: %w", err))
		}
		return
	}
	for _, e := range entries {
		for _, t := range e.Targets {
			if !slices.Contains(r.targets, t) {
				r.targets = append(r.targets, t)
			}
		}
	}
	// Notifications go last, so they can say where the snapshot is stored.
	slices.SortStableFunc(r.targets, func(a, b string) int {
		return cmpBool(target.Notifies(a), target.Notifies(b))
	})
	for _, t := range r.targets {
		// Read afresh: each delivery adds to the records' Stored.
		if entries, err = s.Pending(); err != nil {
			r.failed[t] = fail.As(fail.Internal, fmt.Errorf("reading the spool: %w", err))
			continue
		}
		r.deliverTo(ctx, run, t, entries)
	}
	if after, err := s.Pending(); err == nil {
		r.pending = len(after)
		for _, e := range after {
			r.left[e.ID] = e.Targets[0]
		}
	}
}

// deliverTo sends entries to target t, in order, until one fails.
func (r *report) deliverTo(ctx context.Context, run *run, t string, entries []spool.Entry) {
	s, c := run.spool, run.c
	d, err := target.Open(t, target.Env{Config: c, Dial: run.network().dial, Logf: run.env.logf})
	if err != nil {
		r.failed[t] = err
		return
	}
	defer d.Close()
	for _, e := range entries {
		if !slices.Contains(e.Targets, t) {
			continue
		}
		err := func() error {
			f, err := s.Open(e)
			if err != nil {
				return fail.As(fail.Internal, err)
			}
			defer f.Close()
			ctx, cancel := context.WithTimeout(ctx, c.DeliverTimeout)
			defer cancel()
			return d.Save(ctx, e.Record, f)
		}()
		if err == nil {
			location := ""
			if !target.Notifies(t) {
				location = destination.Location(d, e.Record)
			}
			err = s.Delivered(e, t, location)
		}
		if err != nil {
			r.failed[t] = err
			return
		}
		r.delivered[t]++
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
