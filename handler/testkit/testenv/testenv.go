// Package testenv lets tests demand their real peers: outside CI a missing peer
// skips the test; in CI (CI=true) it fails it, so a green CI run means every
// test ran against what it claims to.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need skips the test (fails it in CI) unless ok; why names what is missing.
func Need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("CI=true but %s", why)
	}
	t.Skipf("skipped: %s", why)
}

// NeedRoot needs uid 0 (network namespaces, sshd).
func NeedRoot(t testing.TB) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "the test needs root")
}

// NeedCommand needs an executable, by name or path, and returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, err == nil, name+" is not installed (make test-deps installs it)")
	return p
}

// RepoRoot is the folder holding go.mod, above the test's working folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// Fixture returns the path of a real SR Linux sample in ../shared/fixtures/srlinux,
// beside the repository, as CI and every developer checkout have it.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "fixtures", "srlinux", name)
	_, err := os.Stat(p)
	Need(t, err == nil, "fixture "+name+" is not in ../shared/fixtures/srlinux")
	return p
}

// ReadFixture returns the content of a fixture.
func ReadFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RerunAsNobody runs the calling test again, in a copy of the test binary, as
// uid and gid 65534, and fails t if it fails there. Tests of what an
// unprivileged user meets (an unreadable file, a refused namespace) call it
// when they run as root, to which every file is readable:
//
//	if testenv.RerunAsNobody(t) {
//		return
//	}
//
// It returns false when not root: the test then runs its body itself.
func RerunAsNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	// The go test cache folder is root's alone: copy the binary where nobody
	// can run it.
	dir, err := os.MkdirTemp("", "cfgsnap-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "test")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as uid 65534: %v\n%s", t.Name(), err, out)
	}
	return true
}

// Workers lists the running `cfgsnap work` processes of binary bin whose spool
// is spool: the detached workers a test's handle runs started, which the test
// waits for or kills.
func Workers(bin, spool string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[0] != bin || args[1] != "work" {
			continue
		}
		for i := 2; i+1 < len(args); i++ {
			if args[i] == "--spool-dir" && args[i+1] == spool {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Logs records what code under test logs, safe for concurrent use: pass its
// Logf where a logf is wanted.
type Logs struct {
	mu    sync.Mutex
	lines []string
}

// Logf records one line.
func (l *Logs) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// Lines is a copy of every line recorded so far.
func (l *Logs) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// String is every line recorded, one per line.
func (l *Logs) String() string { return strings.Join(l.Lines(), "\n") }

// Nobody is the uid (and gid) of the other user that tests act as or plant
// files for: what a switch's or a server's other users may do.
const Nobody = 65534

// MkdirAs makes folder p with mode, owned by uid (root only).
func MkdirAs(t testing.TB, p string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	chownAs(t, p, mode, uid)
}

// WriteFileAs writes content to file p with mode, owned by uid (root only).
func WriteFileAs(t testing.TB, p, content string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	chownAs(t, p, mode, uid)
}

// chownAs gives p to uid and sets its mode, which the umask may have cut.
func chownAs(t testing.TB, p string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}
