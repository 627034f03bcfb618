// Package spool keeps cfgsnap's work on the switch's disk, in one folder, so
// that nothing is lost when a run is cut short: the event-handler's ~10 s
// window ends, the process is killed, or the switch reboots.
//
// The folder holds
//
//	jobs/          events waiting to be captured (0700, files 0600)
//	snapshots/     undelivered snapshots: ID.json (the configuration) and
//	               ID.meta (its snapshot.Record and the targets it has not
//	               reached yet) (0700, files 0600)
//	lock           held by the one worker that captures and delivers (0600)
//	write.lock     held shared by every write in progress, see below (0600)
//	status         the last run's one-line report (0600)
//	captured       where the captured history stands: the newest commit and
//	               last-change a snapshot holds (0600)
//	chain          the head of the switch's chain of records: the newest
//	               record's sequence number and the sha256 of its canonical
//	               JSON, which the next record's prev holds (0600)
//	pending        the number of undelivered snapshots (0644: the event-handler
//	               script, which does not run as root, reads it to decide on retries)
//
// Every file appears whole or not at all: it is written to a temporary
// ".tmp-*" file in the same folder, synced, renamed into place, and the folder
// synced. A snapshot exists when its ID.meta exists, and ID.meta is only
// written after ID.json is in place, so an entry never lacks its content.
//
// Writers that a kill interrupts leave temporary files and, rarely, a
// configuration without its .meta. Open removes them, but only when no write
// is in progress anywhere: every write holds write.lock shared, and Open
// cleans up only if it can take it exclusively without waiting. A run that
// cannot clean up leaves it to the next.
//
// The spool runs as root, so nobody else may be able to change what its
// names point to. Open refuses a spool folder that is not safe for the
// effective user: its path must be absolute; the folder must not be a
// symbolic link, must belong to the effective user and must not be writable
// by group or others; every folder above it must belong to root or the
// effective user and must not be writable by group or others unless it is
// sticky (like /tmp, where others cannot rename or remove root's entries).
// A symbolic link above the spool folder is followed only if it belongs to
// root or the effective user. Folders of the path that are missing are
// created 0755 and checked alike.
// Inside, no link is ever followed: every file is opened with O_NOFOLLOW and
// must be a regular file of the effective user (with one name, to be written
// in place), jobs/ and snapshots/ must be folders of the effective user, and
// new files are created under fresh random names and renamed into place.
//
// AddJob, Jobs, Pending, Open and Status may run at any time, in any process.
// Create (and its Writer), Delivered, RemoveJobs, SetStatus and SetCaptured
// change what the worker owns: call them with the lock held (Lock or
// TryLock), so that one process at a time does.
package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Names inside the spool folder.
const (
	jobsDir      = "jobs"
	snapsDir     = "snapshots"
	lockFile     = "lock"
	writeLock    = "write.lock"
	statusFile   = "status"
	capturedFile = "captured"
	pendingFile  = "pending"
	tmpPrefix    = ".tmp-"
)

// Spool is one spool folder. Its methods are safe for concurrent use by the
// goroutines of one process; across processes, see the package comment.
type Spool struct {
	dir      string
	maxCount int
	maxBytes int64
	logf     func(format string, args ...any)
	now      func() time.Time // the clock behind IDs; tests turn it back

	mu     sync.Mutex // serialises this process's changes to entries and the pending file
	lastID int64      // the newest entry sequence this Spool handed out

	// held keeps the worker lock's file reachable until unlock: were it only
	// in the unlock closure, a caller that drops the closure would lose the
	// lock silently when the garbage collector closes the file.
	heldMu sync.Mutex
	held   map[*os.File]bool
}

// Open opens the spool folder dir, creating it (0755, so that the pending file
// can be read by a script not running as root) and its private subfolders
// (0700) as needed, and removes what interrupted writes left behind. It
// refuses a folder that is not safe, as the package comment says.
//
// At most maxCount undelivered snapshots of at most maxBytes bytes in total
// are kept; when a new snapshot would exceed either, the oldest are dropped
// and each drop is reported through logf (which may be nil).
func Open(dir string, maxCount int, maxBytes int64, logf func(format string, args ...any)) (*Spool, error) {
	switch {
	case maxCount < 1:
		return nil, fail.New(fail.Usage, "option spool-max-count is %d; set it to at least 1", maxCount)
	case maxBytes < 1:
		return nil, fail.New(fail.Usage, "option spool-max-bytes is %d; set it to at least 1", maxBytes)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := checkPath(dir, true)
	if err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, maxCount: maxCount, maxBytes: maxBytes, logf: logf, now: time.Now}
	for _, sub := range []string{jobsDir, snapsDir} {
		p := filepath.Join(s.dir, sub)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, osErr(err, "creating spool folder %s", p)
		}
		if err := privateDir(p); err != nil {
			return nil, err
		}
	}
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the spool folder.
func (s *Spool) Dir() string { return s.dir }

// recover removes leftovers of interrupted writes, brings the snapshots
// within bounds and rewrites the pending count, if no write is in progress.
func (s *Spool) recover() error {
	f, err := s.openLockFile(writeLock)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil // someone is writing: their files are not leftovers
		}
		return osErr(err, "locking %s", f.Name())
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	for _, sub := range []string{".", jobsDir, snapsDir} {
		d := filepath.Join(s.dir, sub)
		names, err := readNames(d)
		if err != nil {
			return err
		}
		removed := false
		for _, name := range names {
			if strings.HasPrefix(name, tmpPrefix) {
				if err := remove(filepath.Join(d, name)); err != nil {
					return err
				}
				removed = true
			}
		}
		if removed {
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	if err := s.removeOrphans(); err != nil {
		return err
	}
	entries, err := s.list()
	if err != nil {
		return err
	}
	entries, err = s.enforceBounds(entries)
	if err != nil {
		return err
	}
	return s.writePending(len(entries))
}

// TryLock takes the worker lock if no other process or Spool holds it, and
// returns at once either way. The operating system releases it when the
// holder exits, however it exits.
func (s *Spool) TryLock() (unlock func(), ok bool, err error) {
	f, err := s.openLockFile(lockFile)
	if err != nil {
		return nil, false, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, osErr(err, "locking %s", f.Name())
	}
	// Who holds it, for TakeOver: overwritten by each holder, never cleared.
	if err := f.Truncate(0); err == nil {
		f.WriteAt(strconv.AppendInt(nil, int64(os.Getpid()), 10), 0)
	}
	s.heldMu.Lock()
	if s.held == nil {
		s.held = map[*os.File]bool{}
	}
	s.held[f] = true
	s.heldMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.heldMu.Lock()
			delete(s.held, f)
			s.heldMu.Unlock()
			f.Close() // closing releases the flock
		})
	}, true, nil
}

// Lock waits for the worker lock until ctx is done; it then fails with
// fail.Busy.
func (s *Spool) Lock(ctx context.Context) (unlock func(), err error) {
	// A worker holds the lock for seconds: polling every 200 ms at most costs
	// little and delays little.
	unlock, ok, err := s.pollLock(ctx, 5*time.Millisecond, 200*time.Millisecond, func() bool { return true })
	if !ok && err == nil {
		return nil, fail.New(fail.Busy, "spool %s is locked by another cfgsnap (%v); wait for it to finish or stop it", s.dir, ctx.Err())
	}
	return unlock, err
}

// pollLock tries the lock, then again after waits that double from first to
// most, for as long as ctx lasts and keepTrying says so. flock cannot be
// interrupted by a context, hence the polling.
func (s *Spool) pollLock(ctx context.Context, first, most time.Duration, keepTrying func() bool) (unlock func(), ok bool, err error) {
	for wait := first; ; wait = min(2*wait, most) {
		unlock, ok, err := s.TryLock()
		if ok || err != nil || !keepTrying() {
			return unlock, ok, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, nil
		case <-t.C:
		}
	}
}

// writing holds write.lock shared for as long as a write is in progress, so
// that recover does not take the write's temporary files for leftovers.
func (s *Spool) writing() (done func(), err error) {
	f, err := s.openLockFile(writeLock)
	if err != nil {
		return nil, err
	}
	// Blocks only while recover runs, which is a few file removals.
	if err := flock(f, syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, osErr(err, "locking %s", f.Name())
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, nil
}

func (s *Spool) openLockFile(name string) (*os.File, error) {
	p := filepath.Join(s.dir, name)
	f, err := openFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, osErr(err, "opening lock file %s", p)
	}
	return f, nil
}

// flock retries on EINTR, which Go's signal handling can cause.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// maxStatus bounds the status line: it is shown in the event handler's state.
const maxStatus = 4096

// SetStatus records the one-line summary of this run for the next one to
// show. Line breaks become spaces. A line over 4 KiB loses its middle, not its
// end: a report ends with the targets' results and the pending count.
func (s *Spool) SetStatus(line string) error {
	line = strings.Join(strings.Fields(strings.ToValidUTF8(line, "?")), " ")
	if len(line) > maxStatus {
		const gap = " ... "
		keep := (maxStatus - len(gap)) / 2
		line = strings.ToValidUTF8(line[:keep]+gap+line[len(line)-keep:], "")
	}
	done, err := s.writing()
	if err != nil {
		return err
	}
	defer done()
	return writeAtomic(s.dir, statusFile, []byte(line+"\n"), 0o600)
}

// Status returns the summary of the last run, or "" if none was recorded.
func (s *Spool) Status() (string, error) {
	b, err := readFile(filepath.Join(s.dir, statusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", osErr(err, "reading the last run's status")
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// SetCaptured records where the captured history stands, so that a later
// event (a retry, a reload, the event handler starting, or a commit that an
// earlier snapshot already holds) can be recognised as bringing nothing new.
func (s *Spool) SetCaptured(m snapshot.Mark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fail.New(fail.Internal, "spool: encoding the captured mark: %w", err)
	}
	done, err := s.writing()
	if err != nil {
		return err
	}
	defer done()
	return writeAtomic(s.dir, capturedFile, append(b, '\n'), 0o600)
}

// Captured returns what SetCaptured recorded last, or the zero Mark if nothing
// was. A file from before commits were tracked holds the last-change alone.
func (s *Spool) Captured() (snapshot.Mark, error) {
	p := filepath.Join(s.dir, capturedFile)
	b, err := readFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return snapshot.Mark{}, nil
	}
	if err != nil {
		return snapshot.Mark{}, osErr(err, "reading the last captured change")
	}
	var m snapshot.Mark
	if err := json.Unmarshal(b, &m); err != nil {
		t, terr := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		if terr != nil {
			return snapshot.Mark{}, fail.New(fail.Internal, "spool: %s is damaged (%v); remove it", p, err)
		}
		m.LastChange = t
	}
	return m, nil
}

// writeAtomic replaces dir/name with data, so that a reader (or a reboot)
// sees the old or the new content, never part of it. The mode is set
// explicitly: the umask must not hide the pending count from the script.
func writeAtomic(dir, name string, data []byte, perm os.FileMode) error {
	f, err := createTemp(dir, tmpPrefix+name+"-")
	if err != nil {
		return osErr(err, "writing %s", filepath.Join(dir, name))
	}
	tmp := f.Name()
	err = func() error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := f.Chmod(perm); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return osErr(err, "writing %s", filepath.Join(dir, name))
	}
	return syncDir(dir)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := openDir(dir)
	if err != nil {
		return osErr(err, "opening folder %s", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return osErr(err, "syncing folder %s", dir)
	}
	return nil
}

// readNames lists dir in name order.
func readNames(dir string) ([]string, error) {
	d, err := openDir(dir)
	if err != nil {
		return nil, osErr(err, "listing spool folder %s", dir)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, osErr(err, "listing spool folder %s", dir)
	}
	slices.Sort(names)
	return names, nil
}

// remove removes a file that may already be gone.
func remove(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return osErr(err, "removing %s", p)
	}
	return nil
}

// osErr turns an operating-system error into one line that says what to do:
// permission problems need sudo (or another spool-dir), a spool-dir that can
// never be a folder (too long a name, a file on its way, a read-only file
// system) is a bad option, the rest is unexpected.
func osErr(err error, format string, args ...any) error {
	if fe := (*fail.Error)(nil); errors.As(err, &fe) {
		return err // says what to do already
	}
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fail.New(fail.Permission, "spool: %s: %w; run cfgsnap with sudo or set spool-dir to a folder it may write", what, unwrapPath(err))
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EROFS):
		return fail.New(fail.Usage, "spool: %s: %w; set spool-dir to a writable folder", what, unwrapPath(err))
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fail.New(fail.Internal, "spool: %s: %w; free space there or lower spool-max-bytes", what, unwrapPath(err))
	}
	return fail.New(fail.Internal, "spool: %s: %w", what, unwrapPath(err))
}

// unwrapPath drops the operation and path of a *fs.PathError, which the
// message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
