package destination_test

import (
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// located is a wrapper that is a Locator itself.
type located struct{ destination.Destination }

func (l located) Unwrap() destination.Destination     { return l.Destination }
func (l located) Location(rec snapshot.Record) string { return "outer:" + rec.Name }

// TestAs: As finds an optional interface through every wrapper, the
// outermost match first, and says so when there is none.
func TestAs(t *testing.T) {
	var l logs
	m := newMemory()
	wrapped := destination.WithLog(destination.WithRetry(m, 3, time.Millisecond, l.logf), l.logf)
	if p, ok := destination.As[destination.Pruner](wrapped); !ok || p != destination.Pruner(m) {
		t.Errorf("As[Pruner] = %v, %v; want the memory inside both wrappers", p, ok)
	}
	if got, ok := destination.As[destination.Locator](wrapped); ok {
		t.Errorf("As[Locator] = %v; want none", got)
	}
	outer := destination.WithLog(located{wrapped}, l.logf)
	if loc, ok := destination.As[destination.Locator](outer); !ok || loc.Location(snapshot.Record{Name: "x"}) != "outer:x" {
		t.Errorf("As[Locator] = %v, %v; want the wrapper that locates", loc, ok)
	}
	if p, ok := destination.As[destination.Pruner](outer); !ok || p != destination.Pruner(m) {
		t.Errorf("As[Pruner] through a wrapper of another kind = %v, %v", p, ok)
	}
	if p, ok := destination.As[destination.Pruner](&plain{}); ok {
		t.Errorf("As[Pruner] of a plain destination = %v", p)
	}
	if _, ok := destination.As[destination.Pruner](nil); ok {
		t.Error("As[Pruner](nil) found one")
	}
}
