package file_test

import (
	"net/url"
	"path/filepath"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
)

// TestEncrypted: with option encrypt-to, a file:// target stores NAME.age,
// which the real age CLI decrypts.
func TestEncrypted(t *testing.T) {
	desttest.RunEncrypted(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "backups", "srl")
		d, err := file.New(&url.URL{Scheme: "file", Path: root})
		if err != nil {
			t.Fatal(err)
		}
		return d, func() map[string][]byte { return desttest.ReadTree(t, root) }
	})
}
