package sftp

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

// The server creates files 0600 and folders 0700 in the request that creates
// them, before any chmod: no one else can open them meanwhile. Requests that
// create nothing leave modes alone.
func TestModesAtCreation(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c := desttest.SSHConfig(s)
	c.User, c.Addr = s.User(), s.Addr()
	conn, err := sshclient.Dial(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := startSFTP(t.Context(), conn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := client.OpenFile(filepath.Join(dir, "new"), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := client.OpenFile(existing, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := client.Mkdir(filepath.Join(dir, "folder")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"new": 0o600, "folder": 0o700 | fs.ModeDir, "existing": 0o644} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode() != want {
			t.Errorf("%s: %v, %v; want mode %v", name, st.Mode(), err, want)
		}
	}
}
