package file_test

import (
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
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
