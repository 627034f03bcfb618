package git_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/githistory"
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
	s := sshd.New(b, sshd.Options{})
	root := b.TempDir()
	h := httpServer(b, root, httpOptions{})
	for _, commits := range []int{10, 1_000, 10_000} {
		name := fmt.Sprintf("h%d.git", commits)
		r := newRepo(b, root, name)
		start := time.Now()
		githistory.Build(b, r.dir, base, benchSwitches, commits)
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
					config := githistory.Variant(base, i%benchSwitches, commits+i)
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
