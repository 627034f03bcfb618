package file_test

import (
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
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
