package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Every name Name writes for a host is recognised by that host's Pattern, with
// the time it shows, whatever the other fields hold.
func TestPatternMatchesWhatNameWrites(t *testing.T) {
	lc := lastChange(t)
	for _, template := range []string{
		option.New().Name, // {host}/{host}_{time}_{user}.json
		"{host}_{time}.json",
		"srl/{date}_{host}+{time}.json",
		"backups/{host}/{date}_{time}_{commit}.json",
		"{host}-cfg/{user}+{time}+{host}+{user}.json",
		"{host}/{time}",
		"{time}.{host}",
	} {
		for _, r := range []Record{
			{Host: "leaf1", User: "admin", LastChange: lc, Commits: []Commit{{ID: 42}}},
			{Host: "leaf1", User: "jane.doe+ops@example.com", LastChange: lc.Add(time.Millisecond)},
			{Host: "../../etc", User: "\u2215\uff0e\uff0e/x", LastChange: lc},
			{Host: ".hidden", User: "-rf", Taken: lc, Manual: true},
			{Host: "", User: "", LastChange: lc}, // both "unknown"
			{Host: strings.Repeat("h", 300), User: strings.Repeat("u_", 200), LastChange: lc},
			{Host: "leaf1", User: "a_20250101T000000.000Z", LastChange: lc}, // a user that looks like a time
		} {
			name, err := Name(template, r)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPattern(template, r.Host)
			if err != nil {
				t.Fatalf("NewPattern(%q): %v", template, err)
			}
			got, ok := p.Match(name)
			if want := recordTime(r).UTC(); !ok || !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("template %q, host %q: Match(%q) = %v, %v; want %v, true", template, r.Host, name, got, ok, want)
			}
		}
	}
}

// Nothing else is recognised: files that cfgsnap did not write for this host
// must never look like its snapshots.
func TestPatternRefusesOthers(t *testing.T) {
	for _, c := range []struct{ template, host, name string }{
		// The default template, host leaf1: its snapshots are leaf1/leaf1_<time>_<user>.json.
		{"", "leaf1", "leaf1/notes.txt"},
		{"", "leaf1", "leaf1/leaf2_20250920T110208.456Z_admin.json"},  // another host
		{"", "leaf1", "leaf1/leaf10_20250920T110208.456Z_admin.json"}, // a host that extends this one
		{"", "leaf1", "leaf1/LEAF1_20250920T110208.456Z_admin.json"},  // names are case-sensitive
		{"", "leaf1", "leaf2/leaf1_20250920T110208.456Z_admin.json"},  // another folder
		{"", "leaf1", "leaf1_20250920T110208.456Z_admin.json"},        // not in the host's folder
		{"", "leaf1", "leaf1/old/leaf1_20250920T110208.456Z_admin.json"},
		{"", "leaf1", "leaf1/.leaf1_20250920T110208.456Z_admin.json.part"}, // a temporary
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_admin.json.bak"},
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_admin.json~"},
		{"", "leaf1", "leaf1/leaf1_20251320T110208.456Z_admin.json"}, // month 13
		{"", "leaf1", "leaf1/leaf1_20250931T110208.456Z_admin.json"}, // 31 September
		{"", "leaf1", "leaf1/leaf1_20250920T250208.456Z_admin.json"}, // hour 25
		{"", "leaf1", "leaf1/leaf1_20250920T110208Z_admin.json"},     // no milliseconds
		{"", "leaf1", "leaf1/leaf1_20250920T110208.4567Z_admin.json"},
		{"", "leaf1", "leaf1/leaf1_00010101T000000.000Z_admin.json"}, // the zero time: Name writes unknown
		{"", "leaf1", "leaf1/leaf1_unknown_admin.json"},              // no time to age by
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_.json"},      // an empty user
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_.admin.json"},
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_-admin.json"},
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_a dmin.json"},
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_" + strings.Repeat("u", 65) + ".json"}, // over 64
		{"", "leaf1", "leaf1/leaf1_20250920T110208.456Z_admin.json/"},
		{"", "leaf1", "./leaf1/leaf1_20250920T110208.456Z_admin.json"},
		{"", "le/af1", "le/af1/le/af1_20250920T110208.456Z_admin.json"}, // the host is sanitised
		// A field twice has one value; {date} is the date of {time}.
		{"{host}/{user}_{time}_{user}.json", "leaf1", "leaf1/alice_20250920T110208.456Z_bob.json"},
		{"{host}/{date}_{time}.json", "leaf1", "leaf1/2025-09-21_20250920T110208.456Z.json"},
		{"{host}/{time}_{time}.json", "leaf1", "leaf1/20250920T110208.456Z_20250920T110208.457Z.json"},
		// Literal characters are literal: '.' is not any character.
		{"{host}/{host}.{time}.json", "leaf1", "leaf1/leaf1x20250920T110208.456Zxjson"},
	} {
		template := c.template
		if template == "" {
			template = option.New().Name
		}
		p, err := NewPattern(template, c.host)
		if err != nil {
			t.Fatal(err)
		}
		if tm, ok := p.Match(c.name); ok {
			t.Errorf("template %q, host %q: Match(%q) = %v, true; want no match", template, c.host, c.name, tm)
		}
	}
}

// Hosts that share a folder, some extending others by what values may hold
// ('-', '.', '_'), and users that fill the gap between them (leaf1 with user
// b-admin next to leaf1-b with user admin).
var (
	nearHosts = []string{"leaf1", "leaf1-b", "dc1-leaf1", "leaf1.b", "leaf1_b", "b", "dc1"}
	nearUsers = []string{"admin", "b-admin", "admin-b", "dc1-admin", "admin-dc1", "b.admin", "b_admin", "admin_b"}
)

// Under every template that CheckPattern accepts, no host's Pattern recognises
// another host's names, with a time or without; under the two it refuses for
// hiding where {host} ends, two hosts can even write the same name.
func TestPatternTellsHostsApart(t *testing.T) {
	var records []Record
	for _, host := range nearHosts {
		for _, user := range nearUsers {
			for _, at := range []time.Time{lastChange(t), {}} { // {}: "unknown"
				records = append(records, Record{Host: host, User: user, LastChange: at, Commits: []Commit{{ID: 7}}})
			}
		}
	}
	for _, template := range []string{
		option.New().Name, // {host}/{host}_{time}_{user}.json
		"{host}-cfg/{user}-{time}-{commit}.json",
		"{host}_{time}.json",
		"srl/{time}-{host}.json",
		"{date}.{host}.{time}.json",
		"{host}{time}",
	} {
		for _, host := range nearHosts {
			p, err := NewPattern(template, host)
			if err != nil {
				t.Fatalf("NewPattern(%q): %v", template, err)
			}
			for _, r := range records {
				name, err := Name(template, r)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := p.Match(name); ok && r.Host != host {
					t.Errorf("template %q: host %q's pattern matches %q, host %q's", template, host, name, r.Host)
				}
			}
		}
	}
	for _, template := range []string{"{host}-{user}-{time}.json", "{user}-{host}-{time}.json"} {
		err := CheckPattern(template)
		if err == nil || !strings.Contains(err.Error(), option.New().Name) {
			t.Errorf("CheckPattern(%q) = %v; want an error that names the default template, which works", template, err)
		}
		of := map[string]string{}
		shared := false
		for _, r := range records {
			name, _ := Name(template, r)
			if h, ok := of[name]; ok && h != r.Host {
				shared = true
			}
			of[name] = r.Host
		}
		if !shared {
			t.Errorf("bad test: under %q no two hosts write the same name", template)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	for _, ok := range []string{
		option.New().Name,
		"{host}_{time}.json",
		"backups/{host}/x/{time}_{user}_{commit}_{date}.json",
		"{host}-{host}/{time}",
		"{host}-cfg/{user}-{time}-{commit}.json",
		"{host}{time}",
		"srl/{date}-{host}-{time}.json",
	} {
		if err := CheckPattern(ok); err != nil {
			t.Errorf("CheckPattern(%q): %v", ok, err)
		}
	}
	for template, want := range map[string]string{
		"{host}/latest.json":                 "no {time}",
		"{host}/{date}.json":                 "no {time}",
		"{host}/{time}/config.json":          "{time} in folder",
		"{host}/{date}/{host}_{time}.json":   "{date} in folder",
		"{user}/{host}_{time}.json":          "{user} in folder",
		"x/{commit}-{host}/{host}_{time}.js": "{commit} in folder",
		"{time}_{user}.json":                 "no {host}",
		"snapshots/{time}.json":              "no {host}",
		"/{host}/{time}.json":                "absolute",
		"{host}/{nope}_{time}.json":          "unknown field",
		"":                                   "empty",
		// Where {host} ends must show (see TestPatternTellsHostsApart).
		"{host}-{user}-{time}.json":       "{host} beside {user} in its file name and in no folder",
		"{user}-{host}-{time}.json":       "{host} beside {user}",
		"{host}_{time}_{user}.json":       "{host} beside {user}",
		"srl/{host}_{commit}_{time}.js":   "{host} beside {commit}",
		"{host}_{time}_{host}.json":       "{host} twice in its file name",
		"{host}.{time}.{host}{date}.json": "{host} twice",
	} {
		err := CheckPattern(template)
		if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPattern(%q) = %v; want a Usage error saying %q", template, err, want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("CheckPattern(%q): %q is more than one line", template, err)
		}
		if _, perr := NewPattern(template, "leaf1"); perr == nil || perr.Error() != err.Error() {
			t.Errorf("NewPattern(%q) = %v; want CheckPattern's %v", template, perr, err)
		}
	}
}

// FuzzPattern checks, for any template, host and values, that the Pattern
// recognises what Name writes, with its time, and that no other host's name
// is recognised, whatever its values.
func FuzzPattern(f *testing.F) {
	f.Add(option.New().Name, "leaf1", "leaf10", "admin", "admin", int64(42), int64(1758366128456))
	f.Add("{host}_{time}.json", "leaf1", "leaf1_2", "x_20250920T110208.456Z", "", int64(-1), int64(0))
	f.Add("{host}/{user}{time}{user}", "\u2215", "/", "", "u", int64(0), int64(253402300799999))
	f.Add("{host}/{date}_{time}", "a", "b", "u", "v", int64(1), int64(-62135596800000))
	f.Add("{host}-{user}-{time}.json", "leaf1", "leaf1-b", "b-admin", "admin", int64(1), int64(1758366128456))
	f.Add("{date}{host}{time}", "leaf1", "leaf1unknown", "a", "b", int64(1), int64(1758366128456))
	f.Fuzz(func(t *testing.T, template, host, other, user, otherUser string, commit, ms int64) {
		p, err := NewPattern(template, host)
		if err != nil {
			if cerr := CheckPattern(template); cerr == nil || fail.KindOf(err) != fail.Usage {
				t.Fatalf("NewPattern(%q): %v, but CheckPattern says %v", template, err, cerr)
			}
			return
		}
		r := Record{Host: host, User: user, LastChange: time.UnixMilli(ms), Commits: []Commit{{ID: commit}}}
		name, err := Name(template, r)
		if err != nil {
			t.Fatalf("CheckPattern accepted %q but Name refuses it: %v", template, err)
		}
		// Timestamp writes 4-digit years only from year 0 to 9999; a name
		// outside them is not recognised, and so never deleted.
		want := r.LastChange.UTC()
		got, ok := p.Match(name)
		switch inRange := want.Year() >= 0 && want.Year() <= 9999 && !want.IsZero(); {
		case inRange && (!ok || !got.Equal(want)):
			t.Fatalf("Match(%q) = %v, %v; want %v, true", name, got, ok, want)
		case !inRange && ok:
			t.Fatalf("Match(%q) = %v for a time outside years 0-9999", name, got)
		}
		if sanitize(other, maxFieldLen) == sanitize(host, maxFieldLen) {
			return
		}
		// Another host's names, whatever its user and time, are not this one's.
		for _, o := range []Record{
			{Host: other, User: otherUser, LastChange: r.LastChange, Commits: []Commit{{ID: commit / 7}}},
			{Host: other, User: otherUser}, // no time: {time} and {date} are "unknown"
		} {
			otherName, _ := Name(template, o)
			if _, ok := p.Match(otherName); ok {
				t.Fatalf("host %q's pattern matches host %q's name %q", host, other, otherName)
			}
		}
	})
}
