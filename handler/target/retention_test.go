package target_test

import (
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// TestRetentionCheck: what handle checks before queuing. With keep or
// keep-days, a name under which leaf1's retention would take leaf1-b's or
// dc1-leaf1's snapshots for its own is refused in one line that names the
// default template; without them, or with the default, it is accepted.
func TestRetentionCheck(t *testing.T) {
	for _, c := range []struct {
		name, limit string
		refused     bool
	}{
		{"", "keep", false}, // the default
		{"", "keep-days", false},
		{"srl/{host}_{time}.json", "keep", false},
		{"{host}-{user}-{time}.json", "keep", true},
		{"{user}-{host}-{time}.json", "keep-days", true},
		{"{host}-{user}-{time}.json", "", false}, // no retention: any name
	} {
		cfg := option.New()
		set := func(name, value string) {
			if err := cfg.Set(name, []string{value}); err != nil {
				t.Fatal(err)
			}
		}
		if c.name != "" {
			set("name", c.name)
		}
		if c.limit != "" {
			set(c.limit, "1")
		}
		err := target.Retention(cfg).Check()
		switch {
		case !c.refused && err != nil:
			t.Errorf("name %q, %s 1: %v", cfg.Name, c.limit, err)
		case c.refused && (fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "\n") ||
			!strings.Contains(err.Error(), option.New().Name)):
			t.Errorf("name %q, %s 1: %v; want a one-line usage error that names the default template", cfg.Name, c.limit, err)
		}
	}
}
