package desttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// ReadTree lists the files below the local folder root as a NewFunc's stored
// does, hidden and temporary files included; a missing root holds none. It serves
// every destination whose server stores on this machine: the folder of a file://
// target, or the one the test's own sshd writes to.
func ReadTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}
