package bench_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/githistory"
)

var (
	reportPath = flag.String("report", "", "write the markdown report to this file (make bench: lab/BENCHMARKS.md); without it TestBenchReport skips")
	goBenchOut = flag.String("gobench", "", "output of go test -bench ./... from the same run, for BenchmarkHandle and BenchmarkGitHistory; without it they are run here")
	binPath    = flag.String("bin", "", "the cfgsnap binary to measure (make bench: bin/cfgsnap); without it one is built as make build does")
)

// Sample sizes. The whole report takes about two and a half minutes on two cores.
const (
	commits    = 100 // handle and commit-to-stored, one commit at a time; and the scp anchor
	burst      = 100 // events in the burst
	burstEvery = 10 * time.Millisecond
	starts     = 50 // start-up runs of each program
	bigRuns    = 3  // 100 MiB transfers of each program
	gitSnaps   = 20 // git snapshots measured, after the first
	histRuns   = 9  // git snapshots measured at each length of history, after the first
	bigSize    = 100 << 20
	smallSize  = 1 << 20
	runLimit   = 10 * time.Second // the event handler kills run-script after about this
)

// row is one line of the table. ratio is cfgsnap / anchor; NaN shows as —.
type row struct {
	figure, cfgsnap, anchor string
	ratio                   float64
}

func TestBenchReport(t *testing.T) {
	if *reportPath == "" {
		t.Skip("make bench runs this; by hand: go test -v -run TestBenchReport ./lab/bench -args -report FILE")
	}
	start := time.Now()
	l := newLab(t, *binPath)
	g := l.goBenchmarks()

	var rows []row
	for _, section := range []struct {
		name string
		f    func() []row
	}{
		{"binary and start-up", l.startup},
		{"handle and commit-to-stored", func() []row { return l.commitToStored(g) }},
		{"capture", l.capture},
		{"burst", l.burst},
		{"100 MiB", l.big},
		{"git", func() []row { return l.git(g) }},
		{"redaction", func() []row { return redaction(l.t, g) }},
	} {
		t0 := time.Now()
		rows = append(rows, section.f()...)
		t.Logf("%s: measured in %v", section.name, time.Since(t0).Round(100*time.Millisecond))
	}
	md := l.render(rows, g, time.Since(start))
	fmt.Print("\n" + md)
	if err := os.WriteFile(*reportPath, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", *reportPath)
}

// goBenchmarks reads the Go benchmarks' output that make bench saved, or runs
// the two benchmarks the table needs.
func (l *lab) goBenchmarks() goBench {
	if *goBenchOut != "" {
		b, err := os.ReadFile(*goBenchOut)
		if err != nil {
			l.t.Fatal(err)
		}
		return parseGoBench(b)
	}
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkHandle$|BenchmarkGitHistory/ssh", "-benchmem",
		"./handler", "./handler/destination/git")
	cmd.Dir = l.repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("go test -bench: %v\n%s", err, out)
	}
	return parseGoBench(out)
}

// startup: the binary's size, how long it takes to start and exit, and
// its resident size when it does nothing else.
func (l *lab) startup() []row {
	st, err := os.Stat(l.bin)
	if err != nil {
		l.t.Fatal(err)
	}
	sshSize := l.sshWithLibs()
	var own, tru, ssh []proc
	for range starts {
		own = append(own, run(l.t, l.bin, "version"))
		tru = append(tru, run(l.t, "/bin/true"))
		ssh = append(ssh, run(l.t, "ssh", "-V"))
	}
	var ownRSS, sshRSS []proc
	for range 5 {
		ownRSS = append(ownRSS, l.measure(l.bin, "version"))
		sshRSS = append(sshRSS, l.measure("ssh", "-V"))
	}
	return []row{
		{"binary size: bin/cfgsnap (static, stripped; nothing else to install)", mib(st.Size()),
			"OpenSSH ssh + the shared libraries it loads (ldd): " + mib(sshSize), ratio(st.Size(), sshSize)},
		{fmt.Sprintf("start-up: `cfgsnap version`, wall p50 of %d", starts), dur(p50(own)),
			"`ssh -V`: " + dur(p50(ssh)), ratio(p50(own), p50(ssh))},
		{fmt.Sprintf("start-up: `cfgsnap version`, wall p50 of %d", starts), dur(p50(own)),
			"`/bin/true`: " + dur(p50(tru)), ratio(p50(own), p50(tru))},
		{"start-up: `cfgsnap version`, peak RSS", mib(maxRSS(ownRSS)),
			"`ssh -V`: " + mib(maxRSS(sshRSS)), ratio(maxRSS(ownRSS), maxRSS(sshRSS))},
	}
}

// sshWithLibs is the size of ssh and every shared library ldd lists for it.
func (l *lab) sshWithLibs() int64 {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		l.t.Fatal(err)
	}
	out, err := exec.Command("ldd", ssh).Output()
	if err != nil {
		l.t.Fatalf("ldd %s: %v", ssh, err)
	}
	files := []string{ssh}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			l.t.Fatal(err)
		}
		total += st.Size()
	}
	return total
}

// commitToStored: one commit at a time, as run-script runs handle; how long
// handle takes to return, and how long until the snapshot is on the server.
// Between commits the anchor: Nokia's scp of the same file.
func (l *lab) commitToStored(g goBench) []row {
	dir := l.t.TempDir()
	cfgPath, spool := filepath.Join(dir, "config.json"), l.spool(dir)
	srv, anchorDir := filepath.Join(dir, "srv"), filepath.Join(dir, "nokia")
	if err := os.MkdirAll(anchorDir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	cfg := l.config(0)
	writeAtomic(l.t, cfgPath, cfg)
	opts, root := l.instance(l.srv.URL("sftp", srv)), l.rootFlags(cfgPath, spool)
	var handles, scps []proc
	var stored []time.Duration
	var last string
	for i := range commits {
		lc := l.clk.next()
		line := l.handleLine(lc, opts, root)
		t0 := time.Now()
		handles = append(handles, l.handle(line))
		last = l.waitLanded(srv, spool, lc)
		stored = append(stored, time.Since(t0))
		l.waitIdle(spool)
		scps = append(scps, run(l.t, l.nokiaSCP(cfgPath, filepath.Join(anchorDir, fmt.Sprintf("config-%d.json", i)))...))
	}
	if got, err := os.ReadFile(last); err != nil || !bytes.Equal(got, cfg) {
		l.t.Errorf("%s on the server is not byte for byte the configuration (%d bytes, %v)", last, len(got), err)
	}
	h, a := walls(handles), walls(scps)
	size := mib(int64(len(cfg)))
	inProc := time.Duration(g.value(l.t, "BenchmarkHandle", "ns/op"))
	return []row{
		{fmt.Sprintf("`cfgsnap handle` returns, p50 of %d (a process, run by /bin/sh -c as run-script runs it)", commits),
			dur(percentile(h, 50)), "run-script limit: " + dur(runLimit), ratio(percentile(h, 50), runLimit)},
		{fmt.Sprintf("`cfgsnap handle` returns, p99 of %d", commits),
			dur(percentile(h, 99)), "run-script limit: " + dur(runLimit), ratio(percentile(h, 99), runLimit)},
		{"`handler.Handle` in-process, without process start (BenchmarkHandle)",
			dur(inProc), "run-script limit: " + dur(runLimit), ratio(inProc, runLimit)},
		{"event handler blocked per commit, p50 (cfgsnap: handle; Nokia's example: the whole scp)",
			dur(percentile(h, 50)), "Nokia's scp: " + dur(percentile(a, 50)), ratio(percentile(h, 50), percentile(a, 50))},
		{fmt.Sprintf("commit-to-stored, the real %s config over SFTP, p50 of %d (handle starts → file on the server)", size, commits),
			dur(percentile(stored, 50)),
			"Nokia's `ip netns exec srbase-mgmt scp -o StrictHostKeyChecking=no config.json …`: " + dur(percentile(a, 50)),
			ratio(percentile(stored, 50), percentile(a, 50))},
		{fmt.Sprintf("commit-to-stored, %s, p99 of %d", size, commits),
			dur(percentile(stored, 99)), "Nokia's scp, p99: " + dur(percentile(a, 99)), ratio(percentile(stored, 99), percentile(a, 99))},
	}
}

// burst: 100 commits within about a second, each with its own last-change and
// configuration; the worker coalesces them. How many uploads, and did the
// last state land?
func (l *lab) burst() []row {
	dir := l.t.TempDir()
	cfgPath, spool, srv := filepath.Join(dir, "config.json"), l.spool(dir), filepath.Join(dir, "srv")
	opts, root := l.instance(l.srv.URL("sftp", srv)), l.rootFlags(cfgPath, spool)
	configs := make([][]byte, burst)
	for i := range configs {
		configs[i] = l.config(i + 1)
	}
	// Each handle starts on time, whether or not the one before has returned,
	// so the burst lasts a second however long handle takes.
	handles := make([]proc, burst)
	errs := make([]error, burst)
	var wg sync.WaitGroup
	var lc time.Time
	start := time.Now()
	for i := range burst {
		time.Sleep(time.Until(start.Add(time.Duration(i) * burstEvery)))
		writeAtomic(l.t, cfgPath, configs[i]) // the commit changes the configuration...
		lc = l.clk.next()                     // ...then last-change, which fires the event
		line := l.handleLine(lc, opts, root)
		wg.Go(func() { handles[i], errs[i] = handle(line) })
	}
	wg.Wait()
	span := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		l.t.Fatal(err)
	}
	l.waitIdle(spool)
	files := snapshots(srv)
	lastOK := "NO"
	if n := len(files); n > 0 && strings.Contains(filepath.Base(files[n-1]), lc.Format(nameTime)) {
		got, err := os.ReadFile(files[n-1])
		if err == nil && bytes.Equal(got, configs[burst-1]) {
			lastOK = fmt.Sprintf("yes: the newest file is named after event %d's last-change and holds its configuration byte for byte", burst)
		}
	}
	if lastOK == "NO" {
		l.t.Errorf("burst: the last state did not land; landed %q\n%s", files, workerLog(spool))
	}
	h := walls(handles)
	return []row{
		{fmt.Sprintf("burst: %d events, one every %s, all handled in %s: uploads", burst, dur(burstEvery), dur(span)),
			strconv.Itoa(len(files)), fmt.Sprintf("%d events", burst), float64(len(files)) / burst},
		{"burst: the last state landed", lastOK, fmt.Sprintf("the configuration after event %d", burst), math.NaN()},
		{fmt.Sprintf("burst: `cfgsnap handle` returns, p99 of %d (handles and a worker at once)", burst),
			dur(percentile(h, 99)), "run-script limit: " + dur(runLimit), ratio(percentile(h, 99), runLimit)},
	}
}

// savedIn is how long the SFTP delivery took, from the --debug log line of
// handler/destination's logging wrapper.
var savedIn = regexp.MustCompile(`: saved \S+ \(\d+ bytes\) in (\S+)`)

// big: a 100 MiB configuration by hand (cfgsnap snapshot: capture into the
// spool, then SFTP), against OpenSSH scp and sftp of the same file, and the
// peak RSS against the same snapshot of a 1 MiB configuration; then the same
// snapshots with encrypt-to, against themselves without it.
func (l *lab) big() []row {
	dir := l.t.TempDir()
	type sized struct {
		path string
		size int64
		sum  [32]byte
	}
	gen := func(name string, size int) sized {
		b := l.bigConfig(size)
		p := filepath.Join(dir, name)
		writeAtomic(l.t, p, b)
		return sized{p, int64(len(b)), sha256.Sum256(b)}
	}
	bigCfg, small := gen("big.json", bigSize), gen("small.json", smallSize)
	key, recipient := sshKeygen(l.t, dir)
	// Each size, encrypted or not, has its own spool; the first snapshot of
	// each is not measured, so every measured one finds a previous snapshot
	// in the spool, as on a switch (the change summary compares them up to
	// 16 MiB).
	var delivered []time.Duration
	snapshot := func(c sized, encrypted bool, i int) proc {
		srv, spool, more := filepath.Join(dir, "srv-"+filepath.Base(c.path)), c.path+".spool", []string{}
		if encrypted {
			srv, spool, more = srv+"-age", spool+"-age", []string{"--encrypt-to", recipient}
		}
		p := l.measure(append([]string{l.bin, "snapshot", "--debug"},
			l.flags(l.srv.URL("sftp", srv), c.path, spool, append(more, "--spool-max-bytes", "1GiB", "--comment", fmt.Sprintf("run %d", i))...)...)...)
		files := snapshots(srv)
		if len(files) != 1 || encrypted != strings.HasSuffix(files[0], ".json.age") {
			l.t.Fatalf("snapshot of %s (encrypted: %v): %d files on the server, want 1, NAME.json.age if encrypted: %q", c.path, encrypted, len(files), files)
		}
		switch {
		case i > 0:
		case encrypted && ageSum(l.t, key, files[0]) != c.sum:
			l.t.Errorf("%s on the server does not decrypt (age -d) to %s", files[0], c.path)
		case !encrypted && sha256File(l.t, files[0]) != c.sum:
			l.t.Errorf("%s on the server differs from %s", files[0], c.path)
		}
		os.Remove(files[0])
		if m := savedIn.FindSubmatch(p.stderr); m != nil && c == bigCfg && !encrypted && i > 0 {
			if d, err := time.ParseDuration(string(m[1])); err == nil {
				delivered = append(delivered, d)
			}
		}
		return p
	}
	var own, ownSmall, enc, encSmall, scps, sftps []proc
	for _, encrypted := range []bool{false, true} {
		snapshot(bigCfg, encrypted, 0)
		snapshot(small, encrypted, 0)
	}
	remote := filepath.Join(dir, "openssh.json")
	for i := 1; i <= bigRuns; i++ {
		own = append(own, snapshot(bigCfg, false, i))
		ownSmall = append(ownSmall, snapshot(small, false, i))
		enc = append(enc, snapshot(bigCfg, true, i))
		encSmall = append(encSmall, snapshot(small, true, i))
		scps = append(scps, l.measure(l.scp(bigCfg.path, remote)...))
		if i == 1 && sha256File(l.t, remote) != bigCfg.sum {
			l.t.Errorf("scp: %s differs from %s", remote, bigCfg.path)
		}
		os.Remove(remote)
		sftps = append(sftps, l.measure(l.sftp(bigCfg.path, remote)...))
		os.Remove(remote)
	}
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%s (%s/s)", dur(d), mib(int64(float64(bigCfg.size)/d.Seconds())))
	}
	size := mib(bigCfg.size)
	rows := []row{
		{fmt.Sprintf("%s config, `cfgsnap snapshot` to SFTP: wall (throughput), median of %d", size, bigRuns),
			rate(p50(own)), "OpenSSH scp: " + rate(p50(scps)), ratio(p50(own), p50(scps))},
		{fmt.Sprintf("%s config, `cfgsnap snapshot` to SFTP: wall (throughput)", size),
			rate(p50(own)), "OpenSSH sftp: " + rate(p50(sftps)), ratio(p50(own), p50(sftps))},
	}
	if len(delivered) == bigRuns {
		d := percentile(delivered, 50)
		rows = append(rows, row{fmt.Sprintf("%s config: of that, the SFTP delivery (as its --debug log times it)", size),
			rate(d), "OpenSSH scp: " + rate(p50(scps)), ratio(d, p50(scps))})
	} else {
		l.t.Logf("the --debug log timed %d of %d deliveries: no row for the delivery alone", len(delivered), bigRuns)
	}
	return append(rows,
		row{fmt.Sprintf("%s config (file source): cfgsnap peak RSS", size),
			mib(maxRSS(own)), "the same for a " + mib(small.size) + " config: " + mib(maxRSS(ownSmall)), ratio(maxRSS(own), maxRSS(ownSmall))},
		row{fmt.Sprintf("%s config: cfgsnap peak RSS", size),
			mib(maxRSS(own)), "OpenSSH scp (scp + ssh): " + mib(maxRSS(scps)), ratio(maxRSS(own), maxRSS(scps))},
		row{fmt.Sprintf("%s config, `cfgsnap snapshot` to SFTP with `encrypt-to` (an ssh-ed25519 key): wall (throughput), median of %d (goal: ≤ 1.15)", size, bigRuns),
			rate(p50(enc)), "the same without `encrypt-to`: " + rate(p50(own)), ratio(p50(enc), p50(own))},
		row{fmt.Sprintf("%s config with `encrypt-to`: cfgsnap peak RSS", size),
			mib(maxRSS(enc)), "the same for a " + mib(small.size) + " config with `encrypt-to`: " + mib(maxRSS(encSmall)), ratio(maxRSS(enc), maxRSS(encSmall))},
		row{fmt.Sprintf("%s config with `encrypt-to`: cfgsnap peak RSS", size),
			mib(maxRSS(enc)), "the same without `encrypt-to`: " + mib(maxRSS(own)), ratio(maxRSS(enc), maxRSS(own))},
	)
}

// sshKeygen makes an ed25519 key pair with the real ssh-keygen, as a team
// member's: the private key file and the public key line, for encrypt-to.
func sshKeygen(t *testing.T, dir string) (key, pub string) {
	t.Helper()
	key = filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@netops", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(b))
}

// ageSum is the SHA-256 of file decrypted by the real age CLI with the
// private key file key.
func ageSum(t *testing.T, key, file string) [32]byte {
	t.Helper()
	out, err := exec.Command("age", "-d", "-i", key, file).Output()
	if err != nil {
		t.Fatalf("age -d -i %s %s: %v", key, file, err)
	}
	return sha256.Sum256(out)
}

func sha256File(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// git: snapshots by the binary to a bare repository over SSH (time, peak RSS,
// growth per snapshot of a one-line change); the same snapshot's time and peak
// RSS at 10, 1,000 and 10,000 commits of history; and BenchmarkGitHistory's
// peak Go heap at those lengths.
func (l *lab) git(g goBench) []row {
	dir := l.t.TempDir()
	repo := filepath.Join(dir, "configs.git")
	gitCmd(l.t, "init", "-q", "--bare", "-b", "main", repo)
	cfgPath, spool := filepath.Join(dir, "config.json"), filepath.Join(dir, "spool")
	snap := func(v int) proc { return l.gitSnapshot(repo, cfgPath, spool, v) }
	snap(0) // the first commit, on an empty repository: not measured
	gitCmd(l.t, "--git-dir", repo, "gc", "-q")
	before := objectsKiB(l.t, repo)
	var snaps []proc
	for v := 1; v <= gitSnaps; v++ {
		snaps = append(snaps, snap(v))
	}
	pushed := objectsKiB(l.t, repo)
	gitCmd(l.t, "--git-dir", repo, "gc", "-q")
	packed := objectsKiB(l.t, repo)
	if n := githistory.Count(l.t, repo, "main"); n != gitSnaps+1 {
		l.t.Errorf("the repository has %d commits, want %d", n, gitSnaps+1)
	}
	cfgLen := int64(len(l.config(gitSnaps)))

	// The Nokia anchor again, for the same file: a plain copy.
	anchorDir := filepath.Join(dir, "nokia")
	if err := os.MkdirAll(anchorDir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	var scps []proc
	for i := range gitSnaps {
		scps = append(scps, l.measure(l.nokiaSCP(cfgPath, filepath.Join(anchorDir, fmt.Sprintf("config-%d.json", i)))...))
	}

	rows := []row{
		{fmt.Sprintf("git: `cfgsnap snapshot` over SSH, history of 1–%d commits, wall p50 of %d", gitSnaps, gitSnaps),
			dur(p50(snaps)), "Nokia's scp of the same file: " + dur(p50(scps)), ratio(p50(snaps), p50(scps))},
		{"git: that snapshot's peak RSS (max)",
			mib(maxRSS(snaps)), "Nokia's scp (scp + ssh): " + mib(maxRSS(scps)), ratio(maxRSS(snaps), maxRSS(scps))},
	}
	rows = append(rows, l.gitHistory()...)
	name := func(n int) string { return fmt.Sprintf("BenchmarkGitHistory/ssh/commits=%d", n) }
	h10 := g.value(l.t, name(10), "peak-heap-MB")
	for _, n := range []int{1_000, 10_000} {
		hn := g.value(l.t, name(n), "peak-heap-MB")
		rows = append(rows, row{fmt.Sprintf("git: peak Go heap per snapshot, %s commits of history (BenchmarkGitHistory, ssh)", commas(n)),
			fmt.Sprintf("%s MB", sig3(hn)), fmt.Sprintf("at 10 commits: %s MB", sig3(h10)), hn / h10})
	}
	growth := func(kib int64) float64 { return float64(kib) * 1024 / gitSnaps }
	return append(rows,
		row{fmt.Sprintf("git: repository growth per snapshot of a one-line change, as pushed (loose objects; `git count-objects -v` over %d)", gitSnaps),
			kib(growth(pushed - before)), "the configuration: " + kib(float64(cfgLen)), growth(pushed-before) / float64(cfgLen)},
		row{"git: the same after `git gc` (packed, as deltas)",
			kib(growth(packed - before)), "the configuration: " + kib(float64(cfgLen)), growth(packed-before) / float64(cfgLen)},
	)
}

// histories are the lengths of history measured, the first the anchor of the
// others; histSwitches is how many switches' files the history holds.
var histories = []int{10, 1_000, 10_000}

const histSwitches = 20

// gitHistory: `cfgsnap snapshot` of leaf11 to repositories whose main already
// holds 10, 1,000 and 10,000 commits of 20 switches' configurations, leaf11's
// file among them: wall p50 and peak RSS at each length, against 10 commits.
func (l *lab) gitHistory() []row {
	start := time.Now()
	dir := l.t.TempDir()
	type history struct {
		commits     int
		repo, spool string
		snaps       []proc
	}
	var hs []*history
	for _, n := range histories {
		h := &history{commits: n, repo: filepath.Join(dir, fmt.Sprintf("h%d.git", n)), spool: filepath.Join(dir, fmt.Sprintf("spool%d", n))}
		gitCmd(l.t, "init", "-q", "--bare", "-b", "main", h.repo)
		githistory.Build(l.t, h.repo, l.fixture, histSwitches, n)
		hs = append(hs, h)
	}
	l.t.Logf("git: histories of %v commits built in %v", histories, time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	cfgPath := filepath.Join(dir, "config.json")
	// Round by round, so that a slow moment of the machine falls on every
	// length alike. Round 0 is not measured: it gives each spool the previous
	// snapshot a switch's spool holds.
	v := 0
	for round := range histRuns + 1 {
		for _, h := range hs {
			v++
			p := l.gitSnapshot(h.repo, cfgPath, h.spool, v)
			if round > 0 {
				h.snaps = append(h.snaps, p)
			}
		}
	}
	for _, h := range hs {
		if got, want := githistory.Count(l.t, h.repo, "main"), h.commits+histRuns+1; got != want {
			l.t.Errorf("%s has %d commits after %d snapshots, want %d: not every snapshot committed", h.repo, got, histRuns+1, want)
		}
	}
	anchor := hs[0]
	var times, peaks []row
	for _, h := range hs[1:] {
		times = append(times, row{fmt.Sprintf("git: `cfgsnap snapshot` over SSH, %s commits of history (%d switches' files), wall p50 of %d", commas(h.commits), histSwitches, histRuns),
			dur(p50(h.snaps)), fmt.Sprintf("at %d commits: %s", anchor.commits, dur(p50(anchor.snaps))), ratio(p50(h.snaps), p50(anchor.snaps))})
		peaks = append(peaks, row{fmt.Sprintf("git: that snapshot's peak RSS (max of %d), %s commits of history", histRuns, commas(h.commits)),
			mib(maxRSS(h.snaps)), fmt.Sprintf("at %d commits: %s", anchor.commits, mib(maxRSS(anchor.snaps))), ratio(maxRSS(h.snaps), maxRSS(anchor.snaps))})
	}
	l.t.Logf("git: %d snapshots to them measured in %v", len(hs)*(histRuns+1), time.Since(start).Round(100*time.Millisecond))
	return append(times, peaks...)
}

// gitSnapshot writes version v of the configuration to cfgPath and measures
// `cfgsnap snapshot` of it to the bare repository repo, over SSH.
func (l *lab) gitSnapshot(repo, cfgPath, spool string, v int) proc {
	writeAtomic(l.t, cfgPath, l.config(v))
	return l.measure(append([]string{l.bin, "snapshot"}, l.flags(l.srv.URL("git+ssh", repo), cfgPath, spool)...)...)
}

func gitCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// objectsKiB is the repository's object store, loose and packed, in KiB, as
// git count-objects -v counts it.
func objectsKiB(t *testing.T, repo string) int64 {
	t.Helper()
	var total int64
	for _, line := range strings.Split(gitCmd(t, "--git-dir", repo, "count-objects", "-v"), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if k == "size" || k == "size-pack" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("git count-objects -v: %q", line)
			}
			total += n
		}
	}
	return total
}

// render is the report: the table, then how each figure was measured.
func (l *lab) render(rows []row, g goBench, took time.Duration) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` ([`lab/bench`](bench), TestBenchReport); do not edit by hand. " +
		"Each figure stands beside its anchor, measured in the same run; ratio = cfgsnap / anchor, so below 1 is smaller or faster.\n\n")
	fmt.Fprintf(&b, "Run of %s on %s (%d cores), Linux %s, %s, %s, %s. ",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), kernel(),
		runtime.Version(), opensshVersion(), strings.TrimSpace(gitCmd(l.t, "--version")))
	fmt.Fprintf(&b, "Took %s for this table after %s of Go benchmarks.\n\n", dur(took), dur(g.took))
	b.WriteString("| figure | cfgsnap | anchor | ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		q := "—"
		if !math.IsNaN(r.ratio) {
			q = sig3(r.ratio)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.figure, r.cfgsnap, r.anchor, q)
	}
	b.WriteString(method)
	return b.String()
}

const method = `
## How

- **The server.** A real OpenSSH sshd (with its sftp-server), listening on 127.0.0.1 inside a fresh
  network namespace that stands for srbase-mgmt. cfgsnap reaches it with option ` + "`netns`" + `; every
  OpenSSH anchor runs under ` + "`ip netns exec`" + ` in the same namespace, with the same key.
- **The binary.** ` + "`bin/cfgsnap`" + ` from ` + "`make build`" + `, run as a process. Wall time is from starting the
  process to its exit. Peak RSS is ` + "`/usr/bin/time -f %M`" + `: ru_maxrss of the process and the children it
  waited for, as ` + "`/usr/bin/time -v`" + ` reports it. The command is forked by /usr/bin/time, not by the Go
  harness, because Linux starts a process's ru_maxrss at the resident size of the process that exec'd it.
- **The configuration.** The real leaf11 ` + "`config.json`" + ` (` + "`../shared/fixtures/srlinux/srl-config-dcf-leaf11.json`" + `,
  byte for byte), read with option ` + "`source file:PATH`" + `: the same file the anchors copy, as Nokia's example
  copies config.json. Versions differ in its one comment: one changed line.
- **Options.** The event-handler instance's options (the event) hold what an operator sets from the switch:
  ` + "`target`" + ` and ` + "`netns`" + `. What cfgsnap takes only from root, because it chooses what root runs, reads or writes
  (` + "`source file:PATH`" + ` other than SR Linux's own files, ` + "`known-hosts`" + `, ` + "`identity`" + `, ` + "`spool-dir`" + `), are flags on the
  command line, as a switch's root sets them (flags, or /etc/opt/srlinux/cfgsnap/options.json); ` + "`handle`" + ` hands
  its flags to the worker.
- **handle.** The run-script cmdline (binary, ` + "`handle`" + `, root's flags, the event as hex), run by ` + "`/bin/sh -c`" + ` as
  the event handler runs it, one commit at a time: each waits until the previous worker has finished.
  ` + "`handle`" + ` queues the event with fsync and starts the detached worker; the 10 s anchor is when the
  event handler gives up on run-script.
- **capture.** Exact attribution reads the commit list, the configuration and the commit list again
  (handler/source, Read). ` + "`cfgsnap snapshot`" + ` of the real configuration to a file:// target (` + "`--netns none`" + `),
  through the stand-in sr_cli of lab/sim (a shell script that prints running.json and commits.json from its folder;
  three runs of it per capture, no delay) and through a stand-in JSON-RPC server on a unix socket in the test process
  (basic auth; one request: list, configuration, list; it sends the configuration as one line, which cfgsnap
  indents). The anchor is the same snapshot from ` + "`source file:PATH`" + `: one read and no commit list, the capture
  before exact attribution. Before each round a commit changes the configuration and joins the commit list (a boot
  commit and one more per round); the three sources then run one after the other, each with its own spool, 51
  rounds, the first not measured. Each file that lands must hold that configuration (JSON-RPC's as the same JSON
  value) and, but for the anchor, cfgsnap must name that commit alone. Wall p50 of the 50, from process start to
  exit: capture, change summary, delivery (fsync, rename).
- **commit-to-stored.** From starting ` + "`handle`" + ` until the snapshot's final name exists on the server (polled
  every millisecond; cfgsnap writes a temporary file, fsyncs it and renames it). The anchor is what Nokia's
  examples have run-script do, ` + "`ip netns exec srbase-mgmt scp -o StrictHostKeyChecking=no config.json user@host:…`" + `,
  timed until scp exits. Only the anchor skips host-key checking, because that is what it imitates; cfgsnap
  checks the host key against known-hosts. OpenSSH 9's scp speaks SFTP; it neither fsyncs nor renames, and the
  event handler waits for all of it.
- **burst.** 100 commits, one every 10 ms: each replaces the configuration file (rename), takes a new
  last-change and starts ` + "`handle`" + ` on time, whether or not the previous one has returned. The worker coalesces
  what queues up while it runs. Uploads are the files on the server once the last worker has exited; the last
  state must be the newest file, byte for byte.
- **100 MiB.** The configuration grown to 100 MiB by more interfaces, still one JSON object. ` + "`cfgsnap snapshot`" + `
  streams it into the spool (fsync), then over SFTP (fsync, rename); the anchors are OpenSSH ` + "`scp`" + ` and
  ` + "`sftp -b`" + ` of the same file, host key checked. Median of 3 runs each, interleaved; each copy is checked by SHA-256
  once. The delivery alone is the time cfgsnap's ` + "`--debug`" + ` log gives it (` + "`saved NAME (N bytes) in D`" + `); the rest
  of the wall time is capture: copying the file into the spool while checking (handler/jsonscan) that it is one JSON
  object, and finding its host name. The RSS anchor is the same snapshot of a 1 MiB configuration. Each size has
  its own spool, and the first snapshot of each is not measured, so each measured one finds a previous snapshot, as
  on a switch (the change summary then compares the two 1 MiB configurations; above 16 MiB it is skipped).
- **100 MiB with ` + "`encrypt-to`" + `.** The same two snapshots, 100 MiB and 1 MiB, with root's ` + "`--encrypt-to`" + ` set to an
  ssh-ed25519 public key made by ` + "`ssh-keygen`" + `: cfgsnap encrypts with age as it sends and stores ` + "`NAME.json.age`" + `.
  Each has its own spool and server folder, its first snapshot not measured, and its 3 measured runs interleave
  with the unencrypted ones, so both meet the same moments of the machine. The first file of each size is
  decrypted by the real ` + "`age -d -i`" + ` with the private key and checked by SHA-256. The anchors are the same
  snapshot without ` + "`encrypt-to`" + ` (wall median; peak RSS, the most of 3) and, for memory flat in size, the
  encrypted 1 MiB snapshot.
- **redaction.** ` + "`BenchmarkRedact`" + ` (handler/redact) rewrites a 32 MiB configuration (testkit/bigconfig) with ` + "`redact default`" + `
  and every interface description as well, so that it has tens of thousands of values to replace by HMAC markers;
  the anchor is ` + "`BenchmarkScan`" + ` (handler/jsonscan): the syntax check of the same bytes, which every capture does anyway.
- **git.** ` + "`cfgsnap snapshot`" + ` to a bare repository over SSH (git+ssh, OpenSSH running git-receive-pack), 20 snapshots
  after the first, each a one-line change. Growth is ` + "`git count-objects -v`" + ` (size + size-pack) after the 20
  against before them, the repository gc'd before. As pushed, git keeps small pushes as loose objects;
  ` + "`git gc`" + ` packs them as deltas. For history, three more bare repositories whose main already holds 10, 1,000
  and 10,000 commits, built with ` + "`git fast-import`" + ` (handler/testkit/githistory): each commit changes one of 20
  switches' files, leaf0.json to leaf19.json, so the tip's tree holds 20 configurations and leaf11's snapshot
  changes a file with history. ` + "`cfgsnap snapshot`" + ` runs 10 times against each, round by round across the three;
  the first round is not measured (it leaves each spool the previous snapshot a switch has), so the 9 measured see
  1 to 9 commits more history than named. Each must commit: ` + "`git rev-list --count main`" + ` grows by 10. Wall p50 and
  the largest peak RSS of the 9 stand against the same at 10 commits; the server's git-receive-pack is not in
  cfgsnap's RSS. The peak Go heap rows are BenchmarkGitHistory's (handler/destination/git: in-process Save over SSH
  to the same histories), from the same ` + "`make bench`" + `: the Go heap sampled during Save, not a process's RSS.
- **binary and start-up.** The size of ` + "`bin/cfgsnap`" + ` against ssh with the shared libraries it loads; start-up is
  ` + "`cfgsnap version`" + ` run 50 times, p50, against ` + "`ssh -V`" + ` and ` + "`/bin/true`" + `; RSS the most of 5 runs each.
- No test asserts a time: these figures are recorded, not judged.
`

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func opensshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), ",")
	return v
}

// ratio is a / b for durations or byte counts.
func ratio[T time.Duration | int64](a, b T) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// sig3 shows v with three significant digits, in plain notation.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	// Round first, so that 99.97 shows as 100, not 100.0.
	scale := math.Pow(10, math.Floor(math.Log10(math.Abs(v)))-2)
	r := math.Round(v/scale) * scale
	d := max(0, 2-int(math.Floor(math.Log10(math.Abs(r)))))
	return strconv.FormatFloat(r, 'f', d, 64)
}

func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + " µs"
	case d < 999500*time.Microsecond:
		return sig3(float64(d)/1e6) + " ms"
	default:
		return sig3(d.Seconds()) + " s"
	}
}

func mib(n int64) string {
	if n < 1000<<10 {
		return kib(float64(n))
	}
	return sig3(float64(n)/(1<<20)) + " MiB"
}

func kib(n float64) string { return sig3(n/1024) + " KiB" }

func commas(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// redaction: the streaming rewrite of option redact, against the syntax check
// every capture makes of the same 32 MiB (both from make bench's Go benchmarks).
func redaction(t *testing.T, g goBench) []row {
	red, scan := g.value(t, "BenchmarkRedact", "ns/op"), g.value(t, "BenchmarkScan", "ns/op")
	mbs := func(name string) string { return fmt.Sprintf("%s MB/s", sig3(g.value(t, name, "MB/s"))) }
	return []row{{"redaction: `redact default` plus every interface description over a 32 MiB config, throughput (BenchmarkRedact)",
		mbs("BenchmarkRedact"), "the syntax check of the same bytes (BenchmarkScan): " + mbs("BenchmarkScan"), red / scan}}
}
