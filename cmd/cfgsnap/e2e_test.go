package main_test

// The end-to-end test: the switch, simulated.
//
//	the switch      lab/sim/sr_cli (a stand-in) serving a real SR Linux configuration
//	                (../shared/fixtures/srlinux) and a commit list the test writes
//	srbase-mgmt     a network namespace (option netns), joined by a veth pair to
//	the backup host a second namespace running a real OpenSSH sshd, known only as
//	                backup.lab to the DNS responder of the first: never reachable
//	                from the host namespace; for commit/git-s3-webhook also
//	                git-http-backend (git.lab), versitygw (s3.lab) and a webhook
//	                receiver (hooks.lab), and bare git repositories
//	the script      eventhandler-scripts/cfgsnap.py, run in real MicroPython (Node)
//	                on the real event-handler input fixture
//	run-script      the cmdline the script returns, run by /bin/sh -c as returned
//	the binary      cfgsnap built from this tree: handle queues and returns, the
//	                detached worker captures and delivers
//
// Every check is one a user would make: the file on the backup host, its bytes
// and mode, the spool's pending file and last-run status, the line handle prints.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cgi"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/netns"
	"github.com/cfgsnap/cfgsnap/handler/spool"
	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The backup host's names, all at the server namespace's address and known only
// to the management namespace's DNS responder: a connection that reaches one
// of them went through the namespace.
const (
	backupHost = "backup.lab" // sshd: sftp, scp, git over SSH
	gitHost    = "git.lab"    // git-http-backend (smart HTTP)
	s3Host     = "s3.lab"     // versitygw
	hookHost   = "hooks.lab"  // the webhook receiver
)

const (
	// tsLayout is how a snapshot's name shows last-change, e.g. 20250920T110208.456Z.
	tsLayout = "20060102T150405.000Z"
	// srlTime is how SR Linux writes last-change and commit times.
	srlTime = "2006-01-02T15:04:05.000Z"
	// workerBound is a generous sanity bound on one worker run; a run whose
	// server is down takes about 3 s (three tries, 1 s and 2 s apart).
	workerBound = 60 * time.Second
)

// TestSwitchSimulated runs the whole chain: a commit on a simulated switch, the
// real event-handler script, the real binary, a real SSH server behind the
// management namespace. The subtests each build their own lab and run in
// parallel; the binary is built once.
func TestSwitchSimulated(t *testing.T) {
	env := newSuite(t)

	t.Run("commit/sftp", func(t *testing.T) {
		t.Parallel()
		testCommits(t, env, "sftp", "reinvoke")
	})
	t.Run("commit/scp", func(t *testing.T) {
		t.Parallel()
		testCommits(t, env, "scp", "flush")
	})
	t.Run("commit/git-s3-webhook", func(t *testing.T) {
		t.Parallel()
		testEveryDestination(t, env)
	})
	// Commits keep coming while a switch that takes a second to give its
	// configuration is read: jittered as people commit, or back to back as
	// automation does.
	for _, src := range []string{"sr_cli", "jsonrpc"} {
		t.Run("attribution/"+src+"/jittered", func(t *testing.T) {
			t.Parallel()
			// A short commit-wait against a burst of about 6 s: reads give up
			// unsettled, and several snapshots share the burst.
			testAttribution(t, env, attribution{source: src, users: []string{"hugo", "gina"}, commits: 20, failedAt: 10,
				gap: func(r *mathrand.Rand) time.Duration {
					return 100*time.Millisecond + time.Duration(r.Int64N(int64(400*time.Millisecond)))
				},
				readDelay: time.Second, commitWait: "2", minSnapshots: 2})
		})
		t.Run("attribution/"+src+"/back-to-back", func(t *testing.T) {
			t.Parallel()
			testAttribution(t, env, attribution{source: src, users: []string{"hugo", "gina", "ivan"}, commits: 30, failedAt: 15,
				gap:       func(*mathrand.Rand) time.Duration { return 0 },
				readDelay: time.Second, commitWait: "5"})
		})
	}
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		testKill(t, env)
	})
	t.Run("hostile", func(t *testing.T) {
		t.Parallel()
		testHostile(t, env)
	})
}

// suite is what every subtest shares.
type suite struct {
	repo   string // the repository's root
	node   string
	bin    string // the cfgsnap binary built from this tree
	script string // eventhandler-scripts/cfgsnap.py, installed with BINARY set to bin
}

// newSuite checks for what the simulated switch needs (root, iproute2,
// OpenSSH, MicroPython through Node, the fixtures: skipped without them,
// failed when CI=true) and builds the binary. TestSwitchSimulated and
// TestFaults (faults_test.go) start with it.
func newSuite(t *testing.T) *suite {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "ip")
	testenv.NeedCommand(t, sshd.SSHDPath)
	testenv.NeedCommand(t, sshd.SFTPServerPath)
	testenv.NeedCommand(t, "scp")
	repo := testenv.RepoRoot(t)
	node := testenv.NeedCommand(t, "node")
	_, err := os.Stat(filepath.Join(repo, "eventhandler-scripts/upython/node_modules/@micropython/micropython-webassembly-pyscript/package.json"))
	testenv.Need(t, err == nil, "@micropython/micropython-webassembly-pyscript is not installed (make test-deps)")
	testenv.Fixture(t, "srl-config-dcf-leaf11.json")
	testenv.Fixture(t, "eh-input-backup-last-change.json")
	bin := buildBinary(t)
	return &suite{repo: repo, node: node, bin: bin, script: installScript(t, repo, bin)}
}

// installScript installs the real event-handler script as a user whose cfgsnap
// is not at /usr/local/bin/cfgsnap does: with its BINARY line edited, and
// nothing else.
func installScript(t *testing.T, repo, bin string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, "eventhandler-scripts/cfgsnap.py"))
	if err != nil {
		t.Fatal(err)
	}
	const line = `BINARY = "/usr/local/bin/cfgsnap"` + "\n"
	if bytes.Count(src, []byte(line)) != 1 {
		t.Fatalf("cfgsnap.py has not exactly one line %q", line)
	}
	p := filepath.Join(filepath.Dir(bin), "cfgsnap.py")
	write(t, p, bytes.Replace(src, []byte(line), []byte(`BINARY = "`+bin+`"`+"\n"), 1), 0o644)
	return p
}

// buildBinary builds cmd/cfgsnap as the Makefile does (static), into a folder
// that goes when the test ends.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	// The script accepts only a binary path of [A-Za-z0-9/._+-]: t.TempDir's
	// name depends on the test's, so make a plain one.
	dir, err := os.MkdirTemp("", "cfgsnap-e2e-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "cfgsnap")
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building cfgsnap: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// lab is one simulated switch with its management network and backup server.
type lab struct {
	t *testing.T
	*suite
	pair       *nstest.Pair
	dns        *nstest.DNS
	srv        *sshd.Server
	knownHosts string // in the spool folder, as the instance may only name keys there
	identity   string // the client key, copied there too
	serverRoot string // the backup server's folder for this lab (on this machine's file system)
	switchDir  string // sr_cli, running.json, commits.json
	spool      string // option spool-dir
	cwd        string // where run-script's shell starts
	commits    []commit
}

func newLab(t *testing.T, s *suite) *lab {
	t.Helper()
	l := &lab{t: t, suite: s}
	l.pair = nstest.NewPair(t)
	// Only the management namespace's resolver knows the server by name.
	l.dns = l.pair.ServeDNS(t, map[string][]netip.Addr{
		backupHost: {l.pair.ServerIP}, gitHost: {l.pair.ServerIP}, s3Host: {l.pair.ServerIP}, hookHost: {l.pair.ServerIP},
	})
	l.srv = sshd.New(t, sshd.Options{
		Listen: l.pair.ServerIP.String(),
		Wrap:   []string{"ip", "netns", "exec", l.pair.Server},
	})
	// known_hosts names the server as the target does: by its DNS name.
	// cfgsnap's folder on the switch holds its keys: the instance may name
	// key files only there.
	l.spool = filepath.Join(t.TempDir(), "spool")
	makeSpool(t, l.spool)
	l.knownHosts = filepath.Join(l.spool, "known_hosts")
	line := knownhosts.Line([]string{net.JoinHostPort(backupHost, strconv.Itoa(l.srv.Port()))}, l.srv.HostKey())
	write(t, l.knownHosts, []byte(line+"\n"), 0o600)
	key, err := os.ReadFile(l.srv.ClientKey())
	if err != nil {
		t.Fatal(err)
	}
	l.identity = filepath.Join(l.spool, "id_ed25519")
	write(t, l.identity, key, 0o600)

	l.serverRoot = t.TempDir()
	l.switchDir = t.TempDir()
	stand, err := os.ReadFile(filepath.Join(s.repo, "lab/sim/sr_cli"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(l.switchDir, "sr_cli"), stand, 0o755)
	l.cwd = t.TempDir()
	// Registered after the spool's TempDir, so it runs before that is removed.
	t.Cleanup(func() {
		for _, pid := range l.workers() {
			t.Logf("killing worker %d, still running at the end of the test", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return l
}

// makeSpool makes dir a spool as cfgsnap does on its first run, for root to
// put keys in before the first event: the instance may name key files only in
// a spool cfgsnap made.
func makeSpool(t *testing.T, dir string) string {
	t.Helper()
	if _, err := spool.Open(dir, 100, 64<<20, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// targetURL is scheme://USER@backup.lab:PORT/dir, dir an absolute path on the server.
func (l *lab) targetURL(scheme, dir string) string {
	u := url.URL{Scheme: scheme, User: url.User(l.srv.User()),
		Host: net.JoinHostPort(backupHost, strconv.Itoa(l.srv.Port())), Path: dir}
	return u.String()
}

// options are the event-handler instance's options, pointing everything at the lab.
func (l *lab) options(targets ...string) map[string]any {
	return map[string]any{
		"target":      targets, // values [ ... ]
		"netns":       l.pair.Switch,
		"known-hosts": l.knownHosts,
		"identity":    l.identity,
		"sr-cli":      filepath.Join(l.switchDir, "sr_cli"),
		"spool-dir":   l.spool,
		"sudo":        "false",
	}
}

// setRunning writes the switch's running configuration: the real leaf11
// configuration as `info from running / | as json` prints it (no _preamble),
// with host-name set and mutate applied.
func (l *lab) setRunning(host string, mutate func(cfg map[string]any)) []byte {
	l.t.Helper()
	b := l.running(host, mutate)
	write(l.t, filepath.Join(l.switchDir, "running.json"), b, 0o644)
	return b
}

// running is a running configuration as setRunning writes it.
func (l *lab) running(host string, mutate func(cfg map[string]any)) []byte {
	l.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(testenv.ReadFixture(l.t, "srl-config-dcf-leaf11.json")))
	dec.UseNumber()
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil {
		l.t.Fatalf("fixture srl-config-dcf-leaf11.json: %v", err)
	}
	delete(cfg, "_preamble")
	sys, ok := cfg["srl_nokia-system:system"].(map[string]any)
	if !ok {
		l.t.Fatal("fixture srl-config-dcf-leaf11.json has no srl_nokia-system:system")
	}
	sys["srl_nokia-system-name:name"] = map[string]any{"host-name": host}
	if mutate != nil {
		mutate(cfg)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		l.t.Fatal(err)
	}
	return append(b, '\n')
}

// commit is one entry of "system configuration commit".
type commit struct {
	ID       int    `json:"id"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Comment  string `json:"comment"`
	Username string `json:"username"`
	Started  string `json:"started"`
	Ended    string `json:"ended"`
}

// commit records a complete commit by user, as the switch does before it sets
// last-change, and returns that last-change: just after the commit started.
func (l *lab) commit(user, comment string) time.Time {
	l.t.Helper()
	if len(l.commits) == 0 {
		l.commits = append(l.commits, commit{ID: 1, Type: "shared", Status: "complete", Username: "admin",
			Started: "2025-09-20T10:00:00.000Z", Ended: "2025-09-20T10:00:01.000Z"})
	}
	lc := time.Now().UTC().Truncate(time.Millisecond)
	if prev, _ := time.Parse(srlTime, l.commits[len(l.commits)-1].Ended); !lc.After(prev) {
		lc = prev.Add(time.Millisecond) // two commits in the same millisecond: keep them apart
	}
	// Commits are serialised, as on the switch: one starts after the one
	// before has ended, even when they follow each other quickly.
	started := lc.Add(-150 * time.Millisecond)
	if prev, _ := time.Parse(srlTime, l.commits[len(l.commits)-1].Ended); !started.After(prev) {
		started = prev.Add(time.Millisecond)
	}
	l.commits = append(l.commits, commit{ID: len(l.commits) + 1, Type: "shared", Status: "complete",
		Comment: comment, Username: user,
		Started: started.Format(srlTime), Ended: lc.Add(20 * time.Millisecond).Format(srlTime)})
	l.writeCommits()
	return lc
}

// reboot restarts the switch with its configuration unchanged: SR Linux numbers
// commits from 1 again, the boot commit, and sets last-change when the
// configuration is loaded. It returns that last-change.
func (l *lab) reboot() time.Time {
	l.t.Helper()
	lc := time.Now().UTC().Truncate(time.Millisecond)
	if n := len(l.commits); n > 0 {
		if prev, _ := time.Parse(srlTime, l.commits[n-1].Ended); !lc.After(prev) {
			lc = prev.Add(time.Millisecond)
		}
	}
	l.commits = []commit{{ID: 1, Type: "shared", Status: "complete", Username: "admin",
		Started: lc.Add(-time.Second).Format(srlTime), Ended: lc.Add(20 * time.Millisecond).Format(srlTime)}}
	l.writeCommits()
	return lc
}

// writeCommits writes the commit list where the stand-in sr_cli reads it, whole
// or not at all: a reader never sees half a list.
func (l *lab) writeCommits() {
	l.t.Helper()
	b, err := json.MarshalIndent(map[string]any{"system": map[string]any{"configuration": map[string]any{"commit": l.commits}}}, "", "  ")
	if err != nil {
		l.t.Fatal(err)
	}
	writeAtomic(l.t, filepath.Join(l.switchDir, "commits.json"), b, 0o644)
}

// event is the event handler's input for lastChange: the real fixture, its
// last-change replaced and its options replaced by opts.
func (l *lab) event(lastChange time.Time, opts map[string]any, extra map[string]any) []byte {
	l.t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(testenv.ReadFixture(l.t, "eh-input-backup-last-change.json"), &ev); err != nil {
		l.t.Fatal(err)
	}
	paths, _ := ev["paths"].([]any)
	var p0 map[string]any
	if len(paths) > 0 {
		p0, _ = paths[0].(map[string]any)
	}
	if p0 == nil || p0["path"] != "system configuration last-change" {
		l.t.Fatalf("fixture eh-input-backup-last-change.json: no last-change path in %v", ev["paths"])
	}
	p0["value"] = lastChange.Format(srlTime)
	ev["options"] = opts
	for k, v := range extra {
		ev[k] = v
	}
	b, err := json.Marshal(ev)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// scriptOutput is what cfgsnap.py returns to the event handler.
type scriptOutput struct {
	Actions        []map[string]json.RawMessage `json:"actions"`
	PersistentData json.RawMessage              `json:"persistent-data"`
}

// memoryKey is the one persistent-data key of cfgsnap.py.
const memoryKey = "cfgsnap-last-change"

// remembers checks that the script's output remembers lastChange, and nothing
// else, in persistent-data. It returns that persistent-data, byte for byte, as
// extra members for l.event: the event handler passes it into the next
// invocation.
func remembers(t *testing.T, out scriptOutput, lastChange time.Time) map[string]any {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(out.PersistentData, &got); err != nil || len(got) != 1 || got[memoryKey] != lastChange.Format(srlTime) {
		t.Fatalf("cfgsnap.py returned persistent-data %s, want exactly {%q: %q}", out.PersistentData, memoryKey, lastChange.Format(srlTime))
	}
	return map[string]any{"persistent-data": out.PersistentData}
}

// handed decodes the event a run-script cmdline hands to the binary and
// returns what the binary reads of it: paths and options, as JSON.
func handed(t *testing.T, line string) string {
	t.Helper()
	_, h, _ := strings.Cut(line, " handle ")
	b, err := hex.DecodeString(h)
	var ev map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &ev)
	}
	if err != nil {
		t.Fatalf("cmdline %.120q: the hex is not an event: %v", line, err)
	}
	return string(ev["paths"]) + " " + string(ev["options"])
}

// runScript runs cfgsnap.py in MicroPython on input, as the event handler does;
// MicroPython sees the spool folder (for its pending file) as the switch would.
// It returns the output and what the script printed.
func (l *lab) runScript(input []byte) (scriptOutput, string) {
	l.t.Helper()
	args := []string{filepath.Join(l.repo, "eventhandler-scripts/upython/run.mjs")}
	if st, err := os.Stat(l.spool); err == nil && st.IsDir() {
		args = append(args, "--mirror", l.spool)
	}
	args = append(args, l.script)
	cmd := exec.Command(l.node, args...)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		l.t.Fatalf("cfgsnap.py in MicroPython: %v\nstderr: %s", err, stderr.Bytes())
	}
	var out scriptOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		l.t.Fatalf("cfgsnap.py returned %q, not the event handler's JSON output: %v", stdout.Bytes(), err)
	}
	return out, stderr.String()
}

// cmdline returns the run-script action's cmdline, and whether a
// reinvoke-with-delay action (and its delay) came with it.
func cmdline(t *testing.T, out scriptOutput) (line string, reinvoke int) {
	t.Helper()
	for _, a := range out.Actions {
		if raw, ok := a["run-script"]; ok {
			var rs struct {
				Cmdline string `json:"cmdline"`
			}
			if err := json.Unmarshal(raw, &rs); err != nil {
				t.Fatalf("run-script action %s: %v", raw, err)
			}
			line = rs.Cmdline
		}
		if raw, ok := a["reinvoke-with-delay"]; ok {
			if err := json.Unmarshal(raw, &reinvoke); err != nil {
				t.Fatalf("reinvoke-with-delay action %s: %v", raw, err)
			}
		}
	}
	if line == "" {
		t.Fatalf("cfgsnap.py returned no run-script action: %+v", out)
	}
	return line, reinvoke
}

// runCmdline runs a run-script cmdline as the event handler does, through
// /bin/sh -c exactly as returned, and checks what the instance state would
// show: exit 0 and one line saying the event is queued. It returns that line.
func (l *lab) runCmdline(line string) string {
	l.t.Helper()
	want := l.bin + " handle "
	if !strings.HasPrefix(line, want) {
		l.t.Fatalf("cmdline %.120q does not start %q (sudo false, binary %s)", line, want, l.bin)
	}
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = l.cwd
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		l.t.Fatalf("run-script: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	// The event handler kills run-script after about 10 s; handle must only queue.
	if took > 8*time.Second {
		l.t.Errorf("handle took %v; the event handler would have killed it", took)
	}
	out := strings.TrimSuffix(stdout.String(), "\n")
	if strings.Contains(out, "\n") || !strings.HasPrefix(out, "cfgsnap: queued last-change ") || !strings.Contains(out, "worker started") {
		l.t.Fatalf("handle printed %q, want one line \"cfgsnap: queued last-change ..., worker started; ...\"", stdout.String())
	}
	if stderr.Len() > 0 {
		l.t.Errorf("handle wrote to stderr: %s", stderr.Bytes())
	}
	l.t.Logf("handle returned in %v: %s", took.Round(time.Millisecond), out)
	return out
}

// workers lists the detached `cfgsnap work` processes of this lab's spool.
func (l *lab) workers() []int { return testenv.Workers(l.bin, l.spool) }

// waitWorker waits for the worker that handle started to finish. handle
// starts it before it returns, so no worker process means it is done.
func (l *lab) waitWorker() {
	l.t.Helper()
	start := time.Now()
	for len(l.workers()) > 0 {
		if time.Since(start) > workerBound {
			l.t.Fatalf("the worker still runs after %v\n%s", workerBound, l.diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Logf("worker done after %v; status: %s", time.Since(start).Round(time.Millisecond), l.status())
	if jobs, _ := filepath.Glob(filepath.Join(l.spool, "jobs", "*.json")); len(jobs) > 0 {
		l.t.Errorf("the worker finished but left %d events queued: %v\n%s", len(jobs), jobs, l.diag())
	}
}

// status is the spool's last-run report, as the next handle shows it.
func (l *lab) status() string {
	b, _ := os.ReadFile(filepath.Join(l.spool, "status"))
	return strings.TrimSuffix(string(b), "\n")
}

// pending is the content of the spool's pending file, which the script reads.
func (l *lab) pending() string {
	b, err := os.ReadFile(filepath.Join(l.spool, "pending"))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}

// spooled returns the contents of the snapshots waiting in the spool, oldest first.
func (l *lab) spooled() [][]byte {
	l.t.Helper()
	metas, _ := filepath.Glob(filepath.Join(l.spool, "snapshots", "*.meta"))
	slices.Sort(metas)
	var out [][]byte
	for _, m := range metas {
		b, err := os.ReadFile(strings.TrimSuffix(m, ".meta") + ".json")
		if err != nil {
			l.t.Errorf("spooled snapshot %s has no configuration: %v", filepath.Base(m), err)
			continue
		}
		out = append(out, b)
	}
	return out
}

// diag describes the lab's state for a failure message.
func (l *lab) diag() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\npending: %s\n", l.status(), l.pending())
	fmt.Fprintf(&b, "server files: %q\n", files(l.t, l.serverRoot))
	if log, err := os.ReadFile(filepath.Join(l.spool, "worker.log")); err == nil {
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		fmt.Fprintf(&b, "worker.log (end):\n%s", log)
	}
	return b.String()
}

// checkDelivered checks a snapshot on the server as a user would: there, the
// same bytes as the switch's running configuration, private.
func (l *lab) checkDelivered(path string, want []byte) {
	l.t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		l.t.Fatalf("the snapshot is not on the server: %v\n%s", err, l.diag())
	}
	if !bytes.Equal(got, want) {
		l.t.Errorf("%s: %d bytes, not byte for byte the switch's running.json (%d bytes)", path, len(got), len(want))
	}
	st, err := os.Stat(path)
	if err != nil {
		l.t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		l.t.Errorf("%s has mode %v, want 0600: a configuration holds password hashes and keys", path, st.Mode().Perm())
	}
}

// testCommits is the life of a switch: a commit backed up, a commit made while
// the backup server is down (kept, reported, retried), and the server back.
func testCommits(t *testing.T, s *suite, scheme, redeliver string) {
	l := newLab(t, s)
	target := l.targetURL(scheme, filepath.Join(l.serverRoot, "srv/backups"))
	opts := l.options(target)
	backups := filepath.Join(l.serverRoot, "srv", "backups")

	// 1. alice commits; the server is up.
	running := l.setRunning("leaf11", nil)
	lc := l.commit("alice", "describe ethernet-1/1")
	ev := l.event(lc, opts, nil)
	out, printed := l.runScript(ev)
	line, reinvoke := cmdline(t, out)
	// A new last-change (here the first run: no persistent-data) always gets
	// one reinvocation, though nothing is pending: the script reads pending
	// before the binary has tried to deliver.
	if reinvoke != 60000 || printed != "" {
		t.Errorf("first event: script asked for a reinvocation of %d ms and printed %q; want 60000 ms for a new last-change, and nothing printed", reinvoke, printed)
	}
	memory := remembers(t, out, lc)
	if got := l.runCmdline(line); !strings.HasSuffix(got, "last run: none") {
		t.Errorf("handle of the first event says %q, want it to end \"last run: none\"", got)
	}
	l.waitWorker()

	aliceRel := "leaf11/leaf11_" + lc.Format(tsLayout) + "_alice.json"
	alice := filepath.Join(backups, filepath.FromSlash(aliceRel))
	l.checkDelivered(alice, running)
	if got := files(t, l.serverRoot); !slices.Equal(got, []string{"srv/backups/" + aliceRel}) {
		t.Errorf("the server holds %q, want only srv/backups/%s (no hidden .part file)", got, aliceRel)
	}
	if p := l.pending(); p != "0" {
		t.Errorf("spool pending file says %s, want 0", p)
	}
	if st := l.status(); !strings.Contains(st, aliceRel) || !strings.Contains(st, "by alice") || !strings.Contains(st, "ok (1 delivered)") || !strings.HasSuffix(st, "; 0 pending") {
		t.Errorf("status %q: want it to name %s, by alice, ok (1 delivered), 0 pending", st, aliceRel)
	}
	if q := l.dns.Queries(); !slices.Contains(q, backupHost+". A") {
		t.Errorf("the management namespace's DNS server was asked %q, never %q: the name was not resolved in the namespace", q, backupHost+". A")
	}
	aliceStat, err := os.Stat(alice)
	if err != nil {
		t.Fatal(err)
	}

	// The reinvocation the first run asked for: the same event with the
	// persistent-data that run returned, as the event handler passes it. The
	// last-change is not new and alice's snapshot is delivered, nothing is
	// pending: no further reinvocation. (Its run-script, which the binary
	// deduplicates, is exercised after bob's commit below.)
	out, printed = l.runScript(l.event(lc, opts, memory))
	againLine, reinvoke := cmdline(t, out)
	if reinvoke != 0 || printed != "" {
		t.Errorf("reinvocation after the first event: script asked for a reinvocation (%d ms) or printed %q; nothing was pending", reinvoke, printed)
	}
	memory = remembers(t, out, lc)
	if handed(t, againLine) != handed(t, line) {
		t.Errorf("the reinvocation's cmdline hands the binary other paths or options than the first event's: it could not dedupe it")
	}

	// 2. The server goes down; bob commits a change.
	l.srv.Stop()
	running2 := l.setRunning("leaf11", func(cfg map[string]any) {
		sys := cfg["srl_nokia-system:system"].(map[string]any)
		sys["srl_nokia-system-banner:banner"] = map[string]any{"login-banner": "changed by bob while the backup server was down"}
	})
	lc2 := l.commit("bob", "login banner")
	// The event handler passes the persistent-data of the run before.
	ev2 := l.event(lc2, opts, memory)
	out, printed = l.runScript(ev2)
	line, reinvoke = cmdline(t, out)
	if reinvoke != 60000 || printed != "" {
		t.Errorf("second event: script asked for a reinvocation of %d ms and printed %q; want 60000 ms for a new last-change, though nothing was pending yet", reinvoke, printed)
	}
	memory = remembers(t, out, lc2)
	if got := l.runCmdline(line); !strings.Contains(got, "last run: captured "+aliceRel) {
		t.Errorf("handle of the second event says %q; the instance state should show the last run (alice's capture)", got)
	}
	l.waitWorker()

	bobRel := "leaf11/leaf11_" + lc2.Format(tsLayout) + "_bob.json"
	bob := filepath.Join(backups, filepath.FromSlash(bobRel))
	if p := l.pending(); p != "1" {
		t.Errorf("server down: spool pending file says %s, want 1 (bob's snapshot kept)\n%s", p, l.diag())
	}
	if st := l.status(); !strings.Contains(st, bobRel) || !strings.Contains(st, "by bob") || !strings.Contains(st, "FAILED") || !strings.HasSuffix(st, "; 1 pending") {
		t.Errorf("server down: status %q, want it to name %s by bob, say FAILED and 1 pending", st, bobRel)
	}
	if sp := l.spooled(); len(sp) != 1 || !bytes.Equal(sp[0], running2) {
		t.Errorf("server down: the spool holds %d snapshots, want exactly bob's running.json (%d bytes)", len(sp), len(running2))
	}
	if _, err := os.Stat(bob); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bob's snapshot is on the server though the server was down: %v", err)
	}

	// The reinvocation the second run asked for: the same event with the
	// persistent-data that run returned. The last-change is not new, but a
	// snapshot waits: it asks to be called again.
	out, printed = l.runScript(l.event(lc2, opts, memory))
	retryLine, reinvoke := cmdline(t, out)
	if reinvoke != 60000 || printed != "" {
		t.Errorf("reinvocation with 1 pending: the script's actions are %+v and it printed %q, want a reinvoke-with-delay of 60000 ms and nothing printed", out.Actions, printed)
	}
	memory = remembers(t, out, lc2)
	if handed(t, retryLine) != handed(t, line) {
		t.Errorf("the reinvocation's cmdline hands the binary other paths or options than the event's: it could not dedupe it")
	}

	// 3. The server is back.
	l.srv.Start()
	switch redeliver {
	case "reinvoke":
		// The reinvocation repeats the same input: the binary sees nothing
		// new to capture and delivers what waits.
		if got := l.runCmdline(retryLine); !strings.Contains(got, "FAILED") {
			t.Errorf("handle of the reinvocation says %q; the instance state should show the failed last run", got)
		}
		l.waitWorker()
		if st := l.status(); !strings.Contains(st, "configuration unchanged since the last capture") || !strings.Contains(st, "ok (1 delivered)") || !strings.HasSuffix(st, "; 0 pending") {
			t.Errorf("after the reinvocation, status %q: want unchanged configuration, ok (1 delivered), 0 pending", st)
		}
	case "flush":
		optsFile := filepath.Join(t.TempDir(), "options.json")
		b, _ := json.Marshal(opts)
		write(t, optsFile, b, 0o600)
		cmd := exec.Command(l.bin, "flush", "--options", optsFile)
		cmd.Dir = l.cwd
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cfgsnap flush: %v\nstdout: %s\nstderr: %s\n%s", err, stdout.Bytes(), stderr.Bytes(), l.diag())
		}
		if got := stdout.String(); !strings.Contains(got, "ok (1 delivered)") || !strings.HasSuffix(got, "; 0 pending\n") {
			t.Errorf("cfgsnap flush printed %q, want ok (1 delivered) and 0 pending", got)
		}
	}
	l.checkDelivered(bob, running2)
	if p := l.pending(); p != "0" {
		t.Errorf("after redelivery, spool pending file says %s, want 0", p)
	}
	if sp := l.spooled(); len(sp) != 0 {
		t.Errorf("after redelivery, %d snapshots are still spooled", len(sp))
	}
	if got, want := files(t, l.serverRoot), []string{"srv/backups/" + aliceRel, "srv/backups/" + bobRel}; !slices.Equal(got, want) {
		t.Errorf("the server holds %q, want %q", got, want)
	}
	if b, err := os.ReadFile(alice); err != nil || !bytes.Equal(b, running) {
		t.Errorf("alice's snapshot changed after bob's delivery: %v", err)
	} else if st, err := os.Stat(alice); err != nil || !st.ModTime().Equal(aliceStat.ModTime()) {
		t.Errorf("alice's snapshot was rewritten after bob's delivery: %v", err)
	}
	// Nothing waits now: the next reinvocation, with the persistent-data the
	// last run returned, stops asking to be called again.
	out, printed = l.runScript(l.event(lc2, opts, memory))
	if _, reinvoke := cmdline(t, out); reinvoke != 0 || printed != "" {
		t.Errorf("reinvocation with 0 pending: the script still asks for a reinvocation (%+v) or printed %q", out.Actions, printed)
	}
	remembers(t, out, lc2)
}

// testEveryDestination is one switch backed up to every kind of destination
// at once: each event carries four targets (values [ ... ]), a webhook, a git
// repository over SSH, one over smart HTTP and an S3 bucket, each a real server
// in the backup host's namespace, named by a host name only the management
// namespace's DNS responder knows. What is checked is what their owners see on
// the servers: git log and git show on the bare repositories, the object in
// the gateway's folder and through S3, the body the receiver got and its
// signature. Then a change (git summarises it, the webhook counts it), a
// reboot (same configuration, new last-change: no git commit), and a commit
// while the S3 server is down (the others take it; the retry goes to S3 alone).
func testEveryDestination(t *testing.T, s *suite) {
	testenv.NeedCommand(t, "git")
	testenv.NeedCommand(t, gitHTTPBackend)
	gwBin := versitygw(t)
	l := newLab(t, s)
	start := time.Now()

	// git over SSH: a bare repository on the backup host, reached through its sshd.
	sshRepo := newBareRepo(t, filepath.Join(l.serverRoot, "srv/git/configs.git"))
	sshTarget := l.targetURL("git+ssh", sshRepo.dir)
	// git over smart HTTP: git-http-backend, behind a listener in the server namespace.
	httpRoot := filepath.Join(l.serverRoot, "srv/git-http")
	httpRepo := newBareRepo(t, filepath.Join(httpRoot, "configs.git"))
	var gitRequests atomic.Int64
	backend := gitHTTP(t, httpRoot)
	httpPort := l.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gitRequests.Add(1)
		backend.ServeHTTP(w, r)
	}))
	httpTarget := "http://" + net.JoinHostPort(gitHost, strconv.Itoa(httpPort)) + "/configs.git"
	// S3: versitygw with its posix backend, run inside the server namespace.
	gw := startGateway(t, l, gwBin)
	const bucket, prefix = "configs", "srl"
	gw.makeBucket(bucket)
	s3Target := "s3://" + bucket + "/" + prefix + "?endpoint=" + net.JoinHostPort(s3Host, gatewayPort) + "&tls=false"
	// The webhook receiver, a listener in the server namespace.
	hook := &hookReceiver{}
	hookTarget := "http://" + net.JoinHostPort(hookHost, strconv.Itoa(l.serve(hook))) + "/hook/cfgsnap/leaf11"

	keys := l.spool // the instance may name secrets only in cfgsnap's folder
	secret := "whsec-" + hex.EncodeToString(randomBytes(16))
	write(t, filepath.Join(keys, "webhook-secret"), []byte(secret+"\n"), 0o600)
	write(t, filepath.Join(keys, "s3-access"), []byte(gw.access+"\n"), 0o600)
	write(t, filepath.Join(keys, "s3-secret"), []byte(gw.secret+"\n"), 0o600)
	// The webhook first: notifications still go after the stores, so that it
	// can say where the snapshot is.
	opts := l.options(hookTarget, sshTarget, httpTarget, s3Target)
	opts["author-email"] = "{user}+{host}@noc.example"
	opts["webhook-secret-file"] = filepath.Join(keys, "webhook-secret")
	opts["s3-access-key-file"] = filepath.Join(keys, "s3-access")
	opts["s3-secret-key-file"] = filepath.Join(keys, "s3-secret")
	repos := map[string]*bareRepo{"git over SSH": sshRepo, "git over HTTP": httpRepo}
	t.Logf("servers up in %v: %s, %s, %s, %s", time.Since(start).Round(time.Millisecond), hookTarget, sshTarget, httpTarget, s3Target)

	// checkRun checks the run's report: each target in want ok with one
	// delivery, the webhook last, and the pending count, in the spool's
	// pending file too.
	checkRun := func(step string, want []string, pending int) {
		t.Helper()
		st := l.status()
		last := -1
		for _, tg := range want {
			i := strings.Index(st, "; "+tg+" ok (1 delivered)")
			if i < 0 {
				t.Errorf("%s: the report does not say %s ok (1 delivered):\n%s", step, tg, st)
			}
			last = max(last, i)
		}
		if i := strings.Index(st, hookTarget); i >= 0 && i < last {
			t.Errorf("%s: the report names the webhook before a store; notifications go last:\n%s", step, st)
		}
		if !strings.HasSuffix(st, fmt.Sprintf("; %d pending", pending)) || l.pending() != strconv.Itoa(pending) {
			t.Errorf("%s: report %q, pending file %s; want %d pending", step, st, l.pending(), pending)
		}
	}
	everyTarget := []string{sshTarget, httpTarget, s3Target, hookTarget}

	// 1. alice commits: one event to the four targets.
	running := l.setRunning("leaf11", nil)
	lc := l.commit("alice", "describe ethernet-1/1")
	step := time.Now()
	memory := l.fire(lc, opts, nil)
	t.Logf("alice's commit, to four targets: %v", time.Since(step).Round(time.Millisecond))
	aliceName := "leaf11/leaf11_" + lc.Format(tsLayout) + "_alice.json"
	checkRun("alice's commit", everyTarget, 0)
	// The first snapshot holds every commit the switch lists: the boot commit and alice's.
	if st := l.status(); !strings.HasPrefix(st, "captured "+aliceName+" (commits 1 by admin, 2 by alice)") {
		t.Errorf("the report starts %q; want it to name %s (commits 1 by admin, 2 by alice)", st, aliceName)
	}
	for _, h := range []string{backupHost, gitHost, s3Host, hookHost} {
		if q := l.dns.Queries(); !slices.Contains(q, h+". A") {
			t.Errorf("the management namespace's DNS server was asked %q, never %q: %s was not reached through the namespace", q, h+". A", h)
		}
	}
	for what, r := range repos {
		r.checkTip(what, 1, gitCommit{user: "alice", email: "alice+leaf11@noc.example", host: "leaf11", lastChange: lc,
			subject: "leaf11: commit 2 by alice: describe ethernet-1/1", body: []string{"Changes: first snapshot of this file on branch main"}}, running)
	}
	s3Key := func(name string) string { return prefix + "/" + name }
	gw.checkObject(bucket, s3Key(aliceName), running, "alice")
	body := hook.check(t, 1, secret, running, lc, "alice", aliceName)
	if body.Changes != nil {
		t.Errorf("the webhook's first body has changes %+v; the first snapshot has nothing to compare with", body.Changes)
	}
	if c := body.Commits; len(c) != 2 || c[0].ID != 1 || c[1].ID != 2 || c[1].Username != "alice" {
		t.Errorf("the webhook's commits are %+v, want commits 1 by admin and 2 by alice", c)
	}
	// stored: every store, as its location, so a receiver can fetch from it.
	s3Location := "s3://" + bucket + "/" + s3Key(aliceName) + "?endpoint=" + net.JoinHostPort(s3Host, gatewayPort) + "&tls=false"
	checkStored(t, "alice's webhook", body.Stored, []string{sshTarget, httpTarget}, s3Location)

	// 2. bob changes the login banner.
	running2 := l.setRunning("leaf11", func(cfg map[string]any) {
		sys := cfg["srl_nokia-system:system"].(map[string]any)
		sys["srl_nokia-system-banner:banner"] = map[string]any{"login-banner": "changed by bob"}
	})
	lc2 := l.commit("bob", "login banner")
	step = time.Now()
	memory = l.fire(lc2, opts, memory)
	t.Logf("bob's commit: %v", time.Since(step).Round(time.Millisecond))
	bobName := "leaf11/leaf11_" + lc2.Format(tsLayout) + "_bob.json"
	checkRun("bob's commit", everyTarget, 0)
	for what, r := range repos {
		msg := r.checkTip(what, 2, gitCommit{user: "bob", email: "bob+leaf11@noc.example", host: "leaf11", lastChange: lc2,
			subject: "leaf11: commit 3 by bob: login banner", body: []string{"Last change: " + lc2.Format(srlTime) + "\n"}}, running2)
		var added, removed, changed int
		_, err := fmt.Sscanf(msg[strings.Index(msg, "\nChanges: ")+1:], "Changes: %d added, %d removed, %d changed\n", &added, &removed, &changed)
		if err != nil || added+removed+changed == 0 || !strings.Contains(msg, "banner") {
			t.Errorf("%s: bob's commit message has no change summary naming the banner:\n%s", what, msg)
		}
		if diff := r.git("show", "--format=", "main"); !strings.Contains(diff, "+") || !strings.Contains(diff, "changed by bob") {
			t.Errorf("%s: git show has no diff of bob's change:\n%.600s", what, diff)
		}
		if got := r.git("log", "--format=%an", "--", "leaf11.json"); got != "bob\nalice\n" {
			t.Errorf("%s: git log leaf11.json shows the authors %q, want bob, then alice", what, got)
		}
	}
	gw.checkObject(bucket, s3Key(aliceName), running, "alice")
	gw.checkObject(bucket, s3Key(bobName), running2, "bob")
	body = hook.check(t, 2, secret, running2, lc2, "bob", bobName)
	if c := body.Changes; c == nil || c.Added+c.Removed+c.Changed == 0 || !slices.ContainsFunc(c.Paths, func(p string) bool { return strings.Contains(p, "banner") }) {
		t.Errorf("the webhook's body for bob's change has changes %+v; want non-zero counts naming the banner", c)
	}

	// 3. The switch reboots: a new last-change, the same configuration, and a
	// commit list that starts again at the boot commit. The snapshot is taken
	// and stored, named for the boot commit; git makes no commit.
	heads := map[string]string{}
	for what, r := range repos {
		heads[what] = r.git("rev-parse", "main")
	}
	lc3 := l.reboot()
	step = time.Now()
	memory = l.fire(lc3, opts, memory)
	t.Logf("reboot, configuration unchanged: %v", time.Since(step).Round(time.Millisecond))
	rebootName := "leaf11/leaf11_" + lc3.Format(tsLayout) + "_admin.json"
	checkRun("reboot", everyTarget, 0)
	for what, r := range repos {
		if head := r.git("rev-parse", "main"); head != heads[what] || r.count() != 2 {
			t.Errorf("%s: the reboot's unchanged configuration moved main from %s to %s (%d commits); want no new commit", what, strings.TrimSpace(heads[what]), strings.TrimSpace(head), r.count())
		}
		r.fsck(what)
	}
	gw.checkObject(bucket, s3Key(rebootName), running2, "admin")
	body = hook.check(t, 3, secret, running2, lc3, "admin", rebootName)
	if c := body.Changes; c == nil || !(c.Added == 0 && c.Removed == 0 && c.Changed == 0) {
		t.Errorf("the webhook's body for the reboot has changes %+v; want 0 added, 0 removed, 0 changed", c)
	}

	// 4. The S3 server goes down; carol commits. The other targets take her
	// snapshot; S3 fails, and it stays spooled for S3 alone.
	gw.stop()
	running4 := l.setRunning("leaf11", func(cfg map[string]any) {
		sys := cfg["srl_nokia-system:system"].(map[string]any)
		sys["srl_nokia-system-banner:banner"] = map[string]any{"login-banner": "changed by carol while S3 was down"}
	})
	lc4 := l.commit("carol", "banner again")
	step = time.Now()
	memory = l.fire(lc4, opts, memory)
	t.Logf("carol's commit, S3 down: %v", time.Since(step).Round(time.Millisecond))
	carolName := "leaf11/leaf11_" + lc4.Format(tsLayout) + "_carol.json"
	checkRun("carol's commit, S3 down", []string{sshTarget, httpTarget, hookTarget}, 1)
	if st := l.status(); !strings.Contains(st, "; "+s3Target+" FAILED after 0 delivered: ") {
		t.Errorf("S3 down: the report %q does not say %s FAILED", st, s3Target)
	}
	if sp := l.spooled(); len(sp) != 1 || !bytes.Equal(sp[0], running4) {
		t.Errorf("S3 down: %d snapshots spooled, want carol's alone", len(sp))
	}
	for what, r := range repos {
		r.checkTip(what, 3, gitCommit{user: "carol", email: "carol+leaf11@noc.example", host: "leaf11", lastChange: lc4,
			subject: "leaf11: commit 2 by carol: banner again"}, running4)
	}
	body = hook.check(t, 4, secret, running4, lc4, "carol", carolName)
	checkStored(t, "carol's webhook, S3 down", body.Stored, []string{sshTarget, httpTarget}, "")

	// The S3 server is back; the reinvocation the script asked for delivers
	// carol's snapshot to S3, and to nothing else: no request reaches the
	// other servers, no other name is even looked up.
	gw.start()
	out, printed := l.runScript(l.event(lc4, opts, memory))
	retry, reinvoke := cmdline(t, out)
	if reinvoke != 60000 || printed != "" {
		t.Errorf("reinvocation with 1 pending: actions %+v, printed %q; want a reinvoke-with-delay of 60000 ms", out.Actions, printed)
	}
	remembers(t, out, lc4)
	queries, gitBefore := len(l.dns.Queries()), gitRequests.Load()
	step = time.Now()
	l.runCmdline(retry)
	l.waitWorker()
	t.Logf("retry to S3 alone: %v", time.Since(step).Round(time.Millisecond))
	if st := l.status(); st != "configuration unchanged since the last capture; "+s3Target+" ok (1 delivered); 0 pending" {
		t.Errorf("after the retry, the report is %q; want the unchanged configuration, %s ok (1 delivered) and nothing else, 0 pending", st, s3Target)
	}
	if p := l.pending(); p != "0" {
		t.Errorf("after the retry, the pending file says %s, want 0", p)
	}
	gw.checkObject(bucket, s3Key(carolName), running4, "carol")
	var want []string
	for _, n := range []string{aliceName, bobName, rebootName, carolName} {
		want = append(want, s3Key(n), s3Key(n)+".rec.json") // each with its record (see Signed records)
	}
	if got := gw.objects(bucket); !slices.Equal(got, want) {
		t.Errorf("the bucket holds %q; want the four snapshots, each with its record", got)
	}
	if n := gitRequests.Load() - gitBefore; n != 0 {
		t.Errorf("the retry sent %d requests to the git HTTP server, which had carol's snapshot", n)
	}
	if n := len(hook.all()); n != 4 {
		t.Errorf("the webhook received %d posts, want 4: the retry re-sent carol's", n)
	}
	for _, q := range l.dns.Queries()[queries:] {
		if !strings.HasPrefix(q, s3Host+". ") {
			t.Errorf("the retry looked up %q: it went to a target other than S3", q)
		}
	}
	for what, r := range repos {
		if n := r.count(); n != 3 {
			t.Errorf("%s: %d commits after the retry, want 3", what, n)
		}
		r.fsck(what)
	}
	t.Logf("every destination, four events and a retry: %v in all", time.Since(start).Round(time.Millisecond))
}

// fire is the event of a new last-change as the event handler runs it:
// cfgsnap.py on it, with the persistent-data of the run before (which asks for
// one reinvocation, a new last-change always does), then the run-script it
// returns through /bin/sh, then the worker to its end. It returns the
// persistent-data for the next invocation.
func (l *lab) fire(lc time.Time, opts, memory map[string]any) map[string]any {
	l.t.Helper()
	out, printed := l.runScript(l.event(lc, opts, memory))
	line, reinvoke := cmdline(l.t, out)
	if reinvoke != 60000 || printed != "" {
		l.t.Errorf("event of %s: cfgsnap.py asked for a reinvocation of %d ms and printed %q; want 60000 ms for a new last-change, and nothing printed", lc.Format(srlTime), reinvoke, printed)
	}
	memory = remembers(l.t, out, lc)
	l.runCmdline(line)
	l.waitWorker()
	return memory
}

// serve serves h over HTTP on a listener inside the server namespace, at its
// address, until the test ends, and returns the port.
func (l *lab) serve(h http.Handler) int {
	l.t.Helper()
	ln := nstest.Listen(l.t, l.pair.Server, netip.AddrPortFrom(l.pair.ServerIP, 0).String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	l.t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// checkStored checks a webhook's stored list: the switch's file in each git
// repository (target#branch:path) and, if s3 is set, that S3 location.
func checkStored(t *testing.T, what string, stored, gits []string, s3 string) {
	t.Helper()
	want := len(gits)
	if s3 != "" {
		want++
		if !slices.Contains(stored, s3) {
			t.Errorf("%s: stored %q lacks the S3 object %s", what, stored, s3)
		}
	}
	if len(stored) != want {
		t.Errorf("%s: stored lists %d locations %q, want %d, one per store that has the snapshot", what, len(stored), stored, want)
	}
	for _, g := range gits {
		if !slices.Contains(stored, g+"#main:leaf11.json") {
			t.Errorf("%s: stored %q does not name %s#main:leaf11.json", what, stored, g)
		}
	}
}

// gitHTTPBackend is git's own smart-HTTP server, run as a CGI program.
const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitHTTP serves the repositories below root with git-http-backend.
func gitHTTP(t *testing.T, root string) http.Handler {
	return &cgi.Handler{
		Path: gitHTTPBackend,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
		Stderr: logWriter{t},
	}
}

// logWriter sends what a server writes to stderr to the test's log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("git-http-backend: %s", bytes.TrimSpace(p))
	return len(p), nil
}

// bareRepo is a bare repository on the backup host, read with the git CLI as
// its owner would. Like a careful server, it checks every object it receives
// and refuses non-fast-forward pushes, so nothing passes by force pushing.
type bareRepo struct {
	t   *testing.T
	dir string
}

func newBareRepo(t *testing.T, dir string) *bareRepo {
	t.Helper()
	r := &bareRepo{t: t, dir: dir}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	gitRun(t, "init", "-q", "--bare", "-b", "main", dir)
	for _, kv := range [][2]string{
		{"http.receivepack", "true"}, // pushes without authentication over HTTP
		{"receive.denyNonFastForwards", "true"},
		{"receive.denyDeletes", "true"},
		{"receive.fsckObjects", "true"},
	} {
		r.git("config", kv[0], kv[1])
	}
	return r
}

func (r *bareRepo) git(args ...string) string {
	r.t.Helper()
	return gitRun(r.t, append([]string{"--git-dir=" + r.dir}, args...)...)
}

// count is the number of commits on main, 0 before the first.
func (r *bareRepo) count() int {
	r.t.Helper()
	cmd := exec.Command("git", "--git-dir="+r.dir, "rev-list", "--count", "refs/heads/main")
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func (r *bareRepo) fsck(what string) {
	r.t.Helper()
	cmd := exec.Command("git", "--git-dir="+r.dir, "fsck", "--strict", "--no-progress", "--no-dangling")
	cmd.Env = gitEnv()
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		r.t.Errorf("%s: git fsck --strict: %v\n%s", what, err, out)
	}
}

// gitCommit is what a snapshot's commit should show.
type gitCommit struct {
	user, email, host string
	lastChange        time.Time
	subject           string   // the message's first line
	body              []string // parts the message holds
}

// checkTip checks main as git log and git show present it: n commits, the
// newest by the switch user (committed by cfgsnap), dated last-change, with
// the subject want says, and the switch's one file byte for byte its running
// configuration; the repository passes git fsck --strict. It returns the
// newest commit's message.
func (r *bareRepo) checkTip(what string, n int, want gitCommit, running []byte) string {
	r.t.Helper()
	if got := r.count(); got != n {
		r.t.Fatalf("%s: main has %d commits, want %d", what, got, n)
	}
	date := want.lastChange.Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
	wantMeta := strings.Join([]string{want.user, want.email, date, "cfgsnap", "cfgsnap@" + want.host, date}, "|")
	if got := strings.TrimSpace(r.git("log", "-1", "--format=%an|%ae|%aI|%cn|%ce|%cI", "main")); got != wantMeta {
		r.t.Errorf("%s: the newest commit's author|email|date|committer|email|date:\n got %s\nwant %s", what, got, wantMeta)
	}
	msg := r.git("log", "-1", "--format=%B", "main")
	if subject, _, _ := strings.Cut(msg, "\n"); subject != want.subject {
		r.t.Errorf("%s: the newest commit's subject is %q, want %q", what, subject, want.subject)
	}
	sum := sha256.Sum256(running)
	for _, part := range append([]string{"SHA-256: " + hex.EncodeToString(sum[:]) + "\n"}, want.body...) {
		if !strings.Contains(msg, part) {
			r.t.Errorf("%s: the commit message lacks %q:\n%s", what, part, msg)
		}
	}
	if got := strings.Fields(r.git("ls-tree", "-r", "--name-only", "main")); !slices.Equal(got, []string{want.host + ".json"}) {
		r.t.Errorf("%s: main holds %q, want only %s.json", what, got, want.host)
	}
	if got := r.git("show", "main:"+want.host+".json"); got != string(running) {
		r.t.Errorf("%s: git show main:%s.json gives %d bytes, not byte for byte the switch's running.json (%d bytes)", what, want.host, len(got), len(running))
	}
	r.fsck(what)
	return msg
}

// gitEnv keeps the machine's git configuration from changing what the test sees.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
}

func gitRun(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = gitEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String()
}

// hookReceiver is the webhook's receiver: it keeps every request and answers 204.
type hookReceiver struct {
	mu    sync.Mutex
	posts []hookPost
}

type hookPost struct {
	method, path, contentType, signature string
	body                                 []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.posts = append(h.posts, hookPost{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Cfgsnap-Signature"), b})
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) all() []hookPost {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.posts)
}

// hookBody is the webhook's body (webhook-format json), as a receiver reads it.
type hookBody struct {
	Schema     string    `json:"schema"`
	Host       string    `json:"host"`
	LastChange time.Time `json:"last_change"`
	User       string    `json:"user"`
	Commits    []struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	} `json:"commits"`
	Manual  bool   `json:"manual"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Changes *struct {
		Added   int      `json:"added"`
		Removed int      `json:"removed"`
		Changed int      `json:"changed"`
		Paths   []string `json:"paths"`
	} `json:"changes"`
	Stored []string `json:"stored"`
	Config *string  `json:"config"`
}

// check checks that the receiver holds n posts, the last a signed JSON POST
// announcing the snapshot name of config, taken at lastChange, by user, and
// returns its body.
func (h *hookReceiver) check(t *testing.T, n int, secret string, config []byte, lastChange time.Time, user, name string) hookBody {
	t.Helper()
	posts := h.all()
	if len(posts) != n {
		t.Fatalf("the webhook received %d posts, want %d", len(posts), n)
	}
	p := posts[n-1]
	if p.method != http.MethodPost || p.path != "/hook/cfgsnap/leaf11" || p.contentType != "application/json" {
		t.Errorf("the webhook got %s %s (Content-Type %q), want a POST of application/json to /hook/cfgsnap/leaf11", p.method, p.path, p.contentType)
	}
	// As a receiver checks it: the HMAC of the exact body, under the shared secret.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(p.body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(p.signature), []byte(want)) {
		t.Errorf("X-Cfgsnap-Signature is %q, want %s (HMAC-SHA256 of the body under the secret)", p.signature, want)
	}
	var b hookBody
	if err := json.Unmarshal(p.body, &b); err != nil {
		t.Fatalf("the webhook's body is not JSON: %v\n%s", err, p.body)
	}
	sum := sha256.Sum256(config)
	if b.Schema != "cfgsnap.snapshot.v1" || b.Host != "leaf11" || !b.LastChange.Equal(lastChange) || b.User != user || b.Name != name || b.Manual ||
		b.Size != int64(len(config)) || b.SHA256 != hex.EncodeToString(sum[:]) || b.Config != nil {
		t.Errorf("the webhook's body:\n%s\nwant schema cfgsnap.snapshot.v1, host leaf11, last_change %s, user %s, name %s, size %d, sha256 %x, no config", p.body, lastChange.Format(srlTime), user, name, len(config), sum)
	}
	return b
}

// gateway is versitygw with its posix backend, run in the server namespace on
// gatewayPort, with random keys.
type gateway struct {
	t              *testing.T
	args           []string
	ns             string
	dir            string // the posix root: one folder per bucket
	access, secret string
	logPath        string
	net            *netns.Net // the server namespace, where the test's S3 client dials
	addr           string     // the server's address and gatewayPort
	client         *minio.Client

	cmd    *exec.Cmd
	exited chan struct{}
}

// gatewayPort is free in the server namespace: its other listeners take
// ephemeral ports.
const gatewayPort = "9000"

// versitygw finds the gateway where make test-deps installs it, or on PATH.
func versitygw(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			bin := filepath.Join(p, "bin", "versitygw")
			if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return bin
			}
		}
	}
	return testenv.NeedCommand(t, "versitygw")
}

func startGateway(t *testing.T, l *lab, bin string) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{t: t, ns: l.pair.Server, dir: filepath.Join(dir, "root"), logPath: filepath.Join(dir, "versitygw.log"),
		access: "AK" + hex.EncodeToString(randomBytes(8)), secret: hex.EncodeToString(randomBytes(20)),
		addr: net.JoinHostPort(l.pair.ServerIP.String(), gatewayPort)}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	g.args = []string{bin, "--access", g.access, "--secret", g.secret, "--port", g.addr, "--quiet", "--keep-alive", "posix", g.dir}
	var err error
	if g.net, err = netns.Open(l.pair.Server); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: g.net.DialContext}
	if g.client, err = minio.New(g.addr, &minio.Options{Creds: credentials.NewStaticV4(g.access, g.secret, ""), Transport: tr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.stop()
		tr.CloseIdleConnections()
		g.net.Close()
		if t.Failed() {
			if b, err := os.ReadFile(g.logPath); err == nil && len(b) > 0 {
				t.Logf("versitygw log:\n%s", b)
			}
		}
	})
	g.start()
	return g
}

// start runs the gateway (again, after stop, on the same folder) and waits
// until it listens.
func (g *gateway) start() {
	g.t.Helper()
	logf, err := os.OpenFile(g.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		g.t.Fatal(err)
	}
	defer logf.Close()
	cmd := nstest.Command(g.ns, g.args[0], g.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test binary, even one that dies before its cleanups.
	// The signal comes when the thread that started it ends, and this test
	// ends threads (those that entered a namespace): so it is started, and
	// waited for, on a thread of its own that lives as long as the gateway.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the gateway
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
			close(exited)
		}
	}()
	if err := <-started; err != nil {
		g.t.Fatal(err)
	}
	g.cmd, g.exited = cmd, exited
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case <-exited:
			g.cmd = nil
			b, _ := os.ReadFile(g.logPath)
			g.t.Fatalf("versitygw exited at start: %s", b)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := g.net.DialContext(ctx, "tcp", g.addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			g.stop()
			g.t.Fatalf("versitygw does not listen on %s in %s: %v", g.addr, g.ns, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the gateway, as when the host goes down.
func (g *gateway) stop() {
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Kill()
	<-g.exited
	g.cmd = nil
}

func (g *gateway) makeBucket(bucket string) {
	g.t.Helper()
	if err := g.client.MakeBucket(g.t.Context(), bucket, minio.MakeBucketOptions{}); err != nil {
		g.t.Fatalf("creating bucket %s: %v", bucket, err)
	}
}

// checkObject checks an object as the bucket's owner sees it: in the
// gateway's folder and through S3, byte for byte config, with the snapshot's
// user and sha256 as metadata.
func (g *gateway) checkObject(bucket, key string, config []byte, user string) {
	g.t.Helper()
	ctx := g.t.Context()
	if b, err := os.ReadFile(filepath.Join(g.dir, bucket, filepath.FromSlash(key))); err != nil {
		g.t.Errorf("S3: %s is not in the gateway's folder: %v", key, err)
	} else if !bytes.Equal(b, config) {
		g.t.Errorf("S3: %s in the gateway's folder has %d bytes, not byte for byte the switch's running.json (%d bytes)", key, len(b), len(config))
	}
	obj, err := g.client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		g.t.Fatalf("S3: GET %s: %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		g.t.Fatalf("S3: GET %s: %v", key, err)
	}
	if !bytes.Equal(b, config) {
		g.t.Errorf("S3: GET %s gives %d bytes, not byte for byte the switch's running.json (%d bytes)", key, len(b), len(config))
	}
	st, err := obj.Stat()
	if err != nil {
		g.t.Fatalf("S3: %s: %v", key, err)
	}
	meta := map[string]string{}
	for k, v := range st.UserMetadata {
		meta[strings.ToLower(k)] = v
	}
	sum := sha256.Sum256(config)
	if meta["user"] != user || meta["sha256"] != hex.EncodeToString(sum[:]) || meta["host"] != "leaf11" {
		g.t.Errorf("S3: %s has metadata %v; want host leaf11, user %s, sha256 %x", key, st.UserMetadata, user, sum)
	}
}

// objects lists the bucket's keys, sorted.
func (g *gateway) objects(bucket string) []string {
	g.t.Helper()
	var keys []string
	for o := range g.client.ListObjectsIter(g.t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			g.t.Fatalf("S3: listing %s: %v", bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// testKill kills cfgsnap during large SFTP transfers: the file on the server is
// never partial, nothing in the spool is lost, and a final flush completes it.
func testKill(t *testing.T, s *suite) {
	l := newLab(t, s)
	target := l.targetURL("sftp", filepath.Join(l.serverRoot, "srv/backups"))
	backups := filepath.Join(l.serverRoot, "srv", "backups")

	// A large configuration: leaf11 with 30,000 more ports, each with a long
	// description, ~33 MB. Spliced in as text: encoding/json under the race
	// detector would take seconds.
	running := l.setRunning("leaf11", nil)
	list := []byte(`"srl_nokia-interfaces:interface": [`)
	at := bytes.Index(running, list)
	if at < 0 {
		t.Fatalf("running.json has no %s", list)
	}
	at += len(list)
	running = slices.Concat(running[:at], morePorts(30000, 1000), running[at:])
	write(t, filepath.Join(l.switchDir, "running.json"), running, 0o644)
	size := int64(len(running))
	t.Logf("running.json: %d bytes", size)

	optsFile := filepath.Join(t.TempDir(), "options.json")
	b, _ := json.Marshal(map[string]any{
		"netns": l.pair.Switch, "known-hosts": l.knownHosts, "identity": l.identity,
		"sr-cli": filepath.Join(l.switchDir, "sr_cli"), "spool-dir": l.spool,
	})
	write(t, optsFile, b, 0o600)

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CFGSNAP_E2E_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	t.Logf("kill points from seed %d (CFGSNAP_E2E_SEED=%d repeats them)", seed, seed)
	// Where to kill, as the share of the snapshot sent: the first trial is a
	// manual snapshot (it also spools the configuration), the others flushes of
	// it; the last (share 1) waits until the server holds every byte in the
	// temporary file, to hit the sync, the rename and the spool's bookkeeping.
	fracs := []float64{0.05 + 0.45*rng.Float64(), 0.05 + 0.9*rng.Float64(), 0.05 + 0.9*rng.Float64(), 1}

	var final string // the snapshot's name below the target, known once its .part shows
	nameRE := regexp.MustCompile(`^leaf11/leaf11_\d{8}T\d{6}\.\d{3}Z_carol\.json$`)
	for i, frac := range fracs {
		args := []string{"flush", "--options", optsFile}
		sending := func() bool { return true } // a flush only sends
		if i == 0 {
			// A snapshot first reads and spools the configuration: it sends
			// once the hidden temporary file shows on the server.
			args = []string{"snapshot", "--options", optsFile, "--target", target}
			sending = func() bool { return len(files(t, backups)) > 0 }
		}
		var whole func() bool
		if frac == 1 {
			whole = func() bool {
				st, err := os.Stat(tempFile(backups, final))
				_, ferr := os.Stat(filepath.Join(backups, final))
				return err == nil && st.Size() >= size || ferr == nil
			}
		}
		killed, took := killDuring(t, l.bin, args, sending, int64(frac*float64(size)), whole)
		t.Logf("trial %d: %s, kill after %.0f%% sent: killed=%v after %v", i, args[0], 100*frac, killed, took.Round(time.Millisecond))
		if i == 0 && !killed {
			t.Fatalf("the first trial finished before it could be killed; the transfer is too fast to test\n%s", l.diag())
		}

		got := files(t, backups)
		if final == "" {
			for _, f := range got {
				if n, ok := finalOf(f); ok {
					final = n
				} else if !strings.HasPrefix(filepath.Base(f), ".") {
					final = f
				}
			}
			if !nameRE.MatchString(final) {
				t.Fatalf("after the first kill the server holds %q; want leaf11/leaf11_TIME_carol.json or its .part", got)
			}
		}
		for _, f := range got {
			if n, _ := finalOf(f); f != final && n != final {
				t.Errorf("trial %d: unexpected file %s on the server (want only %s or a temporary .%s.RANDOM.part)", i, f, final, filepath.Base(final))
			}
		}
		// The one thing that must never happen: a partial file under the final name.
		if b, err := os.ReadFile(filepath.Join(backups, final)); err == nil {
			if !bytes.Equal(b, running) {
				t.Fatalf("trial %d: after the kill, %s on the server has %d bytes and is not the configuration (%d bytes): a partial snapshot under its final name", i, final, len(b), size)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		// Nothing lost: the snapshot is intact in the spool, or complete on the server.
		sp := l.spooled()
		t.Logf("trial %d: after it, the server holds %s; %d snapshot(s) spooled", i, sizes(backups, got), len(sp))
		switch {
		case len(sp) > 1:
			t.Errorf("trial %d: %d snapshots spooled, want one", i, len(sp))
		case len(sp) == 1 && !bytes.Equal(sp[0], running):
			t.Errorf("trial %d: the spooled snapshot (%d bytes) is not the configuration (%d bytes)", i, len(sp[0]), size)
		case len(sp) == 0 && !slices.Contains(got, final):
			t.Fatalf("trial %d: the snapshot is neither spooled nor on the server: lost", i)
		}
	}

	cmd := exec.Command(l.bin, "flush", "--options", optsFile)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("final cfgsnap flush: %v\n%s\n%s", err, out, l.diag())
	}
	if !strings.HasSuffix(string(out), "; 0 pending\n") || !strings.Contains(string(out), " ok (") {
		t.Errorf("final cfgsnap flush printed %q, want the target ok and 0 pending", out)
	}
	l.checkDelivered(filepath.Join(backups, final), running)
	if got := files(t, backups); !slices.Equal(got, []string{final}) {
		t.Errorf("after the final flush the server holds %q, want only %s (no .part)", got, final)
	}
	if p := l.pending(); p != "0" {
		t.Errorf("after the final flush the spool pending file says %s, want 0", p)
	}
	if left := files(t, filepath.Join(l.spool, "snapshots")); len(left) != 0 {
		t.Errorf("after the final flush the spool still holds %q", left)
	}
	if tmp, _ := filepath.Glob(filepath.Join(l.spool, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("after the final flush the spool holds temporary files %q", tmp)
	}
}

// morePorts returns n interface list entries, each followed by a comma, with
// descriptions of descLen characters that differ from port to port.
func morePorts(n, descLen int) []byte {
	pool := make([]byte, descLen)
	rand.Read(pool)
	text := hex.EncodeToString(pool) // 2*descLen characters
	var b bytes.Buffer
	b.Grow(n * (descLen + 128))
	for i := range n {
		off := i % descLen
		fmt.Fprintf(&b, "\n    {\n      \"name\": \"ethernet-%d/%d\",\n      \"description\": \"%s\",\n      \"admin-state\": \"enable\"\n    },",
			10+i/64, 1+i%64, text[off:off+descLen])
	}
	return b.Bytes()
}

// sizes describes files below root with their sizes.
func sizes(root string, rel []string) string {
	var parts []string
	for _, f := range rel {
		if st, err := os.Stat(filepath.Join(root, f)); err == nil {
			parts = append(parts, fmt.Sprintf("%s (%d bytes)", f, st.Size()))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// killDuring runs the binary with args and SIGKILLs it once it has written
// n bytes (to the SSH connection, as /proc/PID/io counts them) after sending()
// first said that it sends, or, if whole is not nil, once whole() says so.
// killed is false if it finished first.
func killDuring(t *testing.T, bin string, args []string, sending func() bool, n int64, whole func() bool) (killed bool, took time.Duration) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// A manual snapshot is named after the user behind sudo.
	cmd.Env = append(os.Environ(), "SUDO_USER=carol")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ioPath := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/io"
	threshold := int64(-1)
	for {
		select {
		case err := <-done:
			t.Logf("%s finished before the kill: %v: %s", args[0], err, strings.TrimSpace(output.String()))
			return false, time.Since(start)
		default:
		}
		if threshold < 0 && sending() {
			// Counted from here: what it wrote before (the spool copy, and
			// sr_cli's output, which counts once sr_cli is reaped) is not sent.
			threshold = wchar(ioPath) + n
		}
		if whole != nil && whole() || whole == nil && threshold >= 0 && wchar(ioPath) >= threshold {
			cmd.Process.Signal(syscall.SIGKILL)
			err := <-done
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Logf("%s ended by itself just before the kill: %v: %s", args[0], err, strings.TrimSpace(output.String()))
				return false, time.Since(start)
			}
			return true, time.Since(start)
		}
		if time.Since(start) > workerBound {
			cmd.Process.Kill()
			<-done
			t.Fatalf("%s: not killed after %v: %s", args[0], workerBound, output.String())
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// wchar reads the bytes a process has written, from /proc/PID/io.
func wchar(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// testHostile sends an event whose every user-controlled value is hostile
// through the real script and binary: names stay sanitised and inside the
// target folder, and nothing is ever run.
func testHostile(t *testing.T, s *suite) {
	l := newLab(t, s)
	canaries := t.TempDir()
	canary := func(n int) string { return filepath.Join(canaries, fmt.Sprintf("canary%d", n)) }
	mark := make([]byte, 4)
	rand.Read(mark)
	escape := "cfgsnap-e2e-" + hex.EncodeToString(mark) // what a path traversal would create in /etc
	// Checked however the test ends: whatever else failed, nothing may have run.
	defer func() {
		if got := files(t, canaries); len(got) != 0 {
			t.Errorf("a shell ran something from the event: canaries %q exist", got)
		}
		if hits, _ := filepath.Glob("/etc/" + escape + "*"); len(hits) != 0 {
			t.Errorf("a snapshot left the target folder: %q", hits)
		}
	}()

	host := "../../$(touch " + canary(1) + ")"
	user := "../../../../../../../../etc/" + escape + "$(touch " + canary(2) + ");reboot"
	comment := "`touch " + canary(3) + "`\n$(touch " + canary(3) + ")"
	// Target folders with shell metacharacters: sftp passes them to no shell,
	// scp must quote them for the login shell that runs scp -t.
	folder := func(scheme string) string {
		return filepath.Join(l.serverRoot, "srv/backups", scheme+" it's $(touch "+canary(4)+");`touch "+canary(4)+"`|&*")
	}

	running := l.setRunning(host, nil)
	lc := l.commit(user, comment)
	opts := l.options(l.targetURL("sftp", folder("sftp")), l.targetURL("scp", folder("scp")))
	opts["comment"] = "$(touch " + canary(5) + ")"
	ev := l.event(lc, opts, map[string]any{
		"persistent-data": map[string]any{"note": "'; touch " + canary(6) + "; '$(touch " + canary(6) + ")"},
	})

	out, _ := l.runScript(ev)
	line, _ := cmdline(t, out)
	if !regexp.MustCompile(`^/[A-Za-z0-9/._+-]+ handle [0-9a-f]+$`).MatchString(line) {
		t.Errorf("cmdline %.200q holds more than the binary, handle and hex: the shell could interpret it", line)
	}
	// The note is not the script's: it remembers the last-change alone.
	remembers(t, out, lc)
	l.runCmdline(line)
	l.waitWorker()

	hostS := sanitized(host)
	name := hostS + "/" + hostS + "_" + lc.Format(tsLayout) + "_" + sanitized(user) + ".json"
	var want []string
	for _, scheme := range []string{"sftp", "scp"} {
		p := filepath.Join(folder(scheme), filepath.FromSlash(name))
		l.checkDelivered(p, running)
		rel, _ := filepath.Rel(l.serverRoot, p)
		want = append(want, filepath.ToSlash(rel))
	}
	slices.Sort(want)
	if got := files(t, l.serverRoot); !slices.Equal(got, want) {
		t.Errorf("the server holds %q, want only the sanitised snapshot in each target folder: %q", got, want)
	}
	if st := l.status(); strings.Contains(st, "\n") || strings.Count(st, "ok (1 delivered)") != 2 || !strings.HasSuffix(st, "; 0 pending") {
		t.Errorf("status %q: want one line, both targets ok (1 delivered), 0 pending", st)
	}

	// Which program runs is the script's BINARY, root's choice: an instance
	// option binary is not run, whatever it holds, and the binary refuses it.
	bad := l.options(l.targetURL("sftp", folder("sftp")))
	bad["binary"] = l.bin + " ; touch " + canary(7)
	out, _ = l.runScript(l.event(lc, bad, nil))
	line, _ = cmdline(t, out)
	if !strings.HasPrefix(line, l.bin+" handle ") {
		t.Fatalf("option binary %q: the script's cmdline is %.120q; want BINARY, %s", bad["binary"], line, l.bin)
	}
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = l.cwd
	stdout, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(exit.Stderr), "option binary is not read from the event-handler instance") {
		if exit != nil {
			t.Logf("stderr: %s", exit.Stderr)
		}
		t.Errorf("handle with option binary in the event: %v, stdout %q; want exit 2 saying where the setting went", err, stdout)
	}

}

// sanitized is a name field as option name documents it: characters outside
// [A-Za-z0-9._+@-] become '_', a leading '.' or '-' becomes '_', at most 64
// characters, "unknown" if empty.
func sanitized(s string) string {
	var b []byte
	for _, r := range s {
		if len(b) == 64 {
			break
		}
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._+@-", r)) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	if b[0] == '.' || b[0] == '-' {
		b[0] = '_'
	}
	return string(b)
}

// files lists the regular files below root as slash paths, sorted; none if
// root does not exist. It leaves out the record and signature beside each
// snapshot (destination.IsRecordName): the tests that use it count snapshots.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && !destination.IsRecordName(p) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Errorf("listing %s: %v", root, err)
	}
	slices.Sort(out)
	return out
}

func write(t *testing.T, path string, b []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}
