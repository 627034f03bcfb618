package spool

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

const nobody = 65534

// A victim is a file of root's outside the spool, which nothing the spool
// does may change, whatever was planted in it.
type victim struct {
	path string
	data []byte
	mode fs.FileMode
}

func newVictim(t *testing.T, data []byte, mode fs.FileMode) victim {
	t.Helper()
	v := victim{filepath.Join(t.TempDir(), "victim"), data, mode}
	if err := os.WriteFile(v.path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(v.path, mode); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v victim) check(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(v.path)
	fi, serr := os.Lstat(v.path)
	if err != nil || serr != nil || !bytes.Equal(b, v.data) || fi.Mode() != v.mode {
		t.Errorf("victim %s changed: %d bytes (had %d), mode %v (had %v), %v %v", v.path, len(b), len(v.data), fi.Mode(), v.mode, err, serr)
	}
}

// plant makes dir/name a link to target, owned by uid.
func plant(t *testing.T, dir, name, target string, uid int) {
	t.Helper()
	p := filepath.Join(dir, name)
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// mkdirOwned makes folder p with mode and owner, whatever the umask.
func mkdirOwned(t *testing.T, p string, mode fs.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// refused checks that err is one line of kind saying says.
func refused(t *testing.T, what string, err error, kind fail.Kind, says string) {
	t.Helper()
	msg := fmt.Sprint(err)
	t.Logf("%s: %s", what, msg)
	if err == nil || fail.KindOf(err) != kind || !strings.Contains(msg, says) || strings.Contains(msg, "\n") {
		t.Errorf("%s: %v (kind %d); want one line of kind %d saying %q", what, err, fail.KindOf(err), kind, says)
	}
}

func listing(dir string) []string {
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			fi, _ := os.Lstat(p)
			names = append(names, fmt.Sprintf("%s %v", p, fi.Mode()))
		}
		return nil
	})
	return names
}

func TestOpenRefusesUnsafeSpool(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []struct {
		name string
		// spool returns spool-dir and the real folder to plant links in
		spool func(t *testing.T, base string) (dir, real string)
		kind  fail.Kind
		says  string
	}{
		{"owned by nobody", func(t *testing.T, base string) (string, string) {
			d := filepath.Join(base, "spool")
			mkdirOwned(t, d, 0o755, nobody)
			return d, d
		}, fail.Permission, "belongs to uid 65534"},
		{"writable by others", func(t *testing.T, base string) (string, string) {
			d := filepath.Join(base, "spool")
			mkdirOwned(t, d, 0o777, 0)
			return d, d
		}, fail.Permission, "chmod go-w"},
		{"writable by group", func(t *testing.T, base string) (string, string) {
			d := filepath.Join(base, "spool")
			mkdirOwned(t, d, 0o775, 0)
			return d, d
		}, fail.Permission, "chmod go-w"},
		{"a symbolic link", func(t *testing.T, base string) (string, string) {
			d := filepath.Join(base, "real")
			mkdirOwned(t, d, 0o755, 0)
			if err := os.Symlink(d, filepath.Join(base, "spool")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "spool"), d
		}, fail.Usage, "symbolic link"},
		{"below a world-writable folder", func(t *testing.T, base string) (string, string) {
			mkdirOwned(t, filepath.Join(base, "open"), 0o777, 0)
			d := filepath.Join(base, "open", "spool")
			mkdirOwned(t, d, 0o755, 0)
			return d, d
		}, fail.Permission, "above spool folder"},
		{"below a folder of nobody", func(t *testing.T, base string) (string, string) {
			mkdirOwned(t, filepath.Join(base, "theirs"), 0o755, nobody)
			d := filepath.Join(base, "theirs", "spool")
			mkdirOwned(t, d, 0o755, 0)
			return d, d
		}, fail.Permission, "belongs to uid 65534"},
		{"through a link into a folder of nobody", func(t *testing.T, base string) (string, string) {
			mkdirOwned(t, filepath.Join(base, "theirs"), 0o755, nobody)
			mkdirOwned(t, filepath.Join(base, "theirs", "real"), 0o755, 0)
			if err := os.Symlink("theirs/real", filepath.Join(base, "link")); err != nil {
				t.Fatal(err)
			}
			d := filepath.Join(base, "theirs", "real", "spool")
			mkdirOwned(t, d, 0o755, 0)
			return filepath.Join(base, "link", "spool"), d
		}, fail.Permission, "belongs to uid 65534"},
		{"through a link of nobody's in a sticky folder", func(t *testing.T, base string) (string, string) {
			mkdirOwned(t, filepath.Join(base, "tmp"), os.ModeSticky|0o777, 0)
			mkdirOwned(t, filepath.Join(base, "real"), 0o755, 0)
			plant(t, filepath.Join(base, "tmp"), "x", filepath.Join(base, "real"), nobody)
			d := filepath.Join(base, "real", "spool")
			mkdirOwned(t, d, 0o755, 0)
			return filepath.Join(base, "tmp", "x", "spool"), d
		}, fail.Permission, "belongs to uid 65534, who could point it elsewhere"},
		{"relative", func(t *testing.T, base string) (string, string) {
			t.Chdir(base)
			d := filepath.Join(base, "spool")
			mkdirOwned(t, d, 0o755, 0)
			return "spool", d
		}, fail.Usage, "absolute"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVictim(t, []byte("root:secret\n"), 0o600)
			dir, real := c.spool(t, t.TempDir())
			owner := int(statOf(t, real).Uid)
			for _, name := range []string{lockFile, writeLock, statusFile, WorkerLog} {
				plant(t, real, name, v.path, owner)
			}
			before := listing(real)

			s, err := Open(dir, 10, 1<<20, nil)
			refused(t, "Open", err, c.kind, c.says)
			if err == nil { // as a worker would go on
				if unlock, _, err := s.TryLock(); err == nil && unlock != nil {
					unlock()
				}
				s.SetStatus("ok")
			}
			f, err := OpenLog(dir)
			refused(t, "OpenLog", err, c.kind, c.says)
			if err == nil {
				f.WriteString("log line\n")
				f.Close()
			}
			v.check(t)
			if after := listing(real); !slices.Equal(after, before) {
				t.Errorf("the refused spool changed:\n%s\nwas\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}
}

func statOf(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

func TestOpenCreatesMissingFolders(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	// A link above the spool is followed: its folder is checked first.
	dir := filepath.Join(base, "link", "etc", "opt", "cfgsnap")
	s, _ := openSpool(t, dir, 10, 1<<20)
	if s.Dir() != dir {
		t.Errorf("Dir() = %s, want %s", s.Dir(), dir)
	}
	for _, p := range []string{"real/etc", "real/etc/opt", "real/etc/opt/cfgsnap"} {
		fi, err := os.Lstat(filepath.Join(base, p))
		if err != nil || fi.Mode() != fs.ModeDir|0o755 || int(statOf(t, filepath.Join(base, p)).Uid) != os.Geteuid() {
			t.Errorf("%s: %v, %v; want a folder of ours, mode 0755", p, fi.Mode(), err)
		}
	}
}

func TestPlantedLinksNotFollowed(t *testing.T) {
	secret := []byte("root:secret\n")
	for _, c := range []struct {
		name string
		v    func(t *testing.T) victim
		// run plants what it needs in the spool dir (opened as s), does what
		// cfgsnap would, and checks the outcome; the victim is checked after.
		run func(t *testing.T, dir string, s *Spool, v victim)
	}{
		{"lock", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, lockFile, v.path, 0)
			_, _, err := s.TryLock()
			refused(t, "TryLock", err, fail.Permission, "symbolic link")
			_, _, err = s.TakeOver(ctxTimeout(t, time.Second))
			refused(t, "TakeOver", err, fail.Permission, "symbolic link")
		}},
		{"lock as a hard link", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			os.Remove(filepath.Join(dir, lockFile))
			if err := os.Link(v.path, filepath.Join(dir, lockFile)); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.TryLock()
			refused(t, "TryLock", err, fail.Permission, "link count 2")
		}},
		{"write.lock", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, writeLock, v.path, 0)
			_, err := Open(dir, 10, 1<<20, nil)
			refused(t, "Open", err, fail.Permission, "symbolic link")
			refused(t, "AddJob", s.AddJob([]byte(`{}`)), fail.Permission, "symbolic link")
		}},
		{"status", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, statusFile, v.path, 0)
			st, err := s.Status()
			refused(t, "Status", err, fail.Permission, "symbolic link")
			if strings.Contains(st+fmt.Sprint(err), "secret") {
				t.Errorf("Status showed the victim: %q, %v", st, err)
			}
			if err := s.SetStatus("ok"); err != nil {
				t.Fatal(err)
			}
			if st, err := s.Status(); st != "ok" || err != nil {
				t.Errorf("Status after SetStatus replaced the link: %q, %v", st, err)
			}
		}},
		{"captured", func(t *testing.T) victim {
			return newVictim(t, []byte("2025-09-20T11:02:08Z\n"), 0o600)
		}, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, capturedFile, v.path, 0)
			_, err := s.Captured()
			refused(t, "Captured", err, fail.Permission, "symbolic link")
			m := snapshot.Mark{Commit: 7, LastChange: time.Date(2025, 9, 21, 0, 0, 0, 0, time.UTC)}
			if err := s.SetCaptured(m); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Captured(); got.Commit != 7 || err != nil {
				t.Errorf("Captured after SetCaptured replaced the link: %+v, %v", got, err)
			}
		}},
		{"pending", func(t *testing.T) victim {
			// What the script would read, so that a followed link goes unnoticed.
			return newVictim(t, []byte("0\n"), 0o644)
		}, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, pendingFile, v.path, 0)
			openSpool(t, dir, 10, 1<<20)
			if fi, err := os.Lstat(filepath.Join(dir, pendingFile)); err != nil || fi.Mode() != 0o644 || readPending(t, dir) != "0\n" {
				t.Errorf("pending after Open: %v, %v; want a regular file 0644 holding 0", fi.Mode(), err)
			}
		}},
		{"previous.json", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, previousFile, v.path, 0)
			f, err := s.Previous()
			refused(t, "Previous", err, fail.Permission, "symbolic link")
			if err == nil {
				f.Close()
			}
			if err := s.KeepAsPrevious(commit(t, s, "n", "config", "file:///a")); err != nil {
				t.Fatal(err)
			}
			f, err = s.Previous()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if b, _ := io.ReadAll(f); string(b) != "config" {
				t.Errorf("Previous after KeepAsPrevious replaced the link: %q", b)
			}
		}},
		{"worker.log", func(t *testing.T) victim {
			// Over the bound: the log is cut back when it opens.
			return newVictim(t, bytes.Repeat(secret, MaxLog/len(secret)+1), 0o600)
		}, func(t *testing.T, dir string, s *Spool, v victim) {
			plant(t, dir, WorkerLog, v.path, 0)
			f, err := OpenLog(dir)
			refused(t, "OpenLog", err, fail.Permission, "symbolic link")
			if err == nil {
				f.WriteString("log line\n")
				f.Close()
			}
		}},
		{"jobs", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			replaceByLink(t, dir, jobsDir, filepath.Dir(v.path))
			_, err := Open(dir, 10, 1<<20, nil)
			refused(t, "Open", err, fail.Permission, "not a folder but a link")
			refused(t, "AddJob", s.AddJob([]byte(`{}`)), fail.Permission, "not a folder but a link")
		}},
		{"snapshots", nil, func(t *testing.T, dir string, s *Spool, v victim) {
			replaceByLink(t, dir, snapsDir, filepath.Dir(v.path))
			_, err := Open(dir, 10, 1<<20, nil)
			refused(t, "Open", err, fail.Permission, "not a folder but a link")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVictim(t, secret, 0o600)
			if c.v != nil {
				v = c.v(t)
			}
			victimDir := filepath.Dir(v.path)
			os.Chmod(victimDir, 0o755)
			before := listing(victimDir)
			dir := t.TempDir()
			s, _ := openSpool(t, dir, 10, 1<<20)
			c.run(t, dir, s, v)
			v.check(t)
			if after := listing(victimDir); !slices.Equal(after, before) {
				t.Errorf("the victim's folder changed:\n%s\nwas\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
		})
	}
}

// replaceByLink replaces folder dir/name by a link to target.
func replaceByLink(t *testing.T, dir, name, target string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	plant(t, dir, name, target, 0)
}

func TestOpenLog(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	openSpool(t, dir, 10, 1<<20)
	p := filepath.Join(dir, WorkerLog)
	appendLog := func(s string) error {
		f, err := OpenLog(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString(s)
		return err
	}
	if err := appendLog("one\n"); err != nil {
		t.Fatal(err)
	}
	if err := appendLog("two\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one\ntwo\n" {
		t.Errorf("log %q, want both lines", b)
	}
	if fi, _ := os.Lstat(p); fi.Mode() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode())
	}
	// Over the bound, it starts again.
	if err := appendLog(strings.Repeat("x", MaxLog)); err != nil {
		t.Fatal(err)
	}
	if err := appendLog("three\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three\n" {
		t.Errorf("log of %d bytes after passing %d, want only the new line", len(b), MaxLog)
	}
	// A log that someone else owns is not ours to write.
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	refused(t, "OpenLog of a log of nobody's", appendLog("four\n"), fail.Permission, "not a regular file of uid 0")
	if b, _ := os.ReadFile(p); string(b) != "three\n" {
		t.Errorf("log of nobody's now %q", b)
	}
}
