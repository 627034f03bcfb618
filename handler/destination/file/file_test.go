package file_test

import (
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func TestConformance(t *testing.T) {
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		d, err := file.New(&url.URL{Scheme: "file", Path: root})
		if err != nil {
			t.Fatal(err)
		}
		return d, func() map[string][]byte { return desttest.ReadTree(t, root) }
	})
}

func TestPrunerConformance(t *testing.T) {
	desttest.RunPruner(t, func(t *testing.T) (destination.Pruner, desttest.Store) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		d, err := file.New(&url.URL{Scheme: "file", Path: root})
		if err != nil {
			t.Fatal(err)
		}
		return d, desttest.LocalStore(t, root)
	})
}

// List shows regular files only: a link named like a snapshot is not one, and
// Remove would not follow it.
func TestListSkipsLinksAndFolders(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "precious.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "leaf1_20250920T110208.456Z_admin.json"
	if err := os.Symlink(outside, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "leaf1_20250920T110209.456Z_admin.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	d, _ := file.New(&url.URL{Scheme: "file", Path: root})
	if files, err := d.List(t.Context(), ""); err != nil || len(files) != 0 {
		t.Fatalf("List = %v, %v; want nothing", files, err)
	}
	if err := d.Remove(t.Context(), name); err == nil {
		t.Error("Remove of a symbolic link succeeded")
	}
	if err := d.Remove(t.Context(), "leaf1_20250920T110209.456Z_admin.json"); fail.KindOf(err) != fail.Usage {
		t.Errorf("Remove of a folder: %v, want a Usage error", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the link's target: %v", err)
	}
}

func TestPrivateModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "srl")
	d, _ := file.New(&url.URL{Scheme: "file", Path: root})
	if err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(root, "leaf1"): 0o700 | fs.ModeDir, filepath.Join(root, "leaf1", "x.json"): 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v (configs hold secrets)", p, st.Mode(), want)
		}
	}
}

func TestRejectsRelativeAndRemote(t *testing.T) {
	for _, raw := range []string{"file:relative/dir", "file://server/share"} {
		u, _ := url.Parse(raw)
		if _, err := file.New(u); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
}

func TestHostileFolder(t *testing.T) {
	desttest.RunHostile(t, func(t *testing.T, root string) destination.Destination {
		d, err := file.New(&url.URL{Scheme: "file", Path: root})
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// A link below the root is no folder of the target's, whether it leads out of
// the root or to another folder in it: Save writes nothing through it, and
// retention neither lists nor removes what lies behind it.
func TestNoLinkBelowRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	snap := "leaf1_20250920T110208.456Z_admin.json"
	if err := os.WriteFile(filepath.Join(outside, snap), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		os.Symlink(outside, filepath.Join(root, "leaf1")),
		os.Mkdir(filepath.Join(root, "other"), 0o700),
		os.Symlink("other", filepath.Join(root, "leaf2")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	d, _ := file.New(&url.URL{Scheme: "file", Path: root})
	for _, name := range []string{"leaf1/" + snap, "leaf2/" + snap, "leaf1/x/" + snap} {
		err := d.Save(t.Context(), snapshot.Record{Name: name, Size: 2}, strings.NewReader("{}"))
		if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Save(%s) = %v, want a Deliver error about the link", name, err)
		}
		if files, err := d.List(t.Context(), path.Dir(name)); err == nil || len(files) != 0 {
			t.Errorf("List(%s) = %v, %v; want an error", path.Dir(name), files, err)
		}
		if err := d.Remove(t.Context(), name); err == nil {
			t.Errorf("Remove(%s) succeeded", name)
		}
	}
	if got := desttest.ReadTree(t, outside); len(got) != 1 || string(got[snap]) != "{}" {
		t.Errorf("the folder outside holds %v", got)
	}
	if got := desttest.ReadTree(t, filepath.Join(root, "other")); len(got) != 0 {
		t.Errorf("the folder the link in the root points to holds %v", got)
	}
}

// killedEnv makes TestLeftoverOfKilledSave's process the Save that is killed.
const killedEnv = "CFGSNAP_FILE_TEST_KILLED_SAVE"

// A Save whose process is killed leaves its temporary file; the next Save of
// the same name removes it, but not one that belongs to someone else.
func TestLeftoverOfKilledSave(t *testing.T) {
	if root := os.Getenv(killedEnv); root != "" {
		d, _ := file.New(&url.URL{Scheme: "file", Path: root})
		d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 1 << 20}, io.MultiReader(strings.NewReader("{"), stalled{}))
		return
	}
	testenv.NeedRoot(t) // to give a leftover to another user
	root := t.TempDir()
	kill := func() (cut func()) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLeftoverOfKilledSave$")
		cmd.Env = append(os.Environ(), killedEnv+"="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return func() { cmd.Process.Kill(); cmd.Wait() }
	}
	desttest.RunLeftovers(t, root, kill, func() destination.Destination {
		d, err := file.New(&url.URL{Scheme: "file", Path: root})
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// stalled blocks forever: a source that hangs.
type stalled struct{}

func (stalled) Read([]byte) (int, error) { select {} }
