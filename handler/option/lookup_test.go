package option_test

import (
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Lookup runs for every option of every event: it reads a table built once,
// which no caller can change through what All returns.
func TestLookupIsBuiltOnce(t *testing.T) {
	if allocs := testing.AllocsPerRun(100, func() { option.Lookup("target") }); allocs != 0 {
		t.Errorf("Lookup allocates %v times a call; want none: the option table must be built once", allocs)
	}
	all := option.All()
	all[0].Name = "changed"
	if o, ok := option.Lookup(option.All()[0].Name); !ok || o.Name == "changed" {
		t.Errorf("changing what All returned changed the table: %+v, %v", o, ok)
	}
	for _, o := range all[1:] {
		if got, ok := option.Lookup(o.Name); !ok || got.Name != o.Name || got.Help != o.Help {
			t.Errorf("Lookup(%q) = %+v, %v; want the option All lists", o.Name, got, ok)
		}
	}
}
