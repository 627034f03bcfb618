package spool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The test binary doubles as the other process of multi-process tests: with
// childEnv set, TestMain runs the named role instead of the tests.
const (
	childEnv = "CFGSNAP_SPOOL_TEST_CHILD" // crash or hold
	dirEnv   = "CFGSNAP_SPOOL_TEST_DIR"
	trialEnv = "CFGSNAP_SPOOL_TEST_TRIAL"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "crash":
		crashChild(os.Getenv(dirEnv), os.Getenv(trialEnv))
	case "hold":
		holdChild(os.Getenv(dirEnv), false)
	case "hold-dying":
		holdChild(os.Getenv(dirEnv), true)
	case "":
		os.Exit(m.Run())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// child starts the test binary in a role and waits until it says "ready".
func child(t *testing.T, role, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+role, dirEnv+"="+dir)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child %s did not get ready (%q, %v): %s", role, line, err, stderr.String())
	}
	return cmd
}

// holdChild takes the worker lock and keeps it until killed. With dying, a
// process of its own shares the lock for half a second more, as the kernel
// does while it tears down a killed holder.
func holdChild(dir string, dying bool) {
	s, err := Open(dir, 10, 1<<20, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	// The unlock function is dropped on purpose: the lock must not depend on
	// the caller keeping anything but the Spool alive, so collect garbage
	// while holding it.
	_, ok, err := s.TryLock()
	if !ok || err != nil {
		fmt.Fprintln(os.Stderr, "lock not taken:", ok, err)
		os.Exit(3)
	}
	if dying {
		s.heldMu.Lock()
		var files []*os.File
		for f := range s.held {
			files = append(files, f)
		}
		s.heldMu.Unlock()
		sleep := exec.Command("sleep", "0.5")
		sleep.ExtraFiles = files
		if err := sleep.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
	}
	fmt.Println("ready")
	for s.Dir() != "" {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	os.Exit(0)
}

func openSpool(t *testing.T, dir string, maxCount int, maxBytes int64) (*Spool, *testenv.Logs) {
	t.Helper()
	l := &testenv.Logs{}
	s, err := Open(dir, maxCount, maxBytes, l.Logf)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, l
}

// commit spools content as a snapshot named name.
func commit(t *testing.T, s *Spool, name, content string, targets ...string) Entry {
	t.Helper()
	w, err := s.Create()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	e, err := w.Commit(snapshot.Record{Host: "leaf11", Name: name, Taken: time.Now()}, targets)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return e
}

func pending(t *testing.T, s *Spool) []Entry {
	t.Helper()
	es, err := s.Pending()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func names(es []Entry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Record.Name)
	}
	return n
}

// pendingFile returns what the event-handler script reads.
func readPending(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pending"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers lists temporary files anywhere in the spool.
func leftovers(t testing.TB, dir string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
