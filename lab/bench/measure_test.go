package bench_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

const (
	// srlTime is how SR Linux writes last-change.
	srlTime = "2006-01-02T15:04:05.000Z"
	// nameTime is how a snapshot's name shows last-change.
	nameTime = "20060102T150405.000Z"
	// workerBound is a sanity bound on waiting for one worker, not a measure.
	workerBound = 60 * time.Second
)

// lab is the simulated switch's side of every measurement: the binary, a
// namespace standing for srbase-mgmt with a real sshd on its loopback, and the
// real leaf11 configuration.
type lab struct {
	t    *testing.T
	repo string
	bin  string // absolute, symlinks resolved: what /proc/PID/cmdline of its worker shows
	ns   string
	srv  *sshd.Server
	// fixture is the real leaf11 config.json, byte for byte; base is it decoded.
	fixture []byte
	base    map[string]any
	scratch string // for /usr/bin/time's reports
	clk     lastChanges
}

func newLab(t *testing.T, bin string) *lab {
	t.Helper()
	testenv.NeedRoot(t)
	for _, c := range []string{"ip", "scp", "sftp", "ssh", "git", "ldd", "/usr/bin/time", "ssh-keygen", "age", sshd.SSHDPath, sshd.SFTPServerPath} {
		testenv.NeedCommand(t, c)
	}
	l := &lab{t: t, repo: testenv.RepoRoot(t)}
	if bin == "" {
		bin = buildBinary(t, l.repo)
	}
	abs, err := filepath.Abs(bin)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		t.Fatalf("binary %s: %v", bin, err)
	}
	l.bin = abs
	l.ns = nstest.NewNS(t)
	l.srv = sshd.New(t, sshd.Options{Listen: "127.0.0.1", Wrap: []string{"ip", "netns", "exec", l.ns}})

	l.scratch = t.TempDir()
	l.fixture = testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
	if bytes.Count(l.fixture, []byte(emptyComment)) != 1 {
		t.Fatalf("fixture srl-config-dcf-leaf11.json: want one %s to vary", emptyComment)
	}
	dec := json.NewDecoder(bytes.NewReader(l.fixture))
	dec.UseNumber()
	if err := dec.Decode(&l.base); err != nil {
		t.Fatalf("fixture srl-config-dcf-leaf11.json: %v", err)
	}
	return l
}

// emptyComment is the one comment of the fixture: its _preamble's.
const emptyComment = `"comment": ""`

// buildBinary builds cmd/cfgsnap as make build does (static, stripped), for a
// run without -bin.
func buildBinary(t *testing.T, repo string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cfgsnap")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/cfgsnap")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building cfgsnap: %v\n%s", err, out)
	}
	return bin
}

// config is the real configuration (104 KiB, as SR Linux saves config.json)
// in version v: v 0 is the fixture byte for byte, and any other v names itself
// in the comment, so consecutive versions differ by one line, as after a
// small commit.
func (l *lab) config(v int) []byte {
	if v == 0 {
		return l.fixture
	}
	return bytes.Replace(l.fixture, []byte(emptyComment), fmt.Appendf(nil, `"comment": "bench v%d"`, v), 1)
}

// bigConfig is the configuration grown to about size bytes by more
// interfaces, each like the first with its own name and description: a
// switch with very many ports and subinterfaces, still one JSON object.
func (l *lab) bigConfig(size int) []byte {
	l.t.Helper()
	ifaces, _ := l.base["srl_nokia-interfaces:interface"].([]any)
	var tmpl map[string]any
	if len(ifaces) > 0 {
		tmpl, _ = ifaces[0].(map[string]any)
	}
	if tmpl == nil {
		l.t.Fatal("fixture srl-config-dcf-leaf11.json has no interface to copy")
	}
	entry := func(i int) map[string]any {
		m := make(map[string]any, len(tmpl))
		for k, v := range tmpl {
			m[k] = v
		}
		// Fixed widths: every added interface has the same length.
		m["name"] = fmt.Sprintf("ethernet-%04d/%03d", 10+i/128, i%128+1)
		m["description"] = fmt.Sprintf("bench port %07d of a very large configuration", i)
		return m
	}
	grown := make(map[string]any, len(l.base))
	for k, v := range l.base {
		grown[k] = v
	}
	with := func(n int) []byte {
		list := slices.Clone(ifaces)
		for i := range n {
			list = append(list, entry(i))
		}
		grown["srl_nokia-interfaces:interface"] = list
		return marshal(l.t, grown)
	}
	// What one more interface adds, measured on a hundred of them.
	base := len(with(0))
	per := float64(len(with(100))-base) / 100
	return with(max(0, int(float64(size-base)/per)))
}

func marshal(t *testing.T, v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// writeAtomic replaces path with b by a rename, as SR Linux replaces a
// checkpoint: a reader sees the old file or the new one, never part of one.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lastChanges hands out last-change times: now, to the millisecond, and
// always later than the one before, as a switch's commits are.
type lastChanges struct{ last time.Time }

func (c *lastChanges) next() time.Time {
	lc := time.Now().UTC().Truncate(time.Millisecond)
	if !lc.After(c.last) {
		lc = c.last.Add(time.Millisecond)
	}
	c.last = lc
	return lc
}

// handleLine is the run-script cmdline for an event with lastChange and the
// instance's options opts (sudo false): the binary, handle, root's options as
// flags (handle hands them to its worker), the event as hex.
func (l *lab) handleLine(lastChange time.Time, opts map[string]any, rootFlags []string) string {
	l.t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(testenv.ReadFixture(l.t, "eh-input-backup-last-change.json"), &ev); err != nil {
		l.t.Fatal(err)
	}
	paths, _ := ev["paths"].([]any)
	if len(paths) == 0 {
		l.t.Fatal("fixture eh-input-backup-last-change.json has no paths")
	}
	p0, _ := paths[0].(map[string]any)
	if p0 == nil || p0["path"] != "system configuration last-change" {
		l.t.Fatalf("fixture eh-input-backup-last-change.json: no last-change path in %v", ev["paths"])
	}
	p0["value"] = lastChange.Format(srlTime)
	ev["options"] = opts
	b, err := json.Marshal(ev)
	if err != nil {
		l.t.Fatal(err)
	}
	words := append([]string{l.bin, "handle"}, rootFlags...)
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ") + " " + hex.EncodeToString(b)
}

// instance are the event-handler instance's options, what an operator sets
// from the switch: where to deliver, and through which namespace.
func (l *lab) instance(target string) map[string]any {
	return map[string]any{"target": target, "netns": l.ns}
}

// rootFlags are what only root may set (cfgsnap refuses them from the
// instance: option.SetEvent): the file to read, the keys and the spool. A
// switch's root sets them the same way, as flags or in
// /etc/opt/srlinux/cfgsnap/options.json.
func (l *lab) rootFlags(source, spool string) []string {
	return []string{"--source", "file:" + source, "--known-hosts", l.srv.KnownHosts(),
		"--identity", l.srv.ClientKey(), "--spool-dir", spool}
}

// flags are the instance's options and root's together, as flags, for snapshot.
func (l *lab) flags(target, source, spool string, more ...string) []string {
	args := append([]string{"--target", target, "--netns", l.ns}, l.rootFlags(source, spool)...)
	return append(args, more...)
}

// handle runs a run-script cmdline as the event handler does, through
// /bin/sh -c, and checks it printed the one line of a queued event.
func (l *lab) handle(line string) proc {
	l.t.Helper()
	p, err := handle(line)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// handle is lab.handle for any goroutine: it returns what failed.
func handle(line string) (proc, error) {
	p, err := execute("/bin/sh", "-c", line)
	if err != nil {
		return p, err
	}
	if out := string(p.stdout); !strings.HasPrefix(out, "cfgsnap: queued last-change ") || strings.Count(out, "\n") != 1 {
		return p, fmt.Errorf("handle printed %q, want one line \"cfgsnap: queued last-change ...\"", out)
	}
	return p, nil
}

// nokiaSCP is the anchor Nokia's examples give: the event handler's run-script
// copies the file with scp inside srbase-mgmt, host key unchecked. Only the
// anchor does that; cfgsnap checks the host key against known-hosts.
func (l *lab) nokiaSCP(src, remote string) []string {
	return []string{"ip", "netns", "exec", l.ns, "scp", "-q", "-F", "/dev/null",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"-i", l.srv.ClientKey(), "-P", strconv.Itoa(l.srv.Port()), src, l.srv.User() + "@127.0.0.1:" + remote}
}

// opensshOpts check the host key, as cfgsnap does.
func (l *lab) opensshOpts() []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + l.srv.KnownHosts(),
		"-o", "BatchMode=yes", "-i", l.srv.ClientKey(), "-P", strconv.Itoa(l.srv.Port())}
}

// scp copies src to remote with OpenSSH scp (which speaks SFTP since 9.0) in
// the namespace.
func (l *lab) scp(src, remote string) []string {
	args := append([]string{"ip", "netns", "exec", l.ns, "scp", "-q"}, l.opensshOpts()...)
	return append(args, src, l.srv.User()+"@127.0.0.1:"+remote)
}

// sftp puts src at remote with OpenSSH sftp in batch mode, in the namespace.
func (l *lab) sftp(src, remote string) []string {
	batch := filepath.Join(l.t.TempDir(), "batch")
	if err := os.WriteFile(batch, fmt.Appendf(nil, "put %s %s\n", src, remote), 0o600); err != nil {
		l.t.Fatal(err)
	}
	args := append([]string{"ip", "netns", "exec", l.ns, "sftp", "-q", "-b", batch}, l.opensshOpts()...)
	return append(args, l.srv.User()+"@127.0.0.1")
}

// workers lists the detached `cfgsnap work` processes of spool.
func (l *lab) workers(spool string) []int { return testenv.Workers(l.bin, spool) }

// spool is a spool folder in dir for handle's workers; a worker still
// running when the test ends (it failed) is killed.
func (l *lab) spool(dir string) string {
	spool := filepath.Join(dir, "spool")
	l.t.Cleanup(func() {
		for _, pid := range l.workers(spool) {
			l.t.Logf("killing worker %d, still running at the end", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return spool
}

// waitIdle waits until no worker of spool runs, and checks it left no event queued.
func (l *lab) waitIdle(spool string) {
	l.t.Helper()
	start := time.Now()
	for len(l.workers(spool)) > 0 {
		if time.Since(start) > workerBound {
			l.t.Fatalf("the worker still runs after %v\n%s", workerBound, workerLog(spool))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if jobs, _ := filepath.Glob(filepath.Join(spool, "jobs", "*")); len(jobs) > 0 {
		l.t.Fatalf("the worker finished but left %d events queued\n%s", len(jobs), workerLog(spool))
	}
}

// waitLanded polls dir, every millisecond, for a snapshot whose name shows
// lastChange, and returns its path. A snapshot appears by rename, whole.
func (l *lab) waitLanded(dir, spool string, lastChange time.Time) string {
	l.t.Helper()
	stamp := lastChange.Format(nameTime)
	start := time.Now()
	for {
		for _, p := range snapshots(dir) {
			if strings.Contains(filepath.Base(p), stamp) {
				return p
			}
		}
		if time.Since(start) > workerBound {
			l.t.Fatalf("no snapshot of last-change %s in %s after %v\n%s", stamp, dir, workerBound, workerLog(spool))
		}
		time.Sleep(time.Millisecond)
	}
}

// snapshots lists the snapshots below a target's folder, oldest first: with
// the default name template they are HOST/HOST_TIME_USER.json, and the
// fixture names no host, so HOST is this machine's (sorted by name is sorted
// by last-change). A temporary .NAME.part is not a snapshot.
func snapshots(dir string) []string {
	var out []string
	hosts, _ := os.ReadDir(dir)
	for _, h := range hosts {
		files, _ := os.ReadDir(filepath.Join(dir, h.Name()))
		for _, f := range files {
			if !strings.HasPrefix(f.Name(), ".") {
				out = append(out, filepath.Join(dir, h.Name(), f.Name()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func workerLog(spool string) string {
	b, _ := os.ReadFile(filepath.Join(spool, "worker.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "worker.log (end):\n" + string(b)
}

// proc is one finished process: how long from start to exit, what it
// printed, and, from measure, its peak resident set size.
type proc struct {
	wall           time.Duration
	rss            int64 // bytes; 0 from run
	stdout, stderr []byte
}

// measure runs a command under /usr/bin/time for its peak RSS: ru_maxrss of
// the process and the children it waited for, as /usr/bin/time -v reports it.
// The command must not be this test's own child: Linux starts a process's
// ru_maxrss at the resident size of the process that exec'd it, and Go spawns
// with vfork, so every child of this test would report at least the test's
// size. /usr/bin/time forks it from a process of about 2 MiB. Its wall time
// is from starting /usr/bin/time, about a millisecond more than run's.
func (l *lab) measure(cmd ...string) proc {
	l.t.Helper()
	f, err := os.CreateTemp(l.scratch, "rss")
	if err != nil {
		l.t.Fatal(err)
	}
	f.Close()
	p := run(l.t, append([]string{"/usr/bin/time", "-f", "%M", "-o", f.Name()}, cmd...)...)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		l.t.Fatal(err)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		l.t.Fatalf("/usr/bin/time -f %%M wrote %q", b)
	}
	p.rss = kib << 10
	return p
}

// run runs a command to its end and times it; it fails t if the command fails.
func run(t *testing.T, cmdline ...string) proc {
	t.Helper()
	p, err := execute(cmdline...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// execute is run for any goroutine: it returns what failed.
func execute(cmdline ...string) (proc, error) {
	name, args := cmdline[0], cmdline[1:]
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(start), stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if err != nil {
		return p, fmt.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", name, shorten(strings.Join(args, " ")), err, p.stdout, p.stderr)
	}
	return p, nil
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func maxRSS(ps []proc) int64 {
	var m int64
	for _, p := range ps {
		m = max(m, p.rss)
	}
	return m
}

// p50 is the median wall time of ps.
func p50(ps []proc) time.Duration { return percentile(walls(ps), 50) }

func walls(ps []proc) []time.Duration {
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		out[i] = p.wall
	}
	return out
}

// goBench is the output of go test -bench: benchmark (without the -GOMAXPROCS
// suffix) -> unit -> value; and the packages' test times, summed.
type goBench struct {
	results map[string]map[string]float64
	took    time.Duration
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.+)$`)
	okLine    = regexp.MustCompile(`^ok\s+\S+\s+([0-9.]+)s`)
)

func parseGoBench(out []byte) goBench {
	g := goBench{results: map[string]map[string]float64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := okLine.FindStringSubmatch(line); m != nil {
			s, _ := strconv.ParseFloat(m[1], 64)
			g.took += time.Duration(s * float64(time.Second))
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		units := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				units[f[i+1]] = v
			}
		}
		g.results[m[1]] = units
	}
	return g
}

// value is a benchmark's figure in unit; it fails t if the run lacks it.
func (g goBench) value(t *testing.T, name, unit string) float64 {
	t.Helper()
	v, ok := g.results[name][unit]
	if !ok {
		t.Fatalf("the go test -bench output has no %s %s", name, unit)
	}
	return v
}
