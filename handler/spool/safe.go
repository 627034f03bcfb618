package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// WorkerLog is the worker's log file in the spool folder. It is cut back to
// nothing when it passes MaxLog, since /etc/opt on a switch is small.
const (
	WorkerLog = "worker.log"
	MaxLog    = 1 << 20
)

// OpenLog opens dir's WorkerLog for appending, creating it 0600, and cuts it
// back to nothing when it is over MaxLog. dir must be a safe spool folder (see
// the package comment) and the log a regular file of the effective user with
// no other name: a link planted there must not make root write elsewhere.
func OpenLog(dir string) (*os.File, error) {
	dir, err := checkPath(dir, false)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, WorkerLog)
	f, err := openFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, osErr(err, "opening %s", p)
	}
	// Through the descriptor: the name could be replaced after the open.
	fi, err := f.Stat()
	if err == nil && fi.Size() > MaxLog {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, osErr(err, "cutting back %s", p)
	}
	return f, nil
}

// checkPath checks that dir is a spool folder safe for the effective user, as
// the package comment says, and returns it cleaned. With create, it creates
// what is missing of it, 0755, checking each folder it creates like the rest.
//
// It walks dir from the root as the kernel does, following links on the way
// that belong to root or the effective user (their folder was checked before,
// and in a sticky one only a link's owner may replace it) but not the spool
// folder's own name.
func checkPath(dir string, create bool) (string, error) {
	switch {
	case dir == "":
		return "", fail.New(fail.Usage, "option spool-dir is empty; set it to a folder such as /etc/opt/srlinux/cfgsnap")
	case !filepath.IsAbs(dir):
		return "", fail.New(fail.Usage, "option spool-dir: %s is not an absolute path; set it to a full path such as /etc/opt/srlinux/cfgsnap", dir)
	}
	dir = filepath.Clean(dir)
	euid := os.Geteuid()
	cur := "/"
	fi, err := os.Lstat(cur)
	if err != nil {
		return "", osErr(err, "opening folder /")
	}
	if err := checkFolder(dir, cur, fi, dir == cur, euid); err != nil {
		return "", err
	}
	rest := strings.Split(dir, "/")
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..": // only from a link's target: cur has no links, so its parent is the real one
			cur = filepath.Dir(cur)
			continue
		}
		last := len(rest) == 0
		p := filepath.Join(cur, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) && create {
			if err := makeDir(p); err != nil {
				return "", err
			}
			fi, err = os.Lstat(p)
		}
		switch {
		case err != nil:
			return "", osErr(err, "opening spool folder %s", p)
		case fi.Mode()&fs.ModeSymlink != 0 && last:
			return "", fail.New(fail.Usage, "option spool-dir: %s is a symbolic link; set spool-dir to the folder itself, not a link to it", dir)
		case fi.Mode()&fs.ModeSymlink != 0:
			if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != 0 && uid != euid {
				return "", fail.New(fail.Permission, "spool: link %s, above spool folder %s, belongs to uid %d, who could point it elsewhere; set spool-dir to a path without it", p, dir, uid)
			}
			if links++; links > 40 {
				return "", osErr(syscall.ELOOP, "opening spool folder %s", dir)
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", osErr(err, "opening spool folder %s", p)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		case !fi.IsDir():
			return "", fail.New(fail.Usage, "option spool-dir: %s is not a folder; point spool-dir at a folder", p)
		}
		if err := checkFolder(dir, p, fi, last, euid); err != nil {
			return "", err
		}
		cur = p
	}
	return dir, nil
}

// makeDir creates folder p 0755 whatever the umask: the script needs to read
// pending. If someone else created p meanwhile, p is left alone, to be checked
// like any folder found.
func makeDir(p string) error {
	err := os.Mkdir(p, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return osErr(err, "creating spool folder %s", p)
	}
	f, err := openDir(p)
	if err == nil {
		err = f.Chmod(0o755)
		f.Close()
	}
	if err != nil {
		return osErr(err, "setting the mode of spool folder %s", p)
	}
	return nil
}

// checkFolder checks folder p (fi) on the way to spool folder dir, or dir
// itself when spool is true.
func checkFolder(dir, p string, fi fs.FileInfo, spool bool, euid int) error {
	uid := int(fi.Sys().(*syscall.Stat_t).Uid)
	writable := fi.Mode().Perm()&0o022 != 0
	switch {
	case spool && uid != euid:
		return fail.New(fail.Permission, "spool: folder %s belongs to uid %d, not to uid %d that runs cfgsnap, and its owner could lead cfgsnap's writes elsewhere; set spool-dir to a folder of uid %d's, or remove this one for cfgsnap to create it anew", dir, uid, euid, euid)
	case spool && writable:
		return fail.New(fail.Permission, "spool: folder %s is writable by group or others (mode %v); run chmod go-w %s", dir, fi.Mode().Perm(), dir)
	case spool:
		return nil
	case uid != 0 && uid != euid:
		return fail.New(fail.Permission, "spool: folder %s, above spool folder %s, belongs to uid %d, who could replace the spool; set spool-dir to a folder below folders of root's", p, dir, uid)
	case writable && fi.Mode()&fs.ModeSticky == 0:
		return fail.New(fail.Permission, "spool: folder %s, above spool folder %s, is writable by group or others (mode %v), who could replace the spool; run chmod go-w %s or set spool-dir elsewhere", p, dir, fi.Mode().Perm(), p)
	}
	return nil
}

// openFile opens the spool's file p without following a link and refuses
// anything but a regular file of the effective user, and, to write, one with
// no other name (a hard link): what someone planted in the spool must not
// lead root's reads or writes to another file. O_NONBLOCK keeps a planted
// FIFO from hanging the open; it changes nothing for a regular file.
// Errors from the open itself are returned as they are, for fs.ErrNotExist.
func openFile(p string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(p, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fail.New(fail.Permission, "spool: %s is a symbolic link, which cfgsnap does not follow in its spool; remove it", p)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	writing := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if !fi.Mode().IsRegular() || int(st.Uid) != os.Geteuid() || writing && st.Nlink != 1 {
		f.Close()
		return nil, fail.New(fail.Permission, "spool: %s is not a regular file of uid %d with one name (mode %v, uid %d, link count %d); remove it",
			p, os.Geteuid(), fi.Mode(), st.Uid, st.Nlink)
	}
	return f, nil
}

// readFile is os.ReadFile through openFile.
func readFile(p string) ([]byte, error) {
	f, err := openFile(p, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// createTemp creates a file named prefix and random digits in folder dir,
// 0600, like os.CreateTemp, but through dir opened without following a link,
// so that the file is never created where a link in dir's place points.
func createTemp(dir, prefix string) (*os.File, error) {
	d, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	for try := 0; ; try++ {
		name := fmt.Sprintf("%s%016x", prefix, rand.Uint64())
		fd, err := syscall.Openat(int(d.Fd()), name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if (errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.EINTR)) && try < 100 {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: filepath.Join(dir, name), Err: err}
		}
		return os.NewFile(uintptr(fd), filepath.Join(dir, name)), nil
	}
}

// openDir opens folder p of the spool without following a link.
func openDir(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fail.New(fail.Permission, "spool: %s is not a folder but a link or a file, which cfgsnap does not follow in its spool; remove it", p)
	}
	return f, err
}

// privateDir makes p, a folder in the spool, 0700 after checking, through
// the same descriptor, that it is a folder of the effective user.
func privateDir(p string) error {
	f, err := openDir(p)
	if err != nil {
		return osErr(err, "opening spool folder %s", p)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return osErr(err, "opening spool folder %s", p)
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != os.Geteuid() {
		return fail.New(fail.Permission, "spool: folder %s belongs to uid %d, not to uid %d that runs cfgsnap; remove it", p, uid, os.Geteuid())
	}
	// Snapshots hold password hashes and keys: keep them private even if
	// someone widened the folder's mode.
	if fi.Mode().Perm() != 0o700 {
		if err := f.Chmod(0o700); err != nil {
			return osErr(err, "setting the mode of spool folder %s", p)
		}
	}
	return nil
}
