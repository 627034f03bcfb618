package destination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Logf is how wrappers report; the worker sends it to its log.
type Logf func(format string, args ...any)

// WithRetry retries a Save that failed for a passing reason (fail.Deliver: a
// refused connection, a reset, a full disk that may free up) up to tries times
// with doubling pauses from first. Refused keys and bad options (fail.Auth,
// fail.Usage) are not retried: a second try cannot fix them. A reader that cannot
// seek back to the start cannot be sent twice, so it gets one try.
func WithRetry(d Destination, tries int, first time.Duration, logf Logf) Destination {
	return &retrying{Destination: d, tries: tries, first: first, logf: logf}
}

type retrying struct {
	Destination
	tries int
	first time.Duration
	logf  Logf
}

func (r *retrying) Save(ctx context.Context, rec snapshot.Record, data io.Reader) error {
	seeker, canRewind := data.(io.Seeker)
	pause := r.first
	for try := 1; ; try++ {
		err := r.Destination.Save(ctx, rec, data)
		if err == nil || try >= r.tries || !canRewind || fail.KindOf(err) != fail.Deliver || ctx.Err() != nil {
			return err
		}
		r.logf("%s: try %d of %d failed, again in %v: %v", StoredName(r, rec.Name), try, r.tries, pause, err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		if _, serr := seeker.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("%w (and rewinding for a retry failed: %v)", err, serr)
		}
		pause *= 2
	}
}

// WithLog logs every Save with its outcome, size and duration, under the
// name the snapshot is stored as (StoredName).
func WithLog(d Destination, logf Logf) Destination {
	return &logged{Destination: d, logf: logf}
}

type logged struct {
	Destination
	logf Logf
}

func (l *logged) Save(ctx context.Context, rec snapshot.Record, data io.Reader) error {
	start := time.Now()
	err := l.Destination.Save(ctx, rec, data)
	took := time.Since(start).Round(time.Millisecond)
	name := StoredName(l, rec.Name)
	if err != nil {
		l.logf("%s: %s not saved after %v: %v", l.Destination, name, took, err)
	} else {
		l.logf("%s: saved %s (%d bytes) in %v", l.Destination, name, rec.Size, took)
	}
	return err
}

// Unwrap returns the destination inside, for its optional interfaces.
func (r *retrying) Unwrap() Destination { return r.Destination }

// Unwrap returns the destination inside, for its optional interfaces.
func (l *logged) Unwrap() Destination { return l.Destination }
