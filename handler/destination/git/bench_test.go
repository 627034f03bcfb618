package git_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// benchSwitches is how many switches share the benchmark's repository: each
// has its file, the tip's tree holds them all, and a depth-1 fetch brings them.
const benchSwitches = 20

// BenchmarkGitHistory saves one snapshot of a real 104 KiB configuration to a
// repository whose branch already holds 10, 1,000 or 10,000 commits of 20
// switches' configurations, over smart HTTP (git-http-backend) and over SSH
// (OpenSSH, git-upload-pack / git-receive-pack). Time and memory should not
// depend on the history: a Save fetches the tip at depth 1 and keeps nothing.
// peak-heap-MB is the most heap that held objects while Saves ran (sampled).
func BenchmarkGitHistory(b *testing.B) {
	testenv.NeedCommand(b, "git")
	base := testenv.ReadFixture(b, "srl-config-dcf-leaf11.json")
	if !bytes.Contains(base, []byte(`"comment": ""`)) {
		b.Fatal("the fixture has no empty comment to vary")
	}
	s := sshd.New(b, sshd.Options{})
	root := b.TempDir()
	h := httpServer(b, root, httpOptions{})
	for _, commits := range []int{10, 1_000, 10_000} {
		name := fmt.Sprintf("h%d.git", commits)
		r := newRepo(b, root, name)
		start := time.Now()
		history(b, r, base, commits)
		b.Logf("%d commits of history built in %v", commits, time.Since(start).Round(time.Millisecond))
		for _, via := range []struct {
			name, target string
			c            *option.Config
		}{
			{"http", h.URL + "/" + name, options(nil)},
			{"ssh", s.URL("git+ssh", r.dir), options(s)},
		} {
			b.Run(fmt.Sprintf("%s/commits=%d", via.name, commits), func(b *testing.B) {
				d := newDest(b, via.target, via.c, nil, nil)
				i := 0
				b.ReportAllocs()
				peak := sampleHeap()
				for b.Loop() {
					i++
					config := variant(base, i%benchSwitches, commits+i)
					rec := record(config)
					rec.Host = fmt.Sprintf("leaf%d", i%benchSwitches)
					if err := d.Save(context.Background(), rec, bytes.NewReader(config)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// variant is base with the switch and version in its first comment, so each
// one is a new blob that differs from the last by one line, as a commit's is.
func variant(base []byte, sw, version int) []byte {
	return bytes.Replace(base, []byte(`"comment": ""`), fmt.Appendf(nil, `"comment": "leaf%d v%d"`, sw, version), 1)
}

// history gives r's branch main n commits, each of which changes one of the
// switches' files, with git fast-import: seconds for 10,000 commits, where
// pushing them one by one would take hours.
func history(b *testing.B, r *repo, base []byte, n int) {
	cmd := exec.Command("git", "--git-dir="+r.dir, "fast-import", "--quiet")
	cmd.Env = gitEnv()
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(in, 1<<20)
	for i := range n {
		sw := i % benchSwitches
		msg := fmt.Sprintf("leaf%d: commit %d by admin", sw, i)
		content := variant(base, sw, i)
		fmt.Fprintf(w, "commit refs/heads/main\nauthor admin <admin@leaf%d> %d +0000\ncommitter cfgsnap <cfgsnap@leaf%d> %d +0000\ndata %d\n%s\n",
			sw, 1_700_000_000+i, sw, 1_700_000_000+i, len(msg), msg)
		fmt.Fprintf(w, "M 100644 inline leaf%d.json\ndata %d\n", sw, len(content))
		w.Write(content)
		w.WriteString("\n")
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("git fast-import: %v: %s", err, stderr.String())
	}
	if got := r.count("main"); got != n {
		b.Fatalf("history has %d commits, want %d", got, n)
	}
}

// sampleHeap starts sampling the bytes of heap that hold objects (live or not
// yet collected) every millisecond, after a GC; the function it returns stops
// and gives the highest.
func sampleHeap() func() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}
