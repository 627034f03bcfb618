// Package safepath tells whether a path is root's: whether only the user
// cfgsnap runs as (root on a switch) can decide what it names.
//
// A path is root's when it is absolute and clean and, walked from / as the
// kernel resolves it, every component is owned by root or the effective user
// and none is writable by group or others. A symbolic link on the way is
// followed when root or the effective user owns it: its folder was checked
// before, and only a link's owner can change or, in a sticky folder, replace
// it; what it points to is then checked the same way. A link owned by anyone
// else is refused, and so is a link as the final component: the path must
// name the thing itself. A folder on the way that others may write is allowed
// only when it is sticky (like /tmp) and the path goes on below it through an
// entry that exists: others can add entries there but cannot rename or remove
// root's. The part of a path that does not exist yet must be below a folder
// that others cannot write at all, so that nobody else can create it first;
// or the caller creates it (Options.Mkdir) and each folder it made, or found
// made meanwhile, is checked like the rest.
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

// maxLinks is how many links one walk follows, as Linux's limit (ELOOP).
const maxLinks = 40

// Options change what Walk accepts.
type Options struct {
	// MissingOK accepts a path whose tail does not exist yet, below a folder
	// nobody but root may write.
	MissingOK bool
	// Mkdir, when set, is called to create each missing component as a
	// folder; what is there afterwards is checked like what was found.
	Mkdir func(p string) error
}

// Reason says why a component is not root's.
type Reason int

const (
	// Link: the final component is a symbolic link.
	Link Reason = iota + 1
	// Owner: the component belongs to neither root nor the effective user.
	Owner
	// Writable: group or others may write the component, or, for a sticky
	// folder, create the missing entry below it.
	Writable
	// NotFolder: a component on the way is not a folder.
	NotFolder
)

// An Error says which component makes a path not root's, and why.
type Error struct {
	Path  string // the path walked
	At    string // the component at fault, with the links before it resolved
	Via   string // the last link followed before At, if any
	Why   Reason
	Final bool        // At is what Path names, not a component on the way
	Info  fs.FileInfo // At's
}

func (e *Error) Error() string {
	var msg string
	switch e.Why {
	case Link:
		msg = e.At + " is a symbolic link"
	case Owner:
		kind := ""
		if e.Info.Mode()&fs.ModeSymlink != 0 {
			kind = "symbolic link "
		}
		msg = fmt.Sprintf("%s%s is owned by uid %d, not by root", kind, e.At, UID(e.Info))
	case Writable:
		msg = e.At + " is writable by group or others"
	case NotFolder:
		msg = e.At + " is not a folder"
	}
	if e.Via != "" {
		msg += " (reached through symbolic link " + e.Via + ")"
	}
	return msg
}

// UID is the owner of what fi describes, as the system reports it.
func UID(fi fs.FileInfo) uint32 {
	return fi.Sys().(*syscall.Stat_t).Uid
}

// Check returns nil when p is root's, and otherwise an error naming the
// component that is not. A missing tail is allowed when missingOK is set.
func Check(p string, missingOK bool) error {
	_, err := Walk(p, Options{MissingOK: missingOK})
	return err
}

// Walk returns what p names when p is root's, or nil for a missing tail that
// o allows. Otherwise it returns a *Error for a component that is not root's,
// the system's error (an *fs.PathError, such as fs.ErrNotExist for a missing
// component), Mkdir's, or one for a path that is not absolute and clean.
func Walk(p string, o Options) (fs.FileInfo, error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return nil, fmt.Errorf("%q is not an absolute, clean path", p)
	}
	w := &walker{path: p, opts: o, euid: uint32(os.Geteuid())}
	if p == "/" {
		fi, err := os.Lstat(p)
		if err == nil {
			err = w.check(p, fi, true)
		}
		return fi, err
	}
	if err := w.enter("/"); err != nil {
		return nil, err
	}
	rest := names(p)
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == ".." { // only from a link's target: cur has no link, so its parent is the real one
			if err := w.enter(filepath.Dir(w.cur)); err != nil {
				return nil, err
			}
			continue
		}
		last := len(rest) == 0
		next := filepath.Join(w.cur, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			if fi, err = w.missing(next, err); fi == nil && err == nil {
				return nil, nil
			}
		}
		switch {
		case err != nil:
			return nil, err
		case fi.Mode()&fs.ModeSymlink != 0 && last:
			return nil, w.fail(next, fi, Link, true)
		case fi.Mode()&fs.ModeSymlink != 0:
			if err := w.owned(next, fi, false); err != nil {
				return nil, err
			}
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: "walk", Path: p, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return nil, err
			}
			if filepath.IsAbs(target) {
				if err := w.enter("/"); err != nil {
					return nil, err
				}
			}
			rest = append(names(target), rest...)
			w.via = next
			continue
		}
		if err := w.check(next, fi, last); err != nil {
			return nil, err
		}
		if last {
			return fi, nil
		}
		if !fi.IsDir() {
			return nil, w.fail(next, fi, NotFolder, false)
		}
		w.cur, w.curInfo = next, fi
	}
	return nil, fmt.Errorf("%s: nothing left to walk", p) // unreachable: a clean path ends in a name
}

// walker walks one path.
type walker struct {
	path    string
	opts    Options
	euid    uint32
	cur     string      // the folder reached, checked, with no link in it
	curInfo fs.FileInfo // cur's
	via     string      // the last link followed
}

// enter makes folder p, checked as one on the way, the current folder.
func (w *walker) enter(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		err = w.check(p, fi, false)
	}
	if err == nil && !fi.IsDir() {
		err = w.fail(p, fi, NotFolder, false)
	}
	if err != nil {
		return err
	}
	w.cur, w.curInfo = p, fi
	return nil
}

// missing handles next, a missing entry of the current folder (lstat told
// err): it makes it when it may, or returns nil, nil when the rest may be
// missing.
func (w *walker) missing(next string, err error) (fs.FileInfo, error) {
	switch {
	case w.opts.Mkdir != nil:
		if err := w.opts.Mkdir(next); err != nil {
			return nil, err
		}
		return os.Lstat(next)
	case !w.opts.MissingOK:
		return nil, err
	case w.curInfo.Mode().Perm()&0o022 != 0: // sticky: others could create it first
		return nil, w.fail(w.cur, w.curInfo, Writable, false)
	}
	return nil, nil
}

// check checks component p (fi), the final one when last.
func (w *walker) check(p string, fi fs.FileInfo, last bool) error {
	if err := w.owned(p, fi, last); err != nil {
		return err
	}
	sticky := fi.IsDir() && fi.Mode()&fs.ModeSticky != 0
	if fi.Mode().Perm()&0o022 != 0 && (last || !sticky) {
		return w.fail(p, fi, Writable, last)
	}
	return nil
}

// owned checks that root or the effective user owns component p (fi).
func (w *walker) owned(p string, fi fs.FileInfo, last bool) error {
	if _, ok := fi.Sys().(*syscall.Stat_t); !ok {
		return fmt.Errorf("%s: cannot tell its owner", p)
	}
	if uid := UID(fi); uid != 0 && uid != w.euid {
		return w.fail(p, fi, Owner, last)
	}
	return nil
}

func (w *walker) fail(at string, fi fs.FileInfo, why Reason, final bool) error {
	return &Error{Path: w.path, At: at, Via: w.via, Why: why, Final: final, Info: fi}
}

// names are the components of path p, without the empty and "." ones.
func names(p string) []string {
	var ns []string
	for _, n := range strings.Split(p, "/") {
		if n != "" && n != "." {
			ns = append(ns, n)
		}
	}
	return ns
}

// Within reports whether p lies inside folder dir (not dir itself), both
// absolute and clean: by their names alone; Check then says whether the way
// there is root's.
func Within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && filepath.IsAbs(p) && filepath.Clean(p) == p
}
