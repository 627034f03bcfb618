package snapshot

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// lastChange is the example value of system configuration last-change.
func lastChange(t testing.TB) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, "2025-09-20T11:02:08.456Z")
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// checkSafe asserts what a destination relies on: the name stays below the
// target, uses only the safe alphabet and '/', and has no hidden, dot or
// over-long elements.
func checkSafe(t testing.TB, name string) {
	t.Helper()
	if !filepath.IsLocal(name) {
		t.Fatalf("name %q is not local", name)
	}
	for _, r := range name {
		if r >= 0x80 || !(safeByte(byte(r)) || r == '/') {
			t.Fatalf("name %q holds %q, outside the safe alphabet", name, r)
		}
	}
	if len(name) > maxNameLen {
		t.Fatalf("name is %d bytes, over %d", len(name), maxNameLen)
	}
	for _, e := range strings.Split(name, "/") {
		if e == "" || e[0] == '.' || e[0] == '-' || len(e) > maxElemLen {
			t.Fatalf("name %q has bad element %q", name, e)
		}
	}
}

func TestTimestamp(t *testing.T) {
	lc := lastChange(t)
	if got := Timestamp(lc); got != "20250920T110208.456Z" {
		t.Errorf("Timestamp(%v) = %q, want 20250920T110208.456Z", lc, got)
	}
	// A local time is shown in UTC; whole seconds keep their milliseconds.
	cest := time.FixedZone("CEST", 2*3600)
	if got := Timestamp(time.Date(2025, 9, 20, 13, 2, 8, 0, cest)); got != "20250920T110208.000Z" {
		t.Errorf("Timestamp of 13:02:08 CEST = %q, want 20250920T110208.000Z", got)
	}
	// Sorting names sorts snapshots by time, milliseconds included.
	times := []time.Time{lc, lc.Add(time.Millisecond), lc.Add(-time.Hour), lc.AddDate(1, 0, 0), lc.Add(999 * time.Millisecond), lc.AddDate(-30, 0, 0)}
	stamps := make([]string, len(times))
	for i, tm := range times {
		stamps[i] = Timestamp(tm)
	}
	sort.Strings(stamps)
	slices.SortFunc(times, time.Time.Compare)
	for i, tm := range times {
		if stamps[i] != Timestamp(tm) {
			t.Fatalf("sorted timestamps %v are not in time order", stamps)
		}
		checkSafe(t, stamps[i])
	}
}

func TestNameDefaultTemplate(t *testing.T) {
	r := Record{Host: "leaf11", LastChange: lastChange(t), User: "admin",
		Commits: []Commit{{ID: 7, Username: "admin"}}, Taken: lastChange(t).Add(3 * time.Second)}
	got, err := Name(option.New().Name, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "leaf11/leaf11_20250920T110208.456Z_admin.json"; got != want {
		t.Errorf("default name = %q, want %q", got, want)
	}
}

func TestNameFields(t *testing.T) {
	lc, taken := lastChange(t), lastChange(t).Add(90*time.Minute)
	for _, c := range []struct {
		name, template string
		r              Record
		want           string
	}{
		{"date", "{date}/{host}.json", Record{Host: "srl1", LastChange: lc}, "2025-09-20/srl1.json"},
		{"date in UTC", "{date}", Record{LastChange: time.Date(2025, 9, 21, 1, 0, 0, 0, time.FixedZone("X", 3*3600))}, "2025-09-20"},
		{"newest commit, not the last listed", "{commit}", Record{Commits: []Commit{{ID: 12}, {ID: 40}, {ID: 9}}}, "40"},
		{"no commits", "c{commit}", Record{}, "cnone"},
		{"manual snapshot uses the capture time", "{time}", Record{Taken: taken, Manual: true}, "20250920T123208.456Z"},
		{"last-change wins over capture time", "{time}", Record{LastChange: lc, Taken: taken}, "20250920T110208.456Z"},
		{"no time at all", "{time}_{date}", Record{}, "unknown_unknown"},
		{"fixed name", "latest.json", Record{Host: "srl1"}, "latest.json"},
		{"fields side by side", "{host}{user}", Record{Host: "a", User: "b"}, "ab"},
		{"user with e-mail", "{user}", Record{User: "jane.doe+ops@example.com"}, "jane.doe+ops@example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Name(c.template, c.r)
			if err != nil || got != c.want {
				t.Fatalf("Name(%q) = %q, %v; want %q", c.template, got, err, c.want)
			}
			checkSafe(t, got)
		})
	}
}

// TestNameEscapes feeds hostile host and user values through the default
// template: none may add a folder, climb out, hide a file or smuggle a byte.
func TestNameEscapes(t *testing.T) {
	tmpl := option.New().Name // {host}/{host}_{time}_{user}.json
	ts := "20250920T110208.456Z"
	long := strings.Repeat("x", 300)
	for _, c := range []struct{ name, value, want string }{
		{"dot dot", "..", "_."},
		{"dot", ".", "_"},
		{"traversal", "../../etc/passwd", "_._.._etc_passwd"},
		{"absolute", "/abs", "_abs"},
		{"slash", "a/b", "a_b"},
		{"backslash", `a\..\b`, "a_.._b"},
		{"NUL", "a\x00b", "a_b"},
		{"newline", "a\nb", "a_b"},
		{"control chars", "\r\t\x1b[31m", "____31m"},
		{"division slash U+2215", "a\u2215..\u2215b", "a_.._b"},
		{"fullwidth dots", "\uff0e\uff0e", "__"},
		{"fullwidth solidus", "\uff0fetc", "_etc"},
		{"RTL override", "evil\u202enosj.exe", "evil_nosj.exe"},
		{"hidden file", ".ssh", "_ssh"},
		{"option-like", "-oProxyCommand=x", "_oProxyCommand_x"},
		{"invalid UTF-8", "a\xff\xfeb", "a__b"},
		{"spaces and shell", "a b;$(rm -rf)`x`", "a_b___rm_-rf__x_"},
		{"empty", "", "unknown"},
		{"very long", long, long[:maxFieldLen]},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Record{Host: c.value, User: c.value, LastChange: lastChange(t)}
			got, err := Name(tmpl, r)
			if err != nil {
				t.Fatal(err)
			}
			checkSafe(t, got)
			if want := c.want + "/" + c.want + "_" + ts + "_" + c.want + ".json"; got != want {
				t.Errorf("host and user %q: name %q, want %q", c.value, got, want)
			}
		})
	}
	t.Run("empty user only", func(t *testing.T) {
		got, err := Name(tmpl, Record{Host: "leaf11", LastChange: lastChange(t)})
		if want := "leaf11/leaf11_" + ts + "_unknown.json"; err != nil || got != want {
			t.Errorf("Name = %q, %v; want %q", got, err, want)
		}
	})
}

func TestNameBadTemplates(t *testing.T) {
	for _, c := range []struct{ template, says string }{
		{"", "empty"},
		{"/abs/{host}.json", "absolute"},
		{"../{host}.json", `".."`},
		{"a/../../etc/{host}", `".."`},
		{"./{host}", `"."`},
		{"..", `".."`},
		{"a//b", "empty folder"},
		{"{host}/", "empty folder"},
		{".{host}", "hidden"},
		{"backups/.git/{host}", "hidden"},
		{"-{host}", "option"},
		{"{hostname}.json", `unknown field "{hostname}"`},
		{"{comment}.json", `unknown field "{comment}"`},
		{"{host", "'{' without '}'"},
		{"host}", "'}' without '{'"},
		{"{}", `unknown field "{}"`},
		{"{host} {time}", `' '`},
		{`a\b`, `'\\'`},
		{"c:{host}", `':'`},
		{"a\x00b", `'\x00'`},
		{"a\nb", `'\n'`},
		{"\u2215{host}", `'∕'`},
		{"\uff0e\uff0e/{host}", `'．'`},
		{"{host}\u202e", `'\u202e'`},
		{strings.Repeat("x", 256), "255-byte"},
		{strings.Repeat("{host}", 4), "255-byte"},
		{strings.Repeat("a/", 600) + "a", "longer than 1024"},
		{strings.Repeat("{host}/", 20) + "x", "1024-byte"},
	} {
		t.Run(c.template, func(t *testing.T) {
			got, err := Name(c.template, Record{Host: "h"})
			if err == nil {
				t.Fatalf("Name(%q) = %q, nil; want a usage error", c.template, got)
			}
			msg := err.Error()
			if fail.KindOf(err) != fail.Usage || strings.Contains(msg, "\n") || !strings.Contains(msg, c.says) || !strings.HasPrefix(msg, "option name: ") {
				t.Errorf("error %q (kind %d): want one usage line about option name that says %s", msg, fail.KindOf(err), c.says)
			}
		})
	}
}

func FuzzName(f *testing.F) {
	f.Add(option.New().Name, "leaf11", "admin", int64(7), int64(1758366128456))
	f.Add("{date}/{commit}/{user}", "../../etc/passwd", "\u2215\uff0e\uff0e", int64(-1), int64(0))
	f.Add("{host}{host}{host}", ".", "\u202e\x00\n", int64(0), int64(-62135596800000))
	f.Add("a/../b", "", "", int64(1), int64(253402300799999))
	f.Fuzz(func(t *testing.T, template, host, user string, commit, ms int64) {
		r := Record{Host: host, User: user, Comment: user, LastChange: time.UnixMilli(ms),
			Commits: []Commit{{ID: commit, Username: user}}}
		got, err := Name(template, r)
		// Whether a template is accepted depends on the template alone.
		_, errEmpty := Name(template, Record{})
		if (err == nil) != (errEmpty == nil) {
			t.Fatalf("template %q: error %v with values, %v without", template, err, errEmpty)
		}
		if err != nil {
			if fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line of kind Usage", err)
			}
			return
		}
		checkSafe(t, got)
	})
}
