package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/safepath"
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
// The walk is safepath's: links on the way that root or the effective user
// own are followed, the spool folder's own name is not. The spool adds that
// the folder is one, of the effective user exactly.
func checkPath(dir string, create bool) (string, error) {
	switch {
	case dir == "":
		return "", fail.New(fail.Usage, "option spool-dir is empty; set it to a folder such as /etc/opt/srlinux/cfgsnap")
	case !filepath.IsAbs(dir):
		return "", fail.New(fail.Usage, "option spool-dir: %s is not an absolute path; set it to a full path such as /etc/opt/srlinux/cfgsnap", dir)
	}
	dir = filepath.Clean(dir)
	var opts safepath.Options
	if create {
		opts.Mkdir = makeDir
	}
	fi, err := safepath.Walk(dir, opts)
	switch {
	case err != nil:
		return "", pathErr(dir, err)
	case !fi.IsDir():
		return "", fail.New(fail.Usage, "option spool-dir: %s is not a folder; point spool-dir at a folder", dir)
	case int(safepath.UID(fi)) != os.Geteuid():
		return "", notOurs(dir, fi)
	}
	return dir, nil
}

// pathErr says, for the spool, why safepath refused spool folder dir.
func pathErr(dir string, err error) error {
	var e *safepath.Error
	if !errors.As(err, &e) {
		p := dir
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			p = pe.Path
		}
		return osErr(err, "opening spool folder %s", p)
	}
	uid, mode := safepath.UID(e.Info), e.Info.Mode().Perm()
	switch {
	case e.Why == safepath.Link:
		return fail.New(fail.Usage, "option spool-dir: %s is a symbolic link; set spool-dir to the folder itself, not a link to it", dir)
	case e.Why == safepath.NotFolder:
		return fail.New(fail.Usage, "option spool-dir: %s is not a folder; point spool-dir at a folder", e.At)
	case e.Final && e.Why == safepath.Owner:
		return notOurs(dir, e.Info)
	case e.Final:
		return fail.New(fail.Permission, "spool: folder %s is writable by group or others (mode %v); run chmod go-w %s", dir, mode, dir)
	case e.Why == safepath.Owner && e.Info.Mode()&fs.ModeSymlink != 0:
		return fail.New(fail.Permission, "spool: link %s, above spool folder %s, belongs to uid %d, who could point it elsewhere; set spool-dir to a path without it", e.At, dir, uid)
	case e.Why == safepath.Owner:
		return fail.New(fail.Permission, "spool: folder %s, above spool folder %s, belongs to uid %d, who could replace the spool; set spool-dir to a folder below folders of root's", e.At, dir, uid)
	}
	return fail.New(fail.Permission, "spool: folder %s, above spool folder %s, is writable by group or others (mode %v), who could replace the spool; run chmod go-w %s or set spool-dir elsewhere", e.At, dir, mode, e.At)
}

// notOurs is the error for spool folder dir (fi) of another user's.
func notOurs(dir string, fi fs.FileInfo) error {
	uid, euid := safepath.UID(fi), os.Geteuid()
	return fail.New(fail.Permission, "spool: folder %s belongs to uid %d, not to uid %d that runs cfgsnap, and its owner could lead cfgsnap's writes elsewhere; set spool-dir to a folder of uid %d's, or remove this one for cfgsnap to create it anew", dir, uid, euid, euid)
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
