package desttest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// RunLeftovers checks what an interrupted Save leaves below root, a folder on
// this machine: interrupt starts a Save of leaf1/x.json that writes and then
// hangs, and returns a function that cuts it off (a kill, a server stopped).
// The temporary file it leaves is removed by the next Save of the same name,
// but one that belongs to someone else (uid 65534) is left alone.
func RunLeftovers(t *testing.T, root string, interrupt func() (cut func()), newDest func() destination.Destination) {
	t.Helper()
	folder := filepath.Join(root, "leaf1")
	left := func() string {
		before := ReadTree(t, folder)
		cut := interrupt()
		defer cut()
		for range 500 {
			for name, data := range ReadTree(t, folder) {
				if _, old := before[name]; !old && len(data) > 0 {
					return name
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the interrupted Save left no new file in 5s")
		return ""
	}
	ours, theirs := left(), left()
	if err := os.Chown(filepath.Join(folder, theirs), Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
	d := newDest()
	defer d.Close()
	if err := d.Save(t.Context(), snapshot.Record{Name: "leaf1/x.json", Size: 2}, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	got := ReadTree(t, folder)
	if _, ok := got[theirs]; !ok || len(got) != 2 || string(got["x.json"]) != "{}" {
		t.Errorf("leaf1 holds %v; want x.json and uid 65534's %s, and our leftover %s gone", slices.Sorted(maps.Keys(got)), theirs, ours)
	}
}
