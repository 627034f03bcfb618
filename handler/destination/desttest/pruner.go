package desttest

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// Store is the server's side of a Pruner's root, reached without the
// destination, so the suite can plant files that cfgsnap did not write and
// see what is left.
type Store struct {
	// Files lists every file under the root as the server sees it, as a
	// NewFunc's stored does: slash-separated relative name -> content,
	// hidden and temporary files included.
	Files func() map[string][]byte
	// Put stores data under name (slash-separated, relative to the root) as
	// another program would: a note written by hand, a temporary file that a
	// killed run left. It creates missing folders and fails the test on error.
	Put func(name string, data []byte)
}

// NewPrunerFunc returns a Pruner whose root is a fresh, empty folder on the
// real server, and the Store of that folder.
type NewPrunerFunc func(t *testing.T) (destination.Pruner, Store)

// LocalStore is the Store of the folder root on this machine: a file://
// target's, or the one the test's own sshd serves.
func LocalStore(t *testing.T, root string) Store {
	return Store{
		Files: func() map[string][]byte { return ReadTree(t, root) },
		Put: func(name string, data []byte) {
			t.Helper()
			p := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// RunPruner runs the suite of a destination.Pruner: List and Remove as their
// doc comments promise, and retention (destination.WithRetention) end to end
// on the real server, where it must remove exactly the snapshots the policy
// names and leave everything else as it was. Each case gets its own
// destination. Retention runs under every template in ownTemplates as each
// of several switches whose names extend one another's (leaf1, leaf1-b,
// dc1-leaf1), sharing the root, and must remove only that switch's own
// snapshots; the templates that cannot tell them apart must be refused.
//
// Beyond the doc comments, List must leave out the temporaries that
// destination.IsTempName recognises (a Save in progress is no file yet), give
// each file's size and a modification time within a minute of when it was
// written, and both must refuse names that climb out of the root.
//
// The retention cases run again under Encrypted, with every snapshot saved
// through destination.WithEncryption as option encrypt-to has it: retention
// must then remove exactly the NAME.age files of the switch, and leave its
// snapshots stored in the clear before encryption was turned on.
func RunPruner(t *testing.T, newDest NewPrunerFunc) {
	type pruneCase struct {
		name string
		fn   func(t *testing.T, p destination.Pruner, st Store)
	}
	cases := []pruneCase{
		{"ListMissingFolder", listMissing},
		{"ListFilesDirectlyInFolder", listDirect},
		{"RemoveFiles", removeFiles},
		{"RefuseNamesOutsideRoot", refuseOutside},
		{"RetentionKeep", retainKeep},
		{"RetentionKeepDays", retainKeepDays},
		{"RetentionKeepAndKeepDays", retainBoth},
		{"RetentionKeepsNewest", retainNewest},
		{"RetentionRefusesLookAlikeNames", retainRefused},
	}
	for _, tmpl := range ownTemplates {
		// A '/' in a test name nests tests: the folder shows as '|'.
		cases = append(cases, pruneCase{"RetentionOwnHostOnly " + strings.ReplaceAll(tmpl, "/", "|"),
			func(t *testing.T, p destination.Pruner, st Store) { retainOwnHost(t, p, st, tmpl) }})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, st := newDest(t)
			t.Cleanup(func() { p.Close() })
			c.fn(t, p, st)
		})
	}
	t.Run("Encrypted", func(t *testing.T) {
		s := newSealer(t)
		for _, c := range cases {
			if !strings.HasPrefix(c.name, "Retention") {
				continue // List and Remove are the same under encryption
			}
			t.Run(c.name, func(t *testing.T) {
				p, st := newDest(t)
				t.Cleanup(func() { p.Close() })
				c.fn(t, s.pruner(p), s.store(t, st))
			})
		}
	})
}

// list lists dir and fails the test on error: name -> file.
func list(t *testing.T, p destination.Pruner, dir string) map[string]destination.File {
	t.Helper()
	files, err := p.List(ctx(t), dir)
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	got := map[string]destination.File{}
	for _, f := range files {
		if _, dup := got[f.Name]; dup {
			t.Errorf("List(%q) returns %s twice", dir, f.Name)
		}
		got[f.Name] = f
	}
	return got
}

func listMissing(t *testing.T, p destination.Pruner, _ Store) {
	// The root itself may not exist before the first Save.
	for _, dir := range []string{"", "leaf1", "leaf1/2025"} {
		if got := list(t, p, dir); len(got) != 0 {
			t.Errorf("List(%q) of an empty root = %v", dir, got)
		}
	}
	save(t, p, "leaf1/x.json", config)
	if got := list(t, p, "leaf2"); len(got) != 0 {
		t.Errorf("List of a missing folder = %v", got)
	}
}

func listDirect(t *testing.T, p destination.Pruner, st Store) {
	start := time.Now()
	save(t, p, "leaf1/a.json", config)
	save(t, p, "leaf1/b.json", random(t, 3000))
	save(t, p, "leaf1/empty.json", nil)
	save(t, p, "leaf1/sub/c.json", config)
	save(t, p, "top.json", config[:7])
	st.Put("leaf1/notes.txt", []byte("written by hand\n"))
	st.Put("leaf1/"+path.Base(destination.TempName("leaf1/d.json")), []byte("a save in progress"))
	end := time.Now()

	for dir, want := range map[string]map[string]int64{
		"leaf1":     {"leaf1/a.json": int64(len(config)), "leaf1/b.json": 3000, "leaf1/empty.json": 0, "leaf1/notes.txt": 16},
		"leaf1/sub": {"leaf1/sub/c.json": int64(len(config))},
		"":          {"top.json": 7},
	} {
		got := list(t, p, dir)
		for name, size := range want {
			f, ok := got[name]
			switch {
			case !ok:
				t.Errorf("List(%q) lacks %s; it returns %v", dir, name, got)
				continue
			case f.Size != size:
				t.Errorf("List(%q): %s has size %d, want %d", dir, name, f.Size, size)
			}
			// Servers keep whole seconds at least; their clock is this
			// machine's in these tests, give or take a little.
			if f.ModTime.Before(start.Add(-time.Minute)) || f.ModTime.After(end.Add(time.Minute)) {
				t.Errorf("List(%q): %s was modified at %v, not between %v and %v", dir, name, f.ModTime, start, end)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("List(%q) returns %s, which is not a file directly in it (or is a temporary)", dir, name)
			}
		}
	}
}

func removeFiles(t *testing.T, p destination.Pruner, st Store) {
	save(t, p, "leaf1/a.json", config)
	save(t, p, "leaf1/b.json", config[:5])
	st.Put("leaf1/notes.txt", []byte("mine"))
	for _, name := range []string{"leaf1/a.json", "leaf1/a.json", "leaf1/never.json", "missing/x.json"} {
		if err := p.Remove(ctx(t), name); err != nil {
			t.Fatalf("Remove(%q): %v (a missing file is not an error)", name, err)
		}
	}
	wantFiles(t, st.Files, map[string][]byte{"leaf1/b.json": config[:5], "leaf1/notes.txt": []byte("mine")})
	if got := list(t, p, "leaf1"); len(got) != 2 {
		t.Errorf("List after Remove = %v", got)
	}
	// The destination stays usable, and a removed name can be saved again.
	save(t, p, "leaf1/a.json", config)
	wantFiles(t, st.Files, map[string][]byte{"leaf1/a.json": config, "leaf1/b.json": config[:5], "leaf1/notes.txt": []byte("mine")})
}

// refuseOutside checks that List and Remove never reach outside the root, even
// when called with what no caller should pass. The kind of error is the
// destination's to choose; that there is one, and that nothing changes, is not.
func refuseOutside(t *testing.T, p destination.Pruner, st Store) {
	save(t, p, "leaf1/a.json", config)
	for _, name := range []string{"../a.json", "leaf1/../../a.json", "/etc/hostname", "", ".", "leaf1/", "leaf1//a.json"} {
		if err := p.Remove(ctx(t), name); err == nil {
			t.Errorf("Remove(%q) succeeded, want an error", name)
		}
	}
	for _, dir := range []string{"..", "../x", "leaf1/../..", "leaf1/../../x"} {
		if _, err := p.List(ctx(t), dir); err == nil {
			t.Errorf("List(%q) succeeded, want an error", dir)
		}
	}
	// A folder is not a file: Remove leaves what it holds (and, where
	// folders exist, the folder).
	_ = p.Remove(ctx(t), "leaf1")
	wantFiles(t, st.Files, map[string][]byte{"leaf1/a.json": config})
	if got := list(t, p, "leaf1"); len(got) != 1 {
		t.Errorf("List after Remove of the folder = %v", got)
	}
}

// now is the clock of the retention cases; snapshot times are relative to it.
func now() time.Time { return time.Date(2025, 9, 20, 12, 0, 0, 0, time.UTC) }

const day = 24 * time.Hour

// defaultTemplate is option name's default.
const defaultTemplate = "{host}/{host}_{time}_{user}.json"

// snap is the record of host's snapshot whose last change was ago before now,
// named by template, with content of its own.
func snap(t *testing.T, template, host, user string, ago time.Duration) (snapshot.Record, []byte) {
	t.Helper()
	r := snapshot.Record{Host: host, User: user, LastChange: now().Add(-ago), Taken: now().Add(-ago + time.Second)}
	name, err := snapshot.Name(template, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Name = name
	data := fmt.Appendf(nil, "{\"host\": %q, \"user\": %q, \"at\": %q}\n", host, user, r.LastChange)
	r.Size = int64(len(data))
	return r, data
}

// seed saves the snapshots of host at each of agos, straight to p (no
// retention), and returns their names, in the order of agos.
func seed(t *testing.T, p destination.Pruner, template, host string, agos ...time.Duration) []string {
	t.Helper()
	var names []string
	for i, ago := range agos {
		r, data := snap(t, template, host, []string{"admin", "alice", "bob+ops@corp"}[i%3], ago)
		save(t, p, r.Name, data)
		names = append(names, destination.StoredName(p, r.Name))
	}
	return names
}

// foreign plants, in folder dir, files that are no snapshot of host leaf1
// as p stores them, although some look like one, and returns their names.
func foreign(st Store, p destination.Pruner, dir string) []string {
	old := snapshot.Timestamp(now().Add(-1000 * day))
	// leaf1's snapshot as p does not store it: in the clear when p encrypts
	// (stored before encrypt-to was set), else encrypted.
	other := "leaf1_" + old + "_admin.json"
	if destination.StoredName(p, other) == other {
		other += destination.EncryptedSuffix
	}
	names := []string{
		other,
		"notes.txt",
		"leaf2_" + old + "_admin.json",  // named like a snapshot, of another host
		"leaf10_" + old + "_admin.json", // of a host whose name extends leaf1
		"leaf1_" + old + "_admin.json.bak",
		"leaf1_" + old + "_admin.json~",
		"leaf1_unknown_admin.json",
		"leaf1_20251320T000000.000Z_admin.json", // month 13
		"." + "leaf1_" + old + "_admin.json.part",
		"old/leaf1_" + old + "_admin.json", // in a subfolder
	}
	for i, n := range names {
		names[i] = path.Join(dir, n)
		st.Put(names[i], fmt.Appendf(nil, "not cfgsnap's %d\n", i))
	}
	return names
}

// retain saves rec through WithRetention(p, r) at now and checks that
// exactly the files named in removed are gone, the saved one is stored, and
// every other file is as it was, byte for byte.
func retain(t *testing.T, p destination.Pruner, st Store, r destination.Retention, rec snapshot.Record, data []byte, removed []string) {
	t.Helper()
	before := st.Files()
	for _, name := range removed {
		if _, ok := before[name]; !ok {
			t.Fatalf("bad test: %s, to be removed, is not there; the server holds %v", name, names(before))
		}
	}
	var l testenv.Logs
	w, err := destination.WithRetention(p, r, now, l.Logf)
	if err != nil {
		t.Fatalf("WithRetention: %v", err)
	}
	if err := w.Save(ctx(t), rec, strings.NewReader(string(data))); err != nil {
		t.Fatalf("Save(%s) through retention: %v", rec.Name, err)
	}
	want := map[string][]byte{}
	for name, b := range before {
		if !slices.Contains(removed, name) {
			want[name] = b
		}
	}
	want[destination.StoredName(p, rec.Name)] = data
	wantFiles(t, st.Files, want)
	for _, name := range removed {
		if !strings.Contains(l.String(), "retention removed "+name+" (") {
			t.Errorf("the log does not say that %s was removed:\n%s", name, l.String())
		}
	}
	if strings.Contains(l.String(), "fail") || strings.Contains(l.String(), "skipped") {
		t.Errorf("retention logged a problem:\n%s", l.String())
	}
	if t.Failed() {
		t.Logf("retention logged:\n%s", l.String())
	}
}

// retainKeep: N+3 snapshots of leaf1 among files that are not, and another
// host's snapshots; after one more save, exactly the newest N of leaf1 are
// left, and everything else is untouched.
func retainKeep(t *testing.T, p destination.Pruner, st Store) {
	const n = 4
	leaf1 := seed(t, p, defaultTemplate, "leaf1", 6*day, 5*day, 4*day, 3*day, 2*day, day, time.Hour) // n+3, oldest first
	seed(t, p, defaultTemplate, "leaf2", 9*day, 8*day, 7*day, 6*day, 5*day, 4*day)
	foreign(st, p, "leaf1")
	seed(t, p, "{host}_{time}_{user}.json", "leaf1", 30*day) // another layout, another folder
	rec, data := snap(t, defaultTemplate, "leaf1", "alice", time.Minute)
	retain(t, p, st, destination.Retention{Keep: n, Template: defaultTemplate}, rec, data, leaf1[:len(leaf1)-(n-1)])
}

// retainKeepDays: names spanning days, months and years; those older than
// keep-days by the clock retention is given are removed, not a day earlier.
func retainKeepDays(t *testing.T, p destination.Pruner, st Store) {
	leaf1 := seed(t, p, defaultTemplate, "leaf1",
		400*day, 40*day, 7*day+time.Millisecond, 7*day-time.Second, 6*day, day, time.Hour)
	seed(t, p, defaultTemplate, "leaf2", 400*day, 40*day)
	foreign(st, p, "leaf1")
	rec, data := snap(t, defaultTemplate, "leaf1", "admin", time.Minute)
	retain(t, p, st, destination.Retention{KeepDays: 7, Template: defaultTemplate}, rec, data, leaf1[:3])
}

// retainBoth: either limit removes what it names on its own.
func retainBoth(t *testing.T, p destination.Pruner, st Store) {
	r := destination.Retention{Keep: 3, KeepDays: 7, Template: defaultTemplate}
	// Many recent snapshots: keep limits.
	recent := seed(t, p, defaultTemplate, "leaf1", 5*time.Hour, 4*time.Hour, 3*time.Hour, 2*time.Hour, time.Hour)
	foreign(st, p, "leaf1")
	rec, data := snap(t, defaultTemplate, "leaf1", "admin", time.Minute)
	retain(t, p, st, r, rec, data, recent[:3])
	// Few recent ones among old ones: keep-days limits, within the newest 3.
	old := seed(t, p, defaultTemplate, "leaf2", 50*day, 40*day, 8*day)
	rec, data = snap(t, defaultTemplate, "leaf2", "admin", time.Minute)
	retain(t, p, st, r, rec, data, old)
}

// retainNewest: when keep-days would remove every snapshot, the one just saved
// stays, and so does the newest, when that is another.
func retainNewest(t *testing.T, p destination.Pruner, st Store) {
	r := destination.Retention{KeepDays: 7, Template: defaultTemplate}
	// A snapshot that waited long in the spool is the newest, and old.
	old := seed(t, p, defaultTemplate, "leaf1", 90*day, 60*day)
	foreign(st, p, "leaf1")
	rec, data := snap(t, defaultTemplate, "leaf1", "admin", 30*day)
	retain(t, p, st, r, rec, data, old)
	// One older than the newest on the server: both stay.
	older := seed(t, p, defaultTemplate, "leaf2", 90*day, 60*day, 20*day)
	rec, data = snap(t, defaultTemplate, "leaf2", "admin", 50*day)
	retain(t, p, st, r, rec, data, older[:2])
	// The same with keep 1: it keeps 2 here, the saved one and the newest.
	older = seed(t, p, defaultTemplate, "spine1", 60*day, 20*day, time.Hour)
	rec, data = snap(t, defaultTemplate, "spine1", "admin", 50*day)
	retain(t, p, st, destination.Retention{Keep: 1, Template: defaultTemplate}, rec, data, older[:2])
}

// Switches whose names extend one another's by characters that names keep
// ('-', '.', '_', digits) or differ only in case, and users that fill the
// gap (leaf1 with user b-admin beside leaf1-b with user admin).
var (
	nearHosts = []string{"leaf1", "leaf1-b", "dc1-leaf1", "leaf1.b", "leaf1_b", "LEAF1", "leaf10", "leaf"}
	nearUsers = []string{"admin", "b-admin", "dc1-admin", "b.admin"}
)

// ownTemplates are the templates of option name with which retention runs
// as each of nearHosts among the others: the default, and each layout that
// puts the switches' snapshots in one shared folder.
var ownTemplates = []string{
	defaultTemplate,
	"srl/{host}_{time}.json",
	"srl/{date}.{host}.{time}.json",
	"{time}-{host}.json",
	"{host}-cfg/{user}-{time}-{commit}.json",
}

// lookAlikeTemplates leave no way to tell where {host} ends (leaf1 with user
// b-admin is named as leaf1-b with user admin); retention refuses them.
var lookAlikeTemplates = []string{
	"{host}-{user}-{time}.json",
	"{user}-{host}-{time}.json",
	"srl/{host}_{time}_{user}.json",
}

// seedNear saves three snapshots, 3, 2 and 1.25 days old, of each of
// nearHosts straight to p, and returns their names by host.
func seedNear(t *testing.T, p destination.Pruner, template string) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for i, host := range nearHosts {
		for j, ago := range []time.Duration{3 * day, 2 * day, 30 * time.Hour} {
			r, data := snap(t, template, host, nearUsers[(i+j)%len(nearUsers)], ago)
			save(t, p, r.Name, data)
			names[host] = append(names[host], destination.StoredName(p, r.Name))
		}
	}
	return names
}

// retainOwnHost: the snapshots of nearHosts share the root; as each host in
// turn saves through retention, exactly its own older snapshots go, by keep
// or by keep-days, and every other host's stay.
func retainOwnHost(t *testing.T, p destination.Pruner, st Store, template string) {
	old := seedNear(t, p, template)
	foreign(st, p, path.Dir(old["leaf1"][0]))
	for i, host := range nearHosts {
		r := destination.Retention{Keep: 1, Template: template}
		if i%2 == 1 {
			r = destination.Retention{KeepDays: 1, Template: template}
		}
		rec, data := snap(t, template, host, nearUsers[i%len(nearUsers)], time.Minute)
		retain(t, p, st, r, rec, data, old[host])
	}
}

// retainRefused: a template that cannot tell the hosts apart is refused
// before anything is listed or removed, with one line that names the
// default template, which can; keep and keep-days alike.
func retainRefused(t *testing.T, p destination.Pruner, st Store) {
	for _, template := range lookAlikeTemplates {
		seedNear(t, p, template)
		before := st.Files()
		for _, r := range []destination.Retention{{Keep: 1, Template: template}, {KeepDays: 1, Template: template}} {
			var l testenv.Logs
			w, err := destination.WithRetention(p, r, now, l.Logf)
			if err == nil {
				// Show what it would do: leaf1's retention removes other hosts' snapshots.
				rec, data := snap(t, template, "leaf1", "admin", time.Minute)
				if err := w.Save(ctx(t), rec, strings.NewReader(string(data))); err != nil {
					t.Fatal(err)
				}
				t.Fatalf("WithRetention(%+v) accepted the template; saving leaf1's snapshot through it logged:\n%s", r, l.String())
			}
			if fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), defaultTemplate) {
				t.Errorf("WithRetention(%+v) = %v; want a one-line usage error that names %s", r, err, defaultTemplate)
			}
			if cerr := r.Check(); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Check(%+v) = %v; want WithRetention's error", r, cerr)
			}
			if len(l.Lines()) != 0 {
				t.Errorf("WithRetention(%+v) logged %q", r, l.Lines())
			}
		}
		wantFiles(t, st.Files, before)
	}
}
