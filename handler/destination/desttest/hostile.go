package desttest

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// NewAtFunc returns a destination whose root is the folder root on this
// machine, which the caller has made: a file:// target's folder, or the one
// the test's own sshd writes to.
type NewAtFunc func(t *testing.T, root string) destination.Destination

// RunHostile runs the cases of a root folder that another user (uid 65534) may
// create files in, as in a shared drop folder (mode 1777): whatever that user
// plants at the names a Save writes to (the temporary names that earlier
// versions used, the final names), a Save never writes through a link, never
// writes into a file it did not create, and leaves a snapshot that only its
// own user can read, 0600; and that user, watching the folder during many
// saves, never reads a byte of one.
func RunHostile(t *testing.T, newDest NewAtFunc) {
	testenv.NeedRoot(t) // to plant files as another user
	cases := []struct {
		name string
		fn   func(t *testing.T, d destination.Destination, root string)
	}{
		{"PlantedLinks", plantedLinks},
		{"PlantedFiles", plantedFiles},
		{"WatcherReadsNothing", watcherReadsNothing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not below t.TempDir, which only root may enter.
			base, err := os.MkdirTemp("", "cfgsnap-hostile-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(base, "drop")
			if err := os.Mkdir(root, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(root, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			d := newDest(t, root)
			t.Cleanup(func() { d.Close() })
			c.fn(t, d, root)
		})
	}
}

// RunHostile runs the hostile cases against s.
func (h SSH[D]) RunHostile(t *testing.T, s *sshd.Server) {
	RunHostile(t, func(t *testing.T, root string) destination.Destination {
		return h.Dest(t, s, root, SSHConfig(s))
	})
}

// oldTemp is the temporary file of name that cfgsnap used to write: known
// in advance to anyone.
func oldTemp(name string) string { return path.Base(destination.TempName(name)) }

// plantLink makes p a symbolic link to target, owned by uid 65534.
func plantLink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
}

// plantFile makes p a file of uid 65534 that anyone may write, holding Planted.
func plantFile(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(Planted), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
}

// WantPrivate checks that p is a regular file of this process's user, mode
// 0600, holding data: a snapshot no one else can read or change.
func WantPrivate(t *testing.T, p string, data []byte) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; st.Mode() != 0o600 || int(uid) != os.Geteuid() {
		t.Errorf("%s: mode %v, owner uid %d; want a regular file, mode 0600, of uid %d", p, st.Mode(), uid, os.Geteuid())
		return
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != string(data) {
		t.Errorf("%s holds %q (%v), want the %d bytes saved", p, got, err, len(data))
	}
}

// precious makes a file that only root may read or write, outside any root, for
// links to point at, and returns its path and content.
func precious(t *testing.T) (string, []byte) {
	p := filepath.Join(t.TempDir(), "precious")
	data := []byte("root's alone\n")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func wantUnchanged(t *testing.T, p string, data []byte) {
	t.Helper()
	if got, err := os.ReadFile(p); err != nil || string(got) != string(data) {
		t.Errorf("%s, which a planted link points to, now holds %q (%v), want %q", p, got, err, data)
	}
}

// plantedLinks: links at the temporary name and at the final name.
func plantedLinks(t *testing.T, d destination.Destination, root string) {
	atTemp, atTempData := precious(t)
	atFinal, atFinalData := precious(t)
	plantLink(t, atTemp, filepath.Join(root, oldTemp("a.json")))
	plantLink(t, atFinal, filepath.Join(root, "b.json"))
	save(t, d, "a.json", config)
	save(t, d, "b.json", config)
	wantUnchanged(t, atTemp, atTempData)
	wantUnchanged(t, atFinal, atFinalData)
	WantPrivate(t, filepath.Join(root, "a.json"), config)
	WantPrivate(t, filepath.Join(root, "b.json"), config)
}

// plantedFiles: a file that anyone may write, at the temporary name.
func plantedFiles(t *testing.T, d destination.Destination, root string) {
	planted := filepath.Join(root, oldTemp("a.json"))
	plantFile(t, planted)
	save(t, d, "a.json", config)
	WantPrivate(t, filepath.Join(root, "a.json"), config)
	if got, err := os.ReadFile(planted); err == nil && string(got) != Planted {
		t.Errorf("the planted file %s was written to: it holds %q", planted, got)
	}
}

// watcherReadsNothing: many saves while the other user plants files at every
// temporary name it can know and reads whatever it can open.
func watcherReadsNothing(t *testing.T, d destination.Destination, root string) {
	const n = 30
	var names, plant []string
	for i := range n {
		name := fmt.Sprintf("leaf1_20250920T1102%02d.000Z_admin.json", i)
		names = append(names, name)
		plant = append(plant, oldTemp(name))
	}
	in := StartIntruder(t, root, plant...)
	saved := map[string][]byte{}
	for i, name := range names {
		saved[name] = fmt.Appendf(random(t, 64+i), "secret %d\n", i)
		save(t, d, name, saved[name])
	}
	rep := in.Stop()
	for name, b := range rep.Read {
		t.Errorf("uid 65534 read %d bytes from %s", len(b), name)
	}
	for _, name := range names {
		if !slices.Contains(rep.Seen, name) {
			t.Errorf("uid 65534 never saw %s in the folder: it did not watch it", name)
		}
		WantPrivate(t, filepath.Join(root, name), saved[name])
	}
}
