package desttest

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ReadTree lists the files below the local folder root as a NewFunc's stored
// does, hidden and temporary files included; a missing root holds none. It serves
// every destination whose server stores on this machine: the folder of a file://
// target, or the one the test's own sshd writes to.
//
// Folders named in skip are left out wherever they are: a server's own
// bookkeeping (an S3 gateway's metadata folders) is not what it stores.
func ReadTree(t testing.TB, root string, skip ...string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case e.IsDir() && p != root && slices.Contains(skip, e.Name()):
			return filepath.SkipDir
		case e.IsDir():
			return nil
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
