// Package safepath tells whether a path is root's: whether only the user
// cfgsnap runs as (root on a switch) can decide what it names.
//
// A path is root's when it is absolute and clean, no component is a symbolic
// link, every component is owned by root or the effective user, and none is
// writable by group or others. A folder on the way that others may write is
// allowed only when it is sticky (like /tmp) and the path goes on below it:
// others can add entries there but cannot rename or remove root's. The part of
// a path that does not exist yet must be below a folder that others cannot
// write at all, so that nobody else can create it first.
//
// cfgsnap checks every path that makes root run a program, read a secret or
// keep its spool when the path did not come from root itself (the event's
// options), and the spool folder always.
package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Check returns nil when p is root's, and otherwise an error naming the
// component that is not. A missing tail is allowed when missingOK is set.
func Check(p string, missingOK bool) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%q is not an absolute, clean path", p)
	}
	euid := uint32(os.Geteuid())
	names := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if p == "/" {
		names = nil
	}
	cur := "/"
	for i := 0; ; i++ {
		last := i == len(names)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) && missingOK && i > 0 {
			return nil // the folder above was checked to be writable by root alone
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		switch {
		case !ok:
			return fmt.Errorf("%s: cannot tell its owner", cur)
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link", cur)
		case st.Uid != 0 && st.Uid != euid:
			return fmt.Errorf("%s is owned by uid %d, not by root", cur, st.Uid)
		case fi.Mode().Perm()&0o022 != 0:
			sticky := fi.IsDir() && fi.Mode()&fs.ModeSticky != 0
			if last || !sticky || !exists(filepath.Join(cur, names[i])) {
				return fmt.Errorf("%s is writable by group or others", cur)
			}
		}
		if last {
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", cur)
		}
		cur = filepath.Join(cur, names[i])
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Within reports whether p lies inside folder dir (not dir itself), both
// absolute and clean: by their names alone; Check then says whether the way
// there is root's.
func Within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && filepath.IsAbs(p) && filepath.Clean(p) == p
}
