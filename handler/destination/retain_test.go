package destination_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

const template = "{host}/{host}_{time}_{user}.json"

func now() time.Time { return time.Date(2025, 9, 20, 12, 0, 0, 0, time.UTC) }

const day = 24 * time.Hour

// memory is a Pruner in memory, whose calls can be made to fail.
type memory struct {
	files     map[string]string
	saveErr   error
	failSaves int // the next failSaves Saves fail with saveErr
	listErr   error
	removeErr map[string]error
	listed    int
}

func newMemory() *memory {
	return &memory{files: map[string]string{}, removeErr: map[string]error{}}
}

func (m *memory) String() string { return "mem:///srl" }
func (m *memory) Close() error   { return nil }

func (m *memory) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	if m.saveErr != nil && m.failSaves != 0 {
		m.failSaves--
		return m.saveErr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.files[rec.Name] = string(b)
	return nil
}

func (m *memory) List(ctx context.Context, dir string) ([]destination.File, error) {
	m.listed++
	if m.listErr != nil {
		return nil, m.listErr
	}
	var out []destination.File
	for name, data := range m.files {
		d := path.Dir(name)
		if d == "." {
			d = ""
		}
		if d == dir {
			out = append(out, destination.File{Name: name, Size: int64(len(data))})
		}
	}
	return out, nil
}

func (m *memory) Remove(ctx context.Context, name string) error {
	if err := m.removeErr[name]; err != nil {
		return err
	}
	delete(m.files, name)
	return nil
}

// plain is a Destination that is no Pruner, as a webhook.
type plain struct{ saved int }

func (p *plain) String() string { return "https://hooks.example/x" }
func (p *plain) Close() error   { return nil }
func (p *plain) Save(context.Context, snapshot.Record, io.Reader) error {
	p.saved++
	return nil
}

type logs []string

func (l *logs) logf(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

// rec is host's snapshot taken ago before now.
func rec(t *testing.T, tmpl, host string, ago time.Duration) snapshot.Record {
	t.Helper()
	r := snapshot.Record{Host: host, User: "admin", LastChange: now().Add(-ago), Size: 2}
	var err error
	if r.Name, err = snapshot.Name(tmpl, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// put stores the snapshots of host at agos in m directly, and returns their names.
func put(t *testing.T, m *memory, tmpl, host string, agos ...time.Duration) []string {
	var names []string
	for _, ago := range agos {
		r := rec(t, tmpl, host, ago)
		m.files[r.Name] = "{}"
		names = append(names, r.Name)
	}
	return names
}

func save(t *testing.T, d destination.Destination, r snapshot.Record) {
	t.Helper()
	if err := d.Save(t.Context(), r, strings.NewReader("{}")); err != nil {
		t.Fatalf("Save(%s): %v", r.Name, err)
	}
}

func wrap(t *testing.T, d destination.Destination, r destination.Retention, l *logs) destination.Destination {
	t.Helper()
	if r.Template == "" {
		r.Template = template
	}
	w, err := destination.WithRetention(d, r, now, l.logf)
	if err != nil {
		t.Fatalf("WithRetention: %v", err)
	}
	return w
}

// TestRetentionChoice checks which snapshots go, by each limit and both, and
// that neither the saved one nor the newest ever does.
func TestRetentionChoice(t *testing.T) {
	for _, c := range []struct {
		name     string
		r        destination.Retention
		existing []time.Duration // ages of leaf1's snapshots already there
		saved    time.Duration   // age of the one saved
		removed  []int           // indexes into existing
	}{
		{"keep", destination.Retention{Keep: 3}, []time.Duration{5 * day, 4 * day, 3 * day, 2 * day, day}, time.Hour, []int{0, 1, 2}},
		{"keep 1", destination.Retention{Keep: 1}, []time.Duration{2 * day, day}, time.Hour, []int{0, 1}},
		{"keep more than there are", destination.Retention{Keep: 10}, []time.Duration{2 * day, day}, time.Hour, nil},
		{"keep-days", destination.Retention{KeepDays: 7}, []time.Duration{365 * day, 8 * day, 7*day + time.Millisecond, 7 * day, 6 * day}, time.Hour, []int{0, 1, 2}},
		{"both, keep limits", destination.Retention{Keep: 2, KeepDays: 7}, []time.Duration{3 * time.Hour, 2 * time.Hour, time.Hour}, time.Minute, []int{0, 1}},
		{"both, keep-days limits", destination.Retention{Keep: 5, KeepDays: 7}, []time.Duration{9 * day, 8 * day, time.Hour}, time.Minute, []int{0, 1}},
		{"saved is the newest and old", destination.Retention{KeepDays: 7}, []time.Duration{30 * day, 20 * day}, 10 * day, []int{0, 1}},
		{"saved is old, the newest stays too", destination.Retention{KeepDays: 7}, []time.Duration{30 * day, 20 * day, 10 * day}, 25 * day, []int{0, 1}},
		{"saved is old, keep 1 keeps two", destination.Retention{Keep: 1}, []time.Duration{30 * day, 20 * day, 10 * day}, 25 * day, []int{0, 1}},
		{"saved again, same name", destination.Retention{Keep: 1}, []time.Duration{3 * day, time.Hour}, time.Hour, []int{0}},
		{"from the future (a clock ahead)", destination.Retention{KeepDays: 1}, []time.Duration{-day, 2 * day}, time.Hour, []int{1}},
		{"keep-days at the option's limit", destination.Retention{KeepDays: 1_000_000}, []time.Duration{3000 * day}, time.Hour, nil},
		{"nothing else", destination.Retention{Keep: 1, KeepDays: 1}, nil, 400 * day, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newMemory()
			existing := put(t, m, template, "leaf1", c.existing...)
			other := put(t, m, template, "leaf2", 900*day, 800*day)
			var l logs
			r := rec(t, template, "leaf1", c.saved)
			save(t, wrap(t, m, c.r, &l), r)
			want := map[string]bool{r.Name: true}
			for _, n := range slices.Concat(existing, other) {
				want[n] = true
			}
			for _, i := range c.removed {
				delete(want, existing[i])
			}
			if got := slices.Sorted(maps.Keys(m.files)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
				t.Errorf("left %v\nwant %v\nlog: %q", got, slices.Sorted(maps.Keys(want)), l)
			}
			if len(l) != len(c.removed) {
				t.Errorf("logged %q, want one line per removal", l)
			}
		})
	}
}

// Each removal is logged with the limit that removed it, one line each.
func TestRetentionLogsWhy(t *testing.T) {
	m := newMemory()
	names := put(t, m, template, "leaf1", 30*day, 2*day, day)
	var l logs
	save(t, wrap(t, m, destination.Retention{Keep: 2, KeepDays: 7}, &l), rec(t, template, "leaf1", 0))
	want := logs{
		"mem:///srl: retention removed " + names[1] + " (keep 2: not among the newest 2)",
		"mem:///srl: retention removed " + names[0] + " (keep 2: not among the newest 2)",
	}
	if !slices.Equal(l, want) {
		t.Errorf("logged\n%q\nwant\n%q", l, want)
	}
	m = newMemory()
	names = put(t, m, template, "leaf1", 30*day)
	l = nil
	save(t, wrap(t, m, destination.Retention{KeepDays: 7}, &l), rec(t, template, "leaf1", 0))
	if want := "mem:///srl: retention removed " + names[0] + " (keep-days 7: older than 7 days)"; len(l) != 1 || l[0] != want {
		t.Errorf("logged %q, want %q", l, want)
	}
}

func TestRetentionOff(t *testing.T) {
	m := newMemory()
	var l logs
	for _, tmpl := range []string{template, "latest.json"} { // off accepts any template
		d, err := destination.WithRetention(m, destination.Retention{Template: tmpl}, now, l.logf)
		if err != nil || d != destination.Destination(m) {
			t.Fatalf("keep 0, keep-days 0: got %v, %v; want the destination itself", d, err)
		}
	}
	if len(l) != 0 {
		t.Errorf("logged %q", l)
	}
}

// A template whose names retention cannot read is refused when the
// destination is opened, for any destination, with what to change.
func TestRetentionRefusesTemplate(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{host}/latest.json":               "no {time}",
		"{host}/{date}/{host}_{time}.json": "{date} in folder",
		"{time}_{user}.json":               "no {host}",
		"../{host}_{time}.json":            "..",
		// leaf1's names would include leaf1-b's, or dc1-leaf1's.
		"{host}-{user}-{time}.json": "{host} beside {user}",
		"{user}-{host}-{time}.json": "{host} beside {user}",
	} {
		for i, d := range []destination.Destination{newMemory(), &plain{}} {
			var l logs
			r := destination.Retention{Keep: 5, Template: tmpl}
			if i == 1 {
				r = destination.Retention{KeepDays: 5, Template: tmpl}
			}
			_, err := destination.WithRetention(d, r, now, l.logf)
			if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), want) {
				t.Errorf("template %q, %s: got %v, want a Usage error saying %q", tmpl, d, err, want)
			}
			if cerr := r.Check(); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("template %q: Check = %v, want WithRetention's %v", tmpl, cerr, err)
			}
		}
	}
}

// A destination that cannot list is used as it is, with one line in the log,
// not one per Save.
func TestRetentionNotAPruner(t *testing.T) {
	p := &plain{}
	var l logs
	d := wrap(t, p, destination.Retention{Keep: 3, KeepDays: 7}, &l)
	if d != destination.Destination(p) {
		t.Fatalf("got %T, want the destination itself", d)
	}
	for range 3 {
		save(t, d, rec(t, template, "leaf1", 0))
	}
	if len(l) != 1 || !strings.Contains(l[0], "https://hooks.example/x") || !strings.Contains(l[0], "keep") {
		t.Errorf("logged %q, want one line naming the destination and the options", l)
	}
}

// Pruning never fails a Save: its failures are logged, the snapshot is saved.
func TestRetentionFailuresAreLogged(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		m := newMemory()
		old := put(t, m, template, "leaf1", 30*day)
		m.listErr = fail.New(fail.Deliver, "mem:///srl: listing leaf1: connection lost")
		var l logs
		r := rec(t, template, "leaf1", 0)
		save(t, wrap(t, m, destination.Retention{Keep: 1}, &l), r)
		if _, ok := m.files[r.Name]; !ok || len(m.files) != 2 {
			t.Errorf("files %v, want the saved one and %s", m.files, old[0])
		}
		if want := "mem:///srl: retention: listing the folder of " + r.Name + " failed, nothing removed (the snapshot is saved; the next save tries again): listing leaf1: connection lost"; len(l) != 1 || l[0] != want {
			t.Errorf("logged %q\nwant %q", l, want)
		}
	})
	t.Run("remove", func(t *testing.T) {
		m := newMemory()
		old := put(t, m, template, "leaf1", 30*day, 20*day, 10*day)
		m.removeErr[old[1]] = errors.New("permission denied")
		var l logs
		save(t, wrap(t, m, destination.Retention{Keep: 1}, &l), rec(t, template, "leaf1", 0))
		// The others are still removed.
		if _, ok := m.files[old[1]]; !ok || len(m.files) != 2 {
			t.Errorf("files %v, want the saved one and %s", slices.Sorted(maps.Keys(m.files)), old[1])
		}
		if len(l) != 3 || !strings.Contains(l[1], "removing "+old[1]+" (keep 1: not among the newest 1) failed: permission denied") {
			t.Errorf("logged %q", l)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		m := newMemory()
		put(t, m, template, "leaf1", 30*day, 20*day)
		var l logs
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := rec(t, template, "leaf1", 0)
		if err := wrap(t, m, destination.Retention{Keep: 1}, &l).Save(ctx, r, strings.NewReader("{}")); err != nil {
			t.Fatal(err) // memory saves whatever ctx says
		}
		if len(m.files) != 3 || len(l) != 1 || !strings.Contains(l[0], "retention stopped") {
			t.Errorf("files %v, logged %q; want nothing removed and one line", m.files, l)
		}
	})
}

// A failed Save is the wrapper's error as it is, and nothing is pruned.
func TestRetentionAfterFailedSave(t *testing.T) {
	m := newMemory()
	put(t, m, template, "leaf1", 30*day, 20*day)
	m.saveErr, m.failSaves = fail.New(fail.Deliver, "mem:///srl: server down"), -1
	var l logs
	err := wrap(t, m, destination.Retention{Keep: 1}, &l).Save(t.Context(), rec(t, template, "leaf1", 0), strings.NewReader("{}"))
	if err != m.saveErr || m.listed != 0 || len(m.files) != 2 || len(l) != 0 {
		t.Errorf("got %v, listed %d times, files %v, logged %q", err, m.listed, m.files, l)
	}
}

// Around the other wrappers, retention finds the Pruner inside, prunes once
// after a retried Save, and logs its removals after the Save's own line.
func TestRetentionAroundWrappers(t *testing.T) {
	m := newMemory()
	old := put(t, m, template, "leaf1", 30*day, 20*day)
	m.saveErr, m.failSaves = fail.New(fail.Deliver, "mem:///srl: connection reset"), 1
	var l logs
	inner := destination.WithLog(destination.WithRetry(m, 3, time.Millisecond, l.logf), l.logf)
	d := wrap(t, inner, destination.Retention{Keep: 2}, &l)
	r := rec(t, template, "leaf1", 0)
	save(t, d, r)
	if m.listed != 1 || len(m.files) != 2 {
		t.Errorf("listed %d times, files %v; want one listing and %s removed", m.listed, slices.Sorted(maps.Keys(m.files)), old[0])
	}
	if len(l) != 3 || !strings.Contains(l[0], "try 1 of 3 failed") || !strings.Contains(l[1], "saved "+r.Name) ||
		!strings.Contains(l[2], "retention removed "+old[0]) {
		t.Errorf("logged %q", l)
	}
	if got := destination.Location(d, r); got != "mem:///srl/"+r.Name {
		t.Errorf("Location = %q", got)
	}
}

// A record whose name the template does not give its host is saved and not
// pruned: a record without its host, or a template changed while the snapshot
// waited in the spool, must not make retention guess.
func TestRetentionNameNotFromTemplate(t *testing.T) {
	for name, r := range map[string]snapshot.Record{
		"no host":        {Name: rec(t, template, "leaf1", 0).Name, Size: 2},
		"other template": rec(t, "{host}/{time}.json", "leaf1", 0),
		"other host":     func() snapshot.Record { r := rec(t, template, "leaf1", 0); r.Host = "leaf2"; return r }(),
	} {
		t.Run(name, func(t *testing.T) {
			m := newMemory()
			put(t, m, template, "leaf1", 30*day, 20*day)
			var l logs
			save(t, wrap(t, m, destination.Retention{Keep: 1}, &l), r)
			if len(m.files) != 3 || m.listed != 0 || len(l) != 1 || !strings.Contains(l[0], "retention skipped") {
				t.Errorf("files %v, listed %d, logged %q; want nothing removed and one line", m.files, m.listed, l)
			}
		})
	}
}

// The wrapper shows what it wraps, so Location and the like look through it.
func TestRetentionUnwraps(t *testing.T) {
	m := newMemory()
	var l logs
	d := wrap(t, m, destination.Retention{Keep: 1}, &l)
	u, ok := d.(interface {
		Unwrap() destination.Destination
	})
	if !ok || u.Unwrap() != destination.Destination(m) {
		t.Fatalf("%T does not unwrap to the destination", d)
	}
	r := rec(t, template, "leaf1", 0)
	if got, want := destination.Location(d, r), "mem:///srl/"+r.Name; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		path.Base(destination.TempName("leaf1/leaf1_20250920T110208.456Z_admin.json")): true,
		".x.part":            true,
		"..part":             false,
		".part":              false,
		"x.json.part":        false,
		".hidden":            false,
		"leaf1_x_admin.json": false,
	} {
		if got := destination.IsTempName(name); got != want {
			t.Errorf("IsTempName(%q) = %v, want %v", name, got, want)
		}
	}
}
