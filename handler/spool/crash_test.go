package spool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Bounds of the crashing spool: small, so that drops happen all the time.
const (
	crashMaxCount = 6
	crashMaxBytes = 160 << 10
)

var crashTargets = []string{"sftp://backup@10.0.0.5/srl", "file:///var/backup"}

// crashChild is a worker that never stops: it queues jobs, streams snapshots
// in uneven chunks, commits, aborts, delivers, removes jobs and reports, until
// the parent kills it. Each snapshot's comment holds a number that grows
// across all children, so the parent can check the order of Commit.
func crashChild(dir, trial string) {
	n, _ := strconv.Atoi(trial)
	die := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	s, err := Open(dir, crashMaxCount, crashMaxBytes, nil)
	if err != nil {
		die(err)
	}
	if _, err := s.Lock(context.Background()); err != nil {
		die(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	fmt.Println("ready")
	for i := 0; ; i++ {
		seq := n*1_000_000 + i
		ev, _ := json.Marshal(map[string]any{"seq": seq, "paths": []any{map[string]string{
			"path": "system configuration last-change", "value": "2025-09-20T11:02:08.456Z"}},
			"pad": string(make([]byte, rng.IntN(2048)))})
		if err := s.AddJob(ev); err != nil {
			die(err)
		}
		w, err := s.Create()
		if err != nil {
			die(err)
		}
		size := rng.IntN(48 << 10)
		for size > 0 {
			chunk := make([]byte, min(size, 1+rng.IntN(8<<10)))
			for j := range chunk {
				chunk[j] = byte(rng.Uint32())
			}
			if _, err := w.Write(chunk); err != nil {
				die(err)
			}
			size -= len(chunk)
		}
		if rng.IntN(8) == 0 {
			w.Abort()
			continue
		}
		rec := snapshot.Record{Host: "crash", Comment: strconv.Itoa(seq), Name: fmt.Sprintf("crash/%d.json", seq), Taken: time.Now()}
		if _, err := w.Commit(rec, crashTargets); err != nil {
			die(err)
		}
		es, err := s.Pending()
		if err != nil {
			die(err)
		}
		for _, e := range es {
			if rng.IntN(3) == 0 {
				if err := s.Delivered(e, crashTargets[rng.IntN(2)], ""); err != nil {
					die(err)
				}
			}
		}
		if jobs, err := s.Jobs(); err != nil {
			die(err)
		} else if len(jobs) > 8 {
			if err := s.RemoveJobs(jobs[:len(jobs)-4]); err != nil {
				die(err)
			}
		}
		if err := s.SetStatus(fmt.Sprintf("trial %d step %d", n, i)); err != nil {
			die(err)
		}
	}
}

// TestCrashAnyInstant kills a working spool with SIGKILL at random moments,
// many times over the same folder, and after each kill checks what the next
// run relies on: Open leaves no temporary file, every entry's content matches
// its recorded size and sha256, entries are in commit order and within
// bounds, every job is whole, the pending file counts the entries, and the
// dead worker's lock is free.
func TestCrashAnyInstant(t *testing.T) {
	trials := 100
	if testing.Short() {
		trials = 20
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	var midWrite, entriesSeen, jobsSeen int
	seen := map[string]bool{}
	start := time.Now()
	// The kill lands within window after the child is ready. A loaded machine
	// (CI, -race) gets less done in that time: the window widens while kills
	// keep finding no new entry, so the trials still interrupt real work.
	window := 30 * time.Millisecond
	for trial := range trials {
		before := entriesSeen
		cmd := child(t, "crash", dir, fmt.Sprintf("%s=%d", trialEnv, trial))
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("trial %d: child ended by itself (%v), not by the kill: %s", trial, err, cmd.Stderr)
		}
		if len(leftovers(t, dir)) > 0 {
			midWrite++
		}

		s, _ := openSpool(t, dir, crashMaxCount, crashMaxBytes)
		if l := leftovers(t, dir); len(l) > 0 {
			t.Fatalf("trial %d: Open left %v", trial, l)
		}
		unlock, ok, err := s.TryLock()
		if !ok || err != nil {
			t.Fatalf("trial %d: lock of the killed worker not free: %v %v", trial, ok, err)
		}
		unlock()

		es := pending(t, s)
		var total int64
		last := -1
		for _, e := range es {
			checkContent(t, s, e)
			total += e.Record.Size
			seq, err := strconv.Atoi(e.Record.Comment)
			if err != nil || seq <= last {
				t.Fatalf("trial %d: entry %s (commit %s) after commit %d: not in commit order", trial, e.ID, e.Record.Comment, last)
			}
			last = seq
			if len(e.Targets) == 0 || len(e.Targets) > 2 {
				t.Fatalf("trial %d: entry %s has targets %q", trial, e.ID, e.Targets)
			}
			if !seen["e"+e.ID] {
				seen["e"+e.ID] = true
				entriesSeen++
			}
		}
		if len(es) > crashMaxCount || total > crashMaxBytes {
			t.Fatalf("trial %d: %d entries, %d bytes: over the bounds %d, %d", trial, len(es), total, crashMaxCount, crashMaxBytes)
		}
		files, _ := os.ReadDir(dir + "/snapshots")
		if len(files) != 2*len(es) {
			t.Fatalf("trial %d: %d files in snapshots for %d entries", trial, len(files), len(es))
		}
		if p := readPending(t, dir); p != strconv.Itoa(len(es))+"\n" {
			t.Fatalf("trial %d: pending file %q, %d entries", trial, p, len(es))
		}

		jobs, err := s.Jobs()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			var ev struct{ Seq *int }
			if err := json.Unmarshal(j.Event, &ev); err != nil || ev.Seq == nil {
				t.Fatalf("trial %d: job %s is damaged (%v): %.80q", trial, j.ID, err, j.Event)
			}
			if !seen["j"+j.ID] {
				seen["j"+j.ID] = true
				jobsSeen++
			}
		}
		if entriesSeen == before && window < time.Second {
			window *= 2
		}
	}
	t.Logf("%d kills in %v: %d left a write half done, %d entries and %d jobs checked (kill window up to %v)",
		trials, time.Since(start).Round(time.Millisecond), midWrite, entriesSeen, jobsSeen, window)
	// Kills that all land before the first write would prove nothing.
	if midWrite == 0 || entriesSeen < trials/2 {
		t.Errorf("only %d kills interrupted a write and %d entries were made: the children did too little work", midWrite, entriesSeen)
	}
}

// checkContent verifies an entry's configuration against its record.
func checkContent(t *testing.T, s *Spool, e Entry) {
	t.Helper()
	f, err := s.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != e.Record.Size || hex.EncodeToString(h.Sum(nil)) != e.Record.SHA256 {
		t.Fatalf("entry %s: %d bytes with sha256 %x, record says %d bytes %s", e.ID, n, h.Sum(nil), e.Record.Size, e.Record.SHA256)
	}
}
