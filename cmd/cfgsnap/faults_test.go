package main_test

// The fault suite: the simulated switch of e2e_test.go (a srbase-mgmt
// stand-in namespace, the backup server's namespace behind a veth pair, the
// DNS responder, a real sshd, the real script in MicroPython, the real binary)
// with one fault injected at a time, and nothing lost as the verdict every
// time.
//
//	server-down        sshd stopped for two commits and a manual snapshot, then back
//	server-killed      sshd killed (with its sftp-server) in the middle of the
//	                   transfer of a large configuration, then back
//	disk-full          the server's target folder is a small tmpfs, filled; then space is freed
//	auth-fails         the server authorises another key; then the right one again
//	dns-fails          the namespace's resolver gets NXDOMAIN, then finds no
//	                   responder at all; then its own responder again
//	host-key-changes   the server restarts with a new host key: refused, and
//	                   said so; then known_hosts is updated
//	sigkill            the campaign: at least 200 SIGKILLs of cfgsnap processes
//	                   (handle, the detached worker, flush) at random instants
//	                   over many commits, then a final flush
//	hostile            malformed events, huge values, path-traversal user
//	                   names, shell metacharacters in every option and field
//	sigkill-age,       sigkill (with a quarter of its SIGKILLs), server-down and
//	server-down-age,   server-killed again, with encrypt-to set to an ssh-ed25519
//	server-killed-age  key: the server holds NAME.age files, each decrypted (age)
//	                   before it is compared, so a kill during encryption that left
//	                   part of one under its name counts as lost
//	sigkill-redact,    sigkill (a quarter of its SIGKILLs) and server-down again,
//	server-down-redact with redact default and a key file in the spool: what lands
//	                   must be the redacted form of the switch's configuration,
//	                   and the password hash planted in it must be in no file at
//	                   the destination nor in the spool
//
// Each subtest ends with one verdict line:
//
//	verdict: trials=T faults=F expected=E delivered=D lost=L
//
// trials     runs of cfgsnap the subtest started and judged: events handled
//            (each starts a worker), manual snapshots and flushes; for sigkill,
//            the kill trials and the settling runs (see testSIGKILL)
// faults     faults injected: a server stopped or killed, a disk filled, a
//            wrong key authorised, a resolver broken, a host key changed, a
//            process SIGKILLed while it ran, a hostile input sent
// expected   snapshots that must be at the destination at the end, byte for
//            byte: one per capture (see testSIGKILL for the coalescing rule)
// delivered  of those, the ones there, byte for byte
// lost       expected - delivered; the subtest fails unless it is 0
//
// The parent test logs all verdicts in one table when the subtests are done.
// Besides losses, a subtest fails on what loses nothing but differs from what
// the README promises or leaves a user guessing: an unclear message, a wrong
// exit code, a report that drops its end.
//
// The random choices (kill instants, victims, sizes, users, commits per
// burst) come from one seed, logged; CFGSNAP_FAULTS_SEED=N repeats them
// (where a kill lands still depends on the machine's timing).
// CFGSNAP_FAULTS_KILLS=N sets the number of SIGKILLs the campaign needs
// (200 by default). make test-faults runs this test alone; make test runs it
// with all the others.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/redact"
	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

const (
	faultsSeedEnv  = "CFGSNAP_FAULTS_SEED"
	faultsKillsEnv = "CFGSNAP_FAULTS_KILLS"
	// minKills is how many SIGKILLs the campaign needs by default.
	minKills = 200
)

// TestFaults injects each fault into the simulated switch; see the top of
// this file.
func TestFaults(t *testing.T) {
	s := newSuite(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(faultsSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: not a number", faultsSeedEnv, v)
		}
	}
	t.Logf("seed %d (%s=%d repeats this run)", seed, faultsSeedEnv, seed)
	kills := minKills
	if v := os.Getenv(faultsKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of at least 1", faultsKillsEnv, v)
		}
		kills = n
	}

	start := time.Now()
	var mu sync.Mutex
	var rows []string
	t.Cleanup(func() { // after every parallel subtest
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(rows)
		t.Logf("fault suite, %v in all (seed %d):\n  %-18s %7s %7s %9s %10s %5s\n  %s",
			time.Since(start).Round(100*time.Millisecond), seed,
			"fault", "trials", "faults", "expected", "delivered", "lost", strings.Join(rows, "\n  "))
	})
	run := func(name string, i uint64, f func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := &ledger{t: t, want: map[string][]byte{}, row: func(r string) {
				mu.Lock()
				rows = append(rows, fmt.Sprintf("%-18s %s", name, r))
				mu.Unlock()
			}}
			began := time.Now()
			defer func() { g.verdict(time.Since(began)) }() // also after t.Fatal
			f(t, s, g, mathrand.New(mathrand.NewPCG(seed, i)))
		})
	}
	// The campaign first: it is the longest.
	run("sigkill", 1, func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) { testSIGKILL(t, s, g, rng, kills) })
	run("server-down", 2, testServerDown)
	run("server-killed", 3, testServerKilled)
	run("disk-full", 4, testDiskFull)
	run("auth-fails", 5, testAuthFails)
	run("dns-fails", 6, testDNSFails)
	run("host-key-changes", 7, testHostKeyChanges)
	run("hostile", 8, testHostileInputs)
	// Encrypted: the faults that cut a delivery, with encrypt-to set.
	run("sigkill-age", 9, encrypted(func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
		testSIGKILL(t, s, g, rng, max(1, kills/4))
	}))
	run("server-down-age", 10, encrypted(testServerDown))
	run("server-killed-age", 11, encrypted(testServerKilled))
	// Redacted: the faults that cut a delivery, with redact default set.
	run("sigkill-redact", 12, redacted(func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
		testSIGKILL(t, s, g, rng, max(1, kills/4))
	}))
	run("server-down-redact", 13, redacted(testServerDown))
}

// redacted runs a fault's subtest with redact default and a new key:
// faultLab writes the key file and names it in the options, and the ledger
// expects each snapshot redacted with that key, and never the planted secret.
func redacted(f func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand)) func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
	return func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
		g.redactKey = []byte(hex.EncodeToString(randomBytes(16)))
		g.redact = redact.New(redact.Paths([]string{"default"}), g.redactKey)
		f(t, s, g, rng)
	}
}

// encrypted runs a fault's subtest with encrypt-to set to a new ssh-ed25519
// key: faultLab's options name it, and the ledger decrypts what landed.
func encrypted(f func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand)) func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
	return func(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
		priv, pub := newKey(t)
		id, err := agessh.NewEd25519Identity(priv)
		if err != nil {
			t.Fatal(err)
		}
		g.identity, g.recipient = id, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		f(t, s, g, rng)
	}
}

// ledger counts one subtest's trials and faults, and the snapshots that must
// be at the destination when it ends.
type ledger struct {
	t      *testing.T
	dir    string // the target folder on the server, as this machine sees it
	trials int
	faults int
	names  []string          // expected snapshots, below dir, in order
	want   map[string][]byte // their content
	mine   map[string]bool   // files below dir that the test put there itself
	row    func(string)
	// With encrypt-to (encrypted), recipient is its value and identity the
	// private key: each snapshot is stored as NAME.age.
	identity  age.Identity
	recipient string
	// With redact (redacted), the rules and their key: each snapshot is
	// expected redacted.
	redact    *redact.Rules
	redactKey []byte
	spool     string // the lab's spool, searched for the planted secret too
}

// landed is what the destination must hold for configuration cfg: cfg
// itself, or with redact its redacted form, which must hold the planted
// secret's marker (keyed independently of package redact) and not the secret.
func (g *ledger) landed(cfg []byte) []byte {
	g.t.Helper()
	if g.redact == nil {
		return cfg
	}
	var out bytes.Buffer
	w := g.redact.Writer(&out)
	if _, err := w.Write(cfg); err != nil {
		g.t.Fatalf("redacting the expected configuration: %v", err)
	}
	if err := w.End(); err != nil {
		g.t.Fatalf("redacting the expected configuration: %v", err)
	}
	mac := hmac.New(sha256.New, g.redactKey)
	mac.Write([]byte(plantedSecret))
	marker := `"` + redact.Marker + hex.EncodeToString(mac.Sum(nil)) + `"`
	if bytes.Contains(out.Bytes(), []byte(plantedSecret)) || !bytes.Contains(out.Bytes(), []byte(marker)) {
		g.t.Fatalf("the redacted configuration holds the planted secret or not its marker %s: the test proves nothing", marker)
	}
	return out.Bytes()
}

// leaks fails the test for each file at the destination (a .part too) or in
// the spool that holds the planted secret.
func (g *ledger) leaks() {
	g.t.Helper()
	for _, root := range []string{g.dir, g.spool} {
		if root == "" {
			continue
		}
		for _, f := range files(g.t, root) {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
			if err == nil && bytes.Contains(b, []byte(plantedSecret)) {
				g.t.Errorf("LEAK: %s holds the planted secret, redact default set", filepath.Join(root, f))
			}
		}
	}
}

// stored is the file below dir that holds snapshot name: NAME.age with
// encrypt-to.
func (g *ledger) stored(name string) string {
	if g.identity != nil {
		return name + destination.EncryptedSuffix
	}
	return name
}

// snapshotOf is the snapshot that file f below dir holds, if f is named as
// stored says; with encrypt-to, a file in the clear is not.
func (g *ledger) snapshotOf(f string) (string, bool) {
	if g.identity != nil {
		return strings.CutSuffix(f, destination.EncryptedSuffix)
	}
	return f, true
}

// read reads file f below dir, decrypted with encrypt-to: a file cut short
// or otherwise not whole fails to decrypt.
func (g *ledger) read(f string) ([]byte, error) {
	p := filepath.Join(g.dir, filepath.FromSlash(f))
	if g.identity == nil {
		return os.ReadFile(p)
	}
	file, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	r, err := age.Decrypt(file, g.identity)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return b, nil
}

// expect adds a snapshot that must be at dir/name, byte for byte the
// configuration content as it lands (see landed). A second capture under the
// same name replaces the first: it overwrites it at the destination too.
func (g *ledger) expect(name string, content []byte) {
	g.t.Helper()
	if _, ok := g.want[name]; !ok {
		g.names = append(g.names, name)
	}
	g.want[name] = g.landed(content)
}

// count returns how many expected snapshots are at the destination, byte for
// byte, and fails the test for each one missing.
func (g *ledger) count() (delivered int) {
	g.t.Helper()
	for _, name := range g.names {
		b, err := g.read(g.stored(name))
		switch {
		case err != nil:
			g.t.Errorf("LOST: %s is not at the destination: %v", name, err)
		case !bytes.Equal(b, g.want[name]):
			g.t.Errorf("LOST: %s at the destination has %d bytes, not the %d captured", name, len(b), len(g.want[name]))
		default:
			delivered++
		}
	}
	return delivered
}

// verdict logs the subtest's verdict line and fails it if anything is lost.
func (g *ledger) verdict(took time.Duration) {
	g.t.Helper()
	early := ""
	if g.t.Failed() {
		early = "; the subtest failed before its end, so what it would have delivered may count as lost"
	}
	delivered := 0
	if g.dir != "" {
		delivered = g.count()
	}
	if g.redact != nil {
		g.leaks()
	}
	lost := len(g.names) - delivered
	g.t.Logf("verdict: trials=%d faults=%d expected=%d delivered=%d lost=%d (%v%s)",
		g.trials, g.faults, len(g.names), delivered, lost, took.Round(100*time.Millisecond), early)
	status := ""
	if g.t.Failed() {
		status = "  FAILED"
	}
	g.row(fmt.Sprintf("%7d %7d %9d %10d %5d  %v%s", g.trials, g.faults, len(g.names), delivered, lost, took.Round(100*time.Millisecond), status))
	if lost != 0 {
		g.t.Errorf("verdict: %d of %d expected snapshots lost", lost, len(g.names))
	}
}

// only checks that the server holds exactly the expected snapshots: no
// temporary file, nothing elsewhere; except lists more files that may be there.
func (g *ledger) only(l *lab, except ...string) {
	g.t.Helper()
	root, _ := filepath.Rel(l.serverRoot, g.dir)
	want := slices.Clone(except)
	for _, n := range g.names {
		want = append(want, filepath.ToSlash(filepath.Join(root, g.stored(n))))
	}
	slices.Sort(want)
	if got := files(g.t, l.serverRoot); !slices.Equal(got, want) {
		g.t.Errorf("the server holds %q, want exactly %q", got, want)
	}
}

// snapName is the default name template's result for an event's snapshot.
func snapName(host string, lc time.Time, user string) string {
	return host + "/" + host + "_" + lc.Format(tsLayout) + "_" + user + ".json"
}

// faultLab is a new lab and its event options, with one target: sftp to the
// folder srv/backups below the server's root, which becomes g's.
func faultLab(t *testing.T, s *suite, g *ledger) (*lab, map[string]any) {
	l := newLab(t, s)
	g.dir = filepath.Join(l.serverRoot, "srv", "backups")
	opts := l.options(l.targetURL("sftp", g.dir))
	if g.recipient != "" {
		opts["encrypt-to"] = g.recipient
	}
	if g.redact != nil {
		g.spool = l.spool
		keyFile := filepath.Join(l.spool, "redact.key")
		write(t, keyFile, append(slices.Clone(g.redactKey), '\n'), 0o600)
		opts["redact"] = "default"
		opts["redact-key-file"] = keyFile
	}
	return l, opts
}

// plantedSecret is the password hash of the user banner adds: redacted
// runs must never land it.
const plantedSecret = "$y$j9T$fa017ed5ecre7000$plantedFaultsPlantedFaultsPlanted/h4"

// banner sets the running configuration: leaf11's, its login banner text,
// and a user whose password hash is plantedSecret.
func (l *lab) banner(text string) []byte {
	l.t.Helper()
	return l.setRunning("leaf11", func(cfg map[string]any) {
		sys := cfg["srl_nokia-system:system"].(map[string]any)
		sys["srl_nokia-system-banner:banner"] = map[string]any{"login-banner": text}
		aaa := sys["srl_nokia-aaa:aaa"].(map[string]any)
		aaa["authentication"].(map[string]any)["user"] = []any{map[string]any{"username": "faults", "password": plantedSecret, "role": []any{"netops"}}}
	})
}

// step is one commit fired through the script, binary and worker: it sets
// the configuration, commits as user, fires the event and expects its
// snapshot. It returns the last-change, the snapshot's name and the memory
// for the next event.
func (l *lab) step(g *ledger, opts, memory map[string]any, user, text string) (time.Time, string, map[string]any) {
	l.t.Helper()
	running := l.banner(text)
	lc := l.commit(user, text)
	memory = l.fire(lc, opts, memory)
	g.trials++
	name := snapName("leaf11", lc, user)
	g.expect(name, running)
	return lc, name, memory
}

// again is the reinvocation the script asked for (same event, with the
// persistent-data it returned), as the event handler runs it after
// retry-interval: the script, the cmdline, the worker to its end.
func (l *lab) again(g *ledger, lc time.Time, opts, memory map[string]any) map[string]any {
	l.t.Helper()
	waiting := l.pending() != "0"
	out, printed := l.runScript(l.event(lc, opts, memory))
	line, reinvoke := cmdline(l.t, out)
	if waiting && reinvoke != 60000 || printed != "" {
		l.t.Errorf("reinvocation with %s pending: the script asked for a reinvocation of %d ms and printed %q; want 60000 ms while snapshots wait", l.pending(), reinvoke, printed)
	}
	memory = remembers(l.t, out, lc)
	l.runCmdline(line)
	l.waitWorker()
	g.trials++
	return memory
}

// wantStatus checks the last run's report: one line holding each of says,
// ending in the pending count, which the pending file shows too.
func (l *lab) wantStatus(step string, pending int, says ...string) {
	l.t.Helper()
	st := l.status()
	ok := !strings.Contains(st, "\n") && strings.HasSuffix(st, fmt.Sprintf("; %d pending", pending)) && l.pending() == strconv.Itoa(pending)
	for _, s := range says {
		ok = ok && strings.Contains(st, s)
	}
	if !ok {
		l.t.Errorf("%s: the report is %q and the pending file says %s; want one line saying %q and %d pending\n%s", step, st, l.pending(), says, pending, l.diag())
	} else {
		l.t.Logf("%s: %s", step, st)
	}
}

// absent checks that no file of the server is named name (below dir) or
// holds part of a snapshot under a final name.
func (l *lab) absent(g *ledger, step, name string) {
	l.t.Helper()
	if _, err := os.Stat(filepath.Join(g.dir, filepath.FromSlash(g.stored(name)))); !errors.Is(err, fs.ErrNotExist) {
		l.t.Errorf("%s: %s is on the server: %v", step, g.stored(name), err)
	}
	l.noPartial(g, step)
}

// noPartial checks that every file at the destination under a final name
// (not a hidden .part) is a whole snapshot expected there.
func (l *lab) noPartial(g *ledger, step string) {
	l.t.Helper()
	for _, f := range files(l.t, g.dir) {
		if strings.HasPrefix(filepath.Base(f), ".") && strings.HasSuffix(f, ".part") || g.mine[f] {
			continue
		}
		name, ok := g.snapshotOf(f)
		want, ok2 := g.want[name]
		b, err := g.read(f)
		if !ok || !ok2 || err != nil || !bytes.Equal(b, want) {
			l.t.Errorf("%s: the server holds %s (%d bytes, %v), which is not a whole expected snapshot", step, f, len(b), err)
		}
	}
}

// retried reports whether the worker's log shows a retry of the file name
// (destination.WithRetry logs "NAME: try N of M failed, again in ...", NAME
// as stored: NAME.age with encrypt-to).
func (l *lab) retried(name string) bool {
	b, _ := os.ReadFile(filepath.Join(l.spool, "worker.log"))
	return bytes.Contains(b, []byte(name+": try 1 of "))
}

// result is what a run of the binary showed.
type result struct {
	code           int // exit code; -1 if killed
	stdout, stderr string
	took           time.Duration
}

// cli runs the binary as a user would by hand (SUDO_USER=user), in the lab's
// cwd, with options opts (as an options file) and more args.
func (l *lab) cli(user string, opts map[string]any, args ...string) result {
	l.t.Helper()
	if opts != nil {
		args = append(args, "--options", l.optionsFile(opts))
	}
	cmd := exec.Command(l.bin, args...)
	cmd.Dir = l.cwd
	cmd.Env = append(os.Environ(), "SUDO_USER="+user)
	return runResult(l.t, cmd, nil)
}

func runResult(t *testing.T, cmd *exec.Cmd, stdin []byte) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", cmd, err)
	}
	return r
}

// optionsFile writes opts as an --options file.
func (l *lab) optionsFile(opts map[string]any) string {
	l.t.Helper()
	b, err := json.Marshal(opts)
	if err != nil {
		l.t.Fatal(err)
	}
	f, err := os.CreateTemp(l.t.TempDir(), "options-*.json")
	if err != nil {
		l.t.Fatal(err)
	}
	f.Close()
	write(l.t, f.Name(), b, 0o600)
	return f.Name()
}

// oneLine checks a failed run as the README promises it: the documented exit
// code, and one line on stderr, "cfgsnap: <what failed>: <what to do>",
// holding each of says.
func oneLine(t *testing.T, what string, r result, code int, says ...string) {
	t.Helper()
	line := strings.TrimSuffix(r.stderr, "\n")
	ok := r.code == code && strings.HasPrefix(line, "cfgsnap: ") && !strings.Contains(line, "\n") &&
		!strings.Contains(line, "goroutine ") && !strings.Contains(line, "panic")
	for _, s := range says {
		ok = ok && strings.Contains(line, s)
	}
	if !ok {
		t.Errorf("%s: exit %d, stderr %q; want exit %d and one line \"cfgsnap: ...\" saying %q", what, r.code, r.stderr, code, says)
	} else {
		t.Logf("%s: exit %d: %.300s", what, r.code, line)
	}
}

// manual takes a snapshot by hand while a fault lasts: it must exit with
// code, say so in one line, and keep the snapshot spooled. It returns the
// snapshot's name, from the report line.
func (l *lab) manual(g *ledger, opts map[string]any, user string, code int, says ...string) string {
	l.t.Helper()
	running, err := os.ReadFile(filepath.Join(l.switchDir, "running.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	r := l.cli(user, opts, "snapshot")
	g.trials++
	oneLine(l.t, "manual snapshot", r, code, says...)
	m := regexp.MustCompile(`^captured (leaf11/leaf11_\d{8}T\d{6}\.\d{3}Z_` + regexp.QuoteMeta(user) + `\.json) \(manual, by ` + regexp.QuoteMeta(user) + `[;)]`).FindStringSubmatch(r.stdout)
	if m == nil {
		l.t.Fatalf("manual snapshot printed %q; want \"captured leaf11/leaf11_TIME_%s.json (manual, by %s[; redacted values: N]); ...\"", r.stdout, user, user)
	}
	g.expect(m[1], running)
	return m[1]
}

// serverFile is a file of the lab's sshd: its keys and authorized_keys live
// in one folder, the one of its client key.
func (l *lab) serverFile(name string) string {
	l.t.Helper()
	p := filepath.Join(filepath.Dir(l.srv.ClientKey()), name)
	if _, err := os.Stat(p); err != nil {
		l.t.Fatalf("sshd's %s is not beside its client key (has package sshd changed?): %v", name, err)
	}
	return p
}

// newKey makes an ed25519 key pair.
func newKey(t *testing.T) (ed25519.PrivateKey, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// testServerDown: two commits and a manual snapshot while the server is
// down, each kept and reported; then the server is back and the script's
// retry delivers them all, oldest first.
func testServerDown(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	_, _, memory := l.step(g, opts, nil, "alice", "before the fault")
	l.wantStatus("server up", 0, "ok (1 delivered)")

	l.srv.Stop()
	g.faults++
	_, bob, memory := l.step(g, opts, memory, "bob", "while the server is down")
	l.wantStatus("server down", 1, "FAILED after 0 delivered", "connection refused")
	l.absent(g, "server down", bob)
	if !l.retried(g.stored(bob)) {
		t.Errorf("with the server down, bob's snapshot was not tried again within the run")
	}
	lc, carol, memory := l.step(g, opts, memory, "carol", "still down")
	l.wantStatus("server still down", 2, "FAILED after 0 delivered")
	l.absent(g, "server still down", carol)
	manual := l.manual(g, opts, "dave", 5, "stays spooled (3 pending)")
	l.absent(g, "manual snapshot, server down", manual)
	// cfgsnap flush by hand, the server still down: it reports the failure.
	r := l.cli("root", opts, "flush")
	g.trials++
	if !strings.Contains(r.stdout, "FAILED after 0 delivered") || !strings.HasSuffix(r.stdout, "; 3 pending\n") || l.pending() != "3" {
		t.Errorf("cfgsnap flush, server down: exit %d, %q %q; want FAILED and 3 pending", r.code, r.stdout, r.stderr)
	}
	if r.code != 5 {
		t.Errorf("cfgsnap flush with the server down exits %d, though nothing was delivered (the README's table: \"exit 5 by hand\")", r.code)
	}

	l.srv.Start()
	l.again(g, lc, opts, memory)
	l.wantStatus("server back", 0, "ok (3 delivered)")
	g.only(l)
	// Oldest first: each delivery's rename comes after the one before.
	var last time.Time
	for _, n := range []string{bob, carol, manual} {
		st, err := os.Stat(filepath.Join(g.dir, filepath.FromSlash(g.stored(n))))
		if err != nil {
			continue // count() reports it
		}
		if st.ModTime().Before(last) {
			t.Errorf("%s was delivered before an older snapshot", n)
		}
		last = st.ModTime()
	}
}

// testServerKilled kills sshd, with the sftp-server writing the file, in the
// middle of the transfer of a large configuration (about 10 MB), twice, at a
// random share of the bytes sent: the server holds no file under the final
// name, the snapshot stays spooled, and the retry delivers it whole.
func testServerKilled(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	var memory map[string]any
	// Two kills are the aim; a loaded machine may let a transfer end first,
	// so there are trials to spare.
	for trial, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if g.faults == 2 {
			break
		}
		running := l.banner(fmt.Sprintf("trial %d", trial))
		list := []byte(`"srl_nokia-interfaces:interface": [`)
		at := bytes.Index(running, list)
		if at < 0 {
			t.Fatalf("running.json has no %s", list)
		}
		at += len(list)
		running = slices.Concat(running[:at], morePorts(9000+rng.IntN(1000), 1000), running[at:])
		write(t, filepath.Join(l.switchDir, "running.json"), running, 0o644)
		lc := l.commit(user, "many ports")
		name := snapName("leaf11", lc, user)
		g.expect(name, running)
		final := filepath.Join(g.dir, filepath.FromSlash(g.stored(name)))
		frac := 0.1 + 0.8*rng.Float64()

		out, printed := l.runScript(l.event(lc, opts, memory))
		line, _ := cmdline(t, out)
		if printed != "" {
			t.Errorf("the script printed %q", printed)
		}
		memory = remembers(t, out, lc)
		l.runCmdline(line)
		g.trials++
		killed := false
		for start := time.Now(); time.Since(start) < workerBound; {
			// A whole .part is past the point: only its rename is left.
			part := tempFile(g.dir, g.stored(name))
			if st, err := os.Stat(part); err == nil && st.Size() >= int64(frac*float64(len(running))) && st.Size() < int64(len(running)) {
				l.srv.Stop()
				killed = true
				t.Logf("trial %d: sshd killed with %d of %d bytes (%.0f%%) in %s", trial, st.Size(), len(running), 100*frac, filepath.Base(part))
				break
			}
			if _, err := os.Stat(final); err == nil || len(l.workers()) == 0 {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		l.waitWorker()
		if _, err := os.Stat(final); killed && err == nil {
			// On a loaded machine the last bytes can land between the size
			// seen and the kill, and the rename with them: no fault, unless
			// its answer was lost, and then the retry delivers it again.
			t.Logf("trial %d: the transfer ended as sshd was killed (pending %s)", trial, l.pending())
			l.srv.Start()
			if l.pending() != "0" {
				memory = l.again(g, lc, opts, memory)
			}
			l.wantStatus(fmt.Sprintf("trial %d", trial), 0, "ok (1 delivered)")
			continue
		}
		if !killed {
			t.Logf("trial %d: the transfer ended before the kill: no fault", trial)
			l.wantStatus(fmt.Sprintf("trial %d", trial), 0, "ok (1 delivered)")
			continue
		}
		g.faults++
		l.wantStatus(fmt.Sprintf("trial %d, sshd killed", trial), 1, "FAILED after 0 delivered")
		l.absent(g, fmt.Sprintf("trial %d, sshd killed", trial), name)
		if sp := l.spooled(); len(sp) != 1 || !bytes.Equal(sp[0], running) {
			t.Errorf("trial %d: %d snapshots spooled, want the killed transfer's whole configuration", trial, len(sp))
		}
		l.srv.Start()
		memory = l.again(g, lc, opts, memory)
		l.wantStatus(fmt.Sprintf("trial %d, sshd back", trial), 0, "ok (1 delivered)")
	}
	if g.faults == 0 {
		t.Errorf("no transfer could be killed: both ended first")
	}
	g.only(l)
}

// tempFile is where a destination writes name (below root) before its
// rename: a hidden .NAME.RANDOM.part beside it, created afresh by each try
// (destination.TempName); "" while there is none.
func tempFile(root, name string) string {
	dir, base := filepath.Split(filepath.Join(root, filepath.FromSlash(name)))
	found, _ := filepath.Glob(filepath.Join(dir, "."+base+".*.part"))
	if len(found) == 0 {
		return ""
	}
	return found[len(found)-1]
}

// finalOf is the name that a temporary file f (.NAME.RANDOM.part) is for.
func finalOf(f string) (string, bool) {
	dir, file := filepath.Split(f)
	n, ok := strings.CutSuffix(file, ".part")
	if !ok || !strings.HasPrefix(n, ".") || strings.LastIndexByte(n, '.') < 1 {
		return "", false
	}
	return dir + n[1:strings.LastIndexByte(n, '.')], true
}

// testDiskFull: the server's target folder is a tmpfs of 1 MiB, filled but
// for a few KiB. A snapshot (about 100 KiB) is refused half written: no file
// under its final name, kept in the spool, reported. Space is freed and the
// retry delivers it, and the next one.
func testDiskFull(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// sshd runs under ip netns exec, in a mount namespace of its own copied
	// when it starts: it sees the tmpfs only if started after the mount.
	l.srv.Stop()
	if err := syscall.Mount("tmpfs", g.dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=1m,mode=0700"); err != nil {
		t.Fatalf("mounting a tmpfs for the server's target folder: %v", err)
	}
	t.Cleanup(func() { // before the TempDir goes
		if err := syscall.Unmount(g.dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", g.dir, err)
		}
	})
	l.srv.Start()
	// The filler is the server's own file, beside the switch's folder.
	filler := filepath.Join(g.dir, "filler")
	g.mine = map[string]bool{"filler": true}
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC: full
		}
	}
	f.Close()
	var st syscall.Statfs_t
	syscall.Statfs(g.dir, &st)
	// Leave a little room, as on a disk that is nearly full: the folder and
	// the start of the temporary file fit, the snapshot does not.
	if err := os.Truncate(filler, fileSize(t, filler)-16<<10); err != nil {
		t.Fatal(err)
	}
	syscall.Statfs(g.dir, &st)
	t.Logf("the server's target folder is a full tmpfs: %d bytes free", st.Bavail*uint64(st.Bsize))
	g.faults++

	lc, alice, memory := l.step(g, opts, nil, "alice", "disk full")
	l.wantStatus("disk full", 1, "FAILED after 0 delivered")
	l.absent(g, "disk full", alice)
	if st := l.status(); !strings.Contains(st, "space") {
		t.Errorf("the report of a write refused for a full disk does not say so: %q", st[strings.Index(st, "FAILED"):])
	}
	if left := files(t, g.dir); !slices.Equal(left, []string{"filler"}) {
		t.Logf("after the refused write the folder holds %q (a .part is allowed: the retry overwrites it)", left)
	}
	if sp := l.spooled(); len(sp) != 1 || !bytes.Equal(sp[0], g.want[alice]) {
		t.Errorf("disk full: %d snapshots spooled, want alice's", len(sp))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	memory = l.again(g, lc, opts, memory)
	l.wantStatus("space freed", 0, "ok (1 delivered)")
	l.step(g, opts, memory, "bob", "space again")
	l.wantStatus("next commit", 0, "ok (1 delivered)")
	g.only(l)
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// testAuthFails: the server authorises another key than the switch's. The
// commit's snapshot is refused without retries and kept; a manual snapshot
// exits 6. Then the right key is authorised again: the retry delivers both.
func testAuthFails(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	_, _, memory := l.step(g, opts, nil, "alice", "before the fault")
	auth := l.serverFile("authorized_keys")
	good, err := os.ReadFile(auth)
	if err != nil {
		t.Fatal(err)
	}
	_, other := newKey(t)
	write(t, auth, ssh.MarshalAuthorizedKey(other), 0o600)
	g.faults++

	lc, bob, memory := l.step(g, opts, memory, "bob", "key refused")
	l.wantStatus("wrong key authorised", 1, "FAILED after 0 delivered", l.identity)
	if l.retried(bob) {
		t.Errorf("the refused key was tried again, though no retry can fix it")
	}
	l.absent(g, "wrong key authorised", bob)
	manual := l.manual(g, opts, "carol", 6, l.identity)
	l.absent(g, "manual snapshot, wrong key", manual)

	write(t, auth, good, 0o600)
	l.again(g, lc, opts, memory)
	l.wantStatus("key authorised again", 0, "ok (2 delivered)")
	g.only(l)
}

// testDNSFails: the management namespace's resolver first gets NXDOMAIN for
// the backup host (a responder that knows no names), then finds no
// responder at all (resolv.conf names an address where none listens, as when
// the responder is stopped). Each commit's snapshot is kept and reported, a
// manual one exits 5. Then the namespace's own responder is back: the retry
// delivers them all.
func testDNSFails(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	_, _, memory := l.step(g, opts, nil, "alice", "before the fault")
	conf := filepath.Join("/etc/netns", l.pair.Switch, "resolv.conf")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}

	// A responder that knows no names, at the server's IPv6 address; it
	// points the switch's resolv.conf at itself.
	nx := &nstest.Pair{Switch: l.pair.Switch, Server: l.pair.Server, ServerIP: l.pair.ServerIP6}
	nxDNS := nx.ServeDNS(t, map[string][]netip.Addr{})
	g.faults++
	_, bob, memory := l.step(g, opts, memory, "bob", "NXDOMAIN")
	l.wantStatus("NXDOMAIN", 1, "FAILED after 0 delivered", "no such host")
	l.absent(g, "NXDOMAIN", bob)
	if q := nxDNS.Queries(); !slices.Contains(q, backupHost+". A") {
		t.Errorf("the NXDOMAIN responder was asked %q, never %s", q, backupHost)
	}

	// No responder: nothing listens on port 53 at the switch's own address.
	write(t, conf, []byte("nameserver "+l.pair.SwitchIP.String()+"\noptions timeout:1 attempts:1\n"), 0o644)
	g.faults++
	lc, carol, memory := l.step(g, opts, memory, "carol", "no DNS server")
	l.wantStatus("no DNS server", 2, "FAILED after 0 delivered", "resolving")
	l.absent(g, "no DNS server", carol)
	manual := l.manual(g, opts, "dave", 5, "resolving", backupHost)

	write(t, conf, good, 0o644)
	l.again(g, lc, opts, memory)
	l.wantStatus("DNS back", 0, "ok (3 delivered)")
	l.absent(g, "DNS back", "none") // every file whole
	_ = manual
	g.only(l)
}

// testHostKeyChanges: the server restarts with a new host key. The switch
// refuses it as a possible man-in-the-middle, names the key it was shown and
// the known_hosts line it contradicts, and delivers nothing; a manual
// snapshot exits 6. Once known_hosts holds the new key, the retry delivers.
func testHostKeyChanges(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	_, alice, memory := l.step(g, opts, nil, "alice", "before the fault")
	keyFile := l.serverFile("host_ed25519")

	l.srv.Stop()
	priv, pub := newKey(t)
	block, err := ssh.MarshalPrivateKey(priv, "new host key")
	if err != nil {
		t.Fatal(err)
	}
	write(t, keyFile, pem.EncodeToMemory(block), 0o600)
	write(t, keyFile+".pub", ssh.MarshalAuthorizedKey(pub), 0o600)
	l.srv.Start()
	g.faults++
	fp := ssh.FingerprintSHA256(pub)
	t.Logf("the server's host key is now %s (was %s)", fp, ssh.FingerprintSHA256(l.srv.HostKey()))

	lc, bob, memory := l.step(g, opts, memory, "bob", "host key changed")
	l.wantStatus("host key changed", 1, "FAILED after 0 delivered", "CHANGED", fp, l.knownHosts)
	if l.retried(bob) {
		t.Errorf("the changed host key was tried again, though no retry can fix it")
	}
	l.absent(g, "host key changed", bob)
	manual := l.manual(g, opts, "carol", 6, "CHANGED", fp, "man-in-the-middle")
	l.absent(g, "manual snapshot, host key changed", manual)
	if got := files(t, g.dir); !slices.Equal(got, []string{alice}) {
		t.Errorf("with the host key refused, the server holds %q; want alice's snapshot alone", got)
	}

	line := knownhosts.Line([]string{net.JoinHostPort(backupHost, strconv.Itoa(l.srv.Port()))}, pub)
	write(t, l.knownHosts, []byte(line+"\n"), 0o600)
	l.again(g, lc, opts, memory)
	l.wantStatus("known_hosts updated", 0, "ok (2 delivered)")
	g.only(l)
}

// testSIGKILL is the campaign: cfgsnap SIGKILLed at random instants, at
// least kills times, over many commits, each with another configuration;
// then a final flush with everything healthy.
//
// The switch goes through bursts. A burst is one to three commits, each a
// new state: a configuration of its own (a banner naming it, padded to a
// random size from a few KiB to 2 MiB), a new last-change and a user. After
// each commit comes a kill trial (one in five commits gets a second one, in
// the recovery from the first), one of
//
//	handle  (20%) handle of the commit's event, killed at a random instant
//	        of its run
//	worker  (50%) handle runs; the detached worker it starts is killed at a
//	        random instant of its run
//	flush   (15%) handle runs, its worker is killed as it starts; cfgsnap
//	        flush, which finds the event queued, is killed at a random
//	        instant of its run
//	busy    (15%) handle runs, a flush waits for the worker's lock; the
//	        worker is killed at a random instant, then the flush that took
//	        over
//
// "A random instant" is uniform over 0 to 1.2 times the duration of a
// healthy run of the same kind, measured on six healthy commits at the start
// (handle: about 15 ms; worker and flush: capture and delivery, a few
// hundred ms, more for a larger configuration). Most kills thus fall in the
// worker's capture and delivery. A burst ends with a settling run: the
// script's reinvocation of the burst's last event, handled in full; its
// worker runs to its end, or (half the time) is killed as soon as the
// burst's snapshot shows at the destination (its .part, or its final name),
// in the middle of delivering it. Before it starts, every worker killed
// earlier has exited entirely (all its threads: only then is its lock
// released), so that the settling worker takes the lock.
//
// What must land (the coalescing rule). A worker captures the configuration
// as it is when it runs, once for all the events queued, named after the
// newest queued last-change. So an intermediate state, one followed by
// another commit before any run captured it, may never be a file of its own:
// the later capture covers it. The last state of each burst cannot be skipped
// so: the settling run's event is queued, and the configuration does not
// change until a run has captured it (when a worker is killed at its
// snapshot's delivery, that snapshot was spooled before). Hence
//
//	expected = the last state of every burst (and the six calibration
//	           commits): its file, named after its last-change and user,
//	           byte for byte its configuration, at the destination after the
//	           final flush.
//
// Intermediate states that were captured land too, and are counted apart.
// Throughout, after every trial (no cfgsnap process running):
//
//   - every file at the destination under a final name (not a hidden .part)
//     is named after a state and holds, byte for byte, the configuration of
//     that state or of a later one (a capture names the configuration after
//     the newest event it knows of): never a partial file;
//   - every snapshot in the spool (ID.meta) has its configuration (ID.json),
//     whose size and SHA-256 are the ones recorded: never a partial entry;
//     every queued event is whole JSON;
//   - after each settling run that ran to its end: nothing pending, the
//     pending file says 0, no temporary file in the spool.
//
// After the final flush: every snapshot ever seen in the spool is at the
// destination, no .part file is left there, and the spool holds no snapshot,
// no event and no temporary file, its pending file 0.
func testSIGKILL(t *testing.T, s *suite, g *ledger, rng *mathrand.Rand, kills int) {
	l, opts := faultLab(t, s, g)
	c := &campaign{t: t, l: l, g: g, rng: rng, opts: opts, optsFile: l.optionsFile(opts),
		byName: map[string]int{}, spooled: map[string]bool{}, seenDest: map[string]fileStamp{},
		seenEntry: map[string]bool{}, kills: map[string]int{}, runs: map[string]int{}, pids: map[int]bool{}}
	c.base = l.banner(placeholder)
	if bytes.Count(c.base, []byte(placeholder)) != 1 {
		t.Fatal("the banner placeholder is not in running.json once")
	}
	start := time.Now()
	defer func() { // also after t.Fatal: the verdict counts what was done
		for _, n := range c.runs {
			g.trials += n
		}
		g.faults = c.faults()
	}()

	// Calibration: healthy commits, small and large (the first a warm-up),
	// to time healthy runs: a handle, and a worker as a function of size.
	var handleD, small, large []time.Duration
	var smallSize, largeSize int
	for i, pad := range []int{0, 0, 2 << 20, 0, 2 << 20, 0} {
		st := c.newState(-1, i, true, pad)
		h := c.handle(st)
		if h.code != 0 {
			t.Fatalf("calibration: handle exited %d: %s", h.code, h.stderr)
		}
		w := time.Now()
		c.idle()
		c.runs["calibration"]++
		c.check(true)
		switch {
		case i == 0:
		case pad == 0:
			handleD = append(handleD, h.took)
			small, smallSize = append(small, time.Since(w)), len(st.cfg)
		default:
			handleD = append(handleD, h.took)
			large, largeSize = append(large, time.Since(w)), len(st.cfg)
		}
	}
	c.dHandle = median(handleD)
	c.perByte = float64(max(median(large)-median(small), 0)) / float64(largeSize-smallSize)
	c.dFixed = max(median(small)-time.Duration(c.perByte*float64(smallSize)), time.Millisecond)
	t.Logf("healthy runs: handle %v; worker %v + %.1f ms/MB (%v at %d bytes, %v at %d); kill instants uniform over 0 to 1.2 times these",
		c.dHandle.Round(time.Millisecond), c.dFixed.Round(time.Millisecond), c.perByte, median(small).Round(time.Millisecond), smallSize, median(large).Round(time.Millisecond), largeSize)

	burst := 0
	for ; c.faults() < kills; burst++ {
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("%d kills after %v, want %d: too slow", c.faults(), time.Since(start), kills)
		}
		n := 1 + rng.IntN(3)
		var st kstate
		for i := range n {
			st = c.newState(burst, i, i == n-1, -1)
			c.trial(st)
			if rng.IntN(5) == 0 {
				c.trial(st) // a second kill, in the recovery from the first
			}
		}
		c.settle(st)
	}

	// Everything healthy: the final flush delivers what waits.
	c.idle()
	f := runResult(t, exec.Command(l.bin, "flush", "--options", c.optsFile), nil)
	c.runs["final flush"]++
	if f.code != 0 || !regexp.MustCompile(`(^|; )0 pending\n$`).MatchString(f.stdout) || strings.Contains(f.stdout, "FAILED") {
		t.Errorf("final flush: exit %d, %q %q; want exit 0, nothing failed, 0 pending\n%s", f.code, f.stdout, f.stderr, l.diag())
	}
	c.check(true)
	c.final()
	for _, st := range c.states {
		if _, err := os.Stat(filepath.Join(g.dir, filepath.FromSlash(g.stored(st.name)))); err != nil && st.last {
			for i, line := range c.trace {
				if strings.Contains(line, st.name) {
					t.Logf("LOST %s; the steps around its commit:\n  %s", st.name, strings.Join(c.trace[max(0, i-5):min(len(c.trace), i+25)], "\n  "))
					break
				}
			}
		}
	}

	landed := 0
	intermediate := 0
	for _, st := range c.states {
		if !st.last {
			intermediate++
			if _, err := os.Stat(filepath.Join(g.dir, filepath.FromSlash(g.stored(st.name)))); err == nil {
				landed++
			}
		}
	}
	t.Logf("%d bursts, %d states (%d expected: the last of each burst and the calibration commits; %d intermediate, of which %d landed as files of their own and %d were coalesced), %d snapshots seen in the spool, all delivered",
		burst, len(c.states), len(g.names), intermediate, landed, intermediate-landed, len(c.spooled))
	t.Logf("runs %v; SIGKILLs %v: %d in %v", c.runs, c.kills, c.faults(), time.Since(start).Round(100*time.Millisecond))
}

// placeholder is replaced, in the banner, by each state's text.
const placeholder = "@@FAULT@@"

// campaign is testSIGKILL's state.
type campaign struct {
	t        *testing.T
	l        *lab
	g        *ledger
	rng      *mathrand.Rand
	opts     map[string]any
	optsFile string
	base     []byte // running.json with the placeholder

	states []kstate       // every state, in order
	byName map[string]int // snapshot name -> index in states
	// A healthy handle's duration; a healthy worker's is dFixed plus
	// perByte per byte of configuration (a flush's too).
	dHandle, dFixed time.Duration
	perByte         float64 // nanoseconds

	spooled   map[string]bool      // names of snapshots seen in the spool
	seenDest  map[string]fileStamp // destination files checked, as they were then
	seenEntry map[string]bool      // spool entries checked (ID and size)
	kills     map[string]int       // SIGKILLs by victim
	runs      map[string]int       // runs of cfgsnap by kind
	trace     []string             // what was done, for a failure's message
	pids      map[int]bool         // workers seen, until they have exited entirely
}

// logf records a step for the failure message.
func (c *campaign) logf(format string, args ...any) {
	c.trace = append(c.trace, time.Now().Format("15:04:05.000000 ")+fmt.Sprintf(format, args...))
}

// diag is the lab's diag with the last steps and the spool's files.
func (c *campaign) diag() string {
	var b strings.Builder
	fmt.Fprintf(&b, "last steps:\n  %s\n", strings.Join(c.trace[max(0, len(c.trace)-40):], "\n  "))
	for _, f := range files(c.t, c.l.spool) {
		if strings.HasPrefix(f, "jobs/") || strings.HasPrefix(f, "snapshots/") {
			st, _ := os.Stat(filepath.Join(c.l.spool, f))
			var ev struct {
				Paths []struct{ Value string } `json:"paths"`
			}
			data, _ := os.ReadFile(filepath.Join(c.l.spool, f))
			json.Unmarshal(data, &ev)
			fmt.Fprintf(&b, "spool %s %d bytes %v %v %.120s\n", f, st.Size(), st.ModTime().Format("15:04:05.000000"), ev.Paths, data[:min(len(data), 200)])
		}
	}
	log, _ := os.ReadFile(filepath.Join(c.l.spool, "worker.log"))
	if len(log) > 6000 {
		log = log[len(log)-6000:]
	}
	fmt.Fprintf(&b, "status: %s\npending: %s\nworker.log (end):\n%s", c.l.status(), c.l.pending(), log)
	return b.String()
}

// kstate is one state of the switch: a commit and its configuration.
type kstate struct {
	lc   time.Time
	user string
	name string
	cfg  []byte
	sum  [32]byte
	last bool // the last of its burst: must land
	ev   []byte
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func (c *campaign) faults() int {
	n := 0
	for _, k := range c.kills {
		n += k
	}
	return n
}

var campaignUsers = []string{"alice", "bob", "carol", "dave", "erin"}

// newState commits a new configuration, with no cfgsnap process running,
// padded by pad bytes (random if negative).
func (c *campaign) newState(burst, i int, last bool, pad int) kstate {
	c.t.Helper()
	c.idle()
	if pad < 0 {
		switch r := c.rng.IntN(100); {
		case r < 75:
			pad = c.rng.IntN(32 << 10)
		case r < 96:
			pad = 32<<10 + c.rng.IntN(480<<10)
		default:
			pad = 1<<20 + c.rng.IntN(1<<20)
		}
	}
	fill := make([]byte, (pad+1)/2)
	for j := range fill {
		fill[j] = byte(c.rng.Uint32())
	}
	text := fmt.Sprintf("burst %d commit %d ", burst, i)
	cfg := bytes.Replace(c.base, []byte(placeholder), []byte(text+hex.EncodeToString(fill)), 1)
	// Atomically: a killed worker's sr_cli may still be reading the old one.
	writeAtomic(c.t, filepath.Join(c.l.switchDir, "running.json"), cfg, 0o644)
	user := campaignUsers[c.rng.IntN(len(campaignUsers))]
	lc := c.l.commit(user, text)
	st := kstate{lc: lc, user: user, name: snapName("leaf11", lc, user), cfg: cfg, sum: sha256.Sum256(c.g.landed(cfg)), last: last,
		ev: c.l.event(lc, c.opts, nil)}
	c.byName[st.name] = len(c.states)
	c.states = append(c.states, st)
	c.logf("state %d: %s, %d bytes, last of its burst: %v", len(c.states)-1, st.name, len(cfg), last)
	if last {
		c.g.expect(st.name, cfg)
	}
	return st
}

// handle runs the event handler's cmdline for st (the binary, handle, the
// event as hex: nothing a shell would interpret) to its end.
func (c *campaign) handle(st kstate) result {
	c.t.Helper()
	cmd := exec.Command(c.l.bin, "handle", hex.EncodeToString(st.ev))
	cmd.Dir = c.l.cwd
	return runResult(c.t, cmd, nil)
}

// killAfter starts cmd and SIGKILLs it after d; killed is whether the
// signal ended it (rather than it ending first).
func (c *campaign) killAfter(cmd *exec.Cmd, d time.Duration) (killed bool) {
	c.t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	// It ended first: its exit must still be a documented one.
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 5 && code != 8 {
		c.t.Errorf("%s ended by itself with exit %d: %s", cmd.Args[1], code, out.Bytes())
	}
	return false
}

// killWorkers SIGKILLs this lab's running workers and returns how many it
// killed while they ran.
func (c *campaign) killWorkers() int {
	n := 0
	for _, pid := range c.l.workers() {
		c.pids[pid] = true
		if killPid(pid) {
			n++
		}
	}
	return n
}

// killPid SIGKILLs a running process and waits until it has exited
// entirely. It reports whether the process was running when killed.
func killPid(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil || len(b) == 0 {
		return false
	}
	if syscall.Kill(pid, syscall.SIGKILL) != nil {
		return false
	}
	for start := time.Now(); !exited(pid) && time.Since(start) < workerBound; {
		time.Sleep(100 * time.Microsecond)
	}
	return true
}

// exited reports whether process pid has exited entirely: gone, or a zombie
// none of whose threads still runs. Its cmdline empties earlier, when its
// main thread exits; but its files, hence its locks, stay open until the
// last of its threads has exited, which for a thread waiting on the disk
// (an fsync) can be many milliseconds later.
func exited(pid int) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+2] != 'Z' {
		return false
	}
	tasks, err := os.ReadDir(proc + "/task")
	return err != nil || len(tasks) <= 1
}

// uniform is a random duration from 0 to 1.2 d.
func (c *campaign) uniform(d time.Duration) time.Duration {
	return time.Duration(c.rng.Int64N(int64(d)*6/5 + 1))
}

// dWorker is how long a healthy worker (or flush) takes for st.
func (c *campaign) dWorker(st kstate) time.Duration {
	return c.dFixed + time.Duration(c.perByte*float64(len(st.cfg)))
}

// trial is one kill trial on state st, then the checks.
func (c *campaign) trial(st kstate) {
	c.t.Helper()
	switch r := c.rng.IntN(100); {
	case r < 20:
		c.runs["handle"]++
		cmd := exec.Command(c.l.bin, "handle", hex.EncodeToString(st.ev))
		cmd.Dir = c.l.cwd
		d := c.uniform(c.dHandle)
		killed := c.killAfter(cmd, d)
		if killed {
			c.kills["handle"]++
		}
		c.logf("handle %s, SIGKILL after %v: killed %v", st.name, d, killed)
	case r < 70:
		c.runs["worker"]++
		h := c.handle(st)
		if h.code != 0 {
			c.t.Errorf("handle exited %d: %s", h.code, h.stderr)
		}
		d := c.uniform(c.dWorker(st))
		time.Sleep(d)
		n := c.killWorkers()
		c.kills["worker"] += n
		c.logf("handle %s, its worker SIGKILLed after %v: %d killed", st.name, d, n)
	case r < 85:
		// The worker dies at its start, before it takes the event; the
		// flush finds it queued, and dies at a random instant of its work.
		c.runs["flush"] += 2
		h := c.handle(st)
		if h.code != 0 {
			c.t.Errorf("handle exited %d: %s", h.code, h.stderr)
		}
		n := c.killWorkers()
		c.kills["worker at its start"] += n
		d := c.uniform(c.dWorker(st))
		killed := c.killAfter(exec.Command(c.l.bin, "flush", "--options", c.optsFile), d)
		if killed {
			c.kills["flush"]++
		}
		c.logf("handle %s, its worker SIGKILLed at once (%d killed); flush, SIGKILL after %v: killed %v", st.name, n, d, killed)
	default:
		c.runs["busy"] += 2
		h := c.handle(st)
		if h.code != 0 {
			c.t.Errorf("handle exited %d: %s", h.code, h.stderr)
		}
		flush := exec.Command(c.l.bin, "flush", "--options", c.optsFile)
		var out bytes.Buffer
		flush.Stdout, flush.Stderr = &out, &out
		if err := flush.Start(); err != nil {
			c.t.Fatal(err)
		}
		d1 := c.uniform(c.dWorker(st))
		time.Sleep(d1)
		n := c.killWorkers()
		c.kills["busy worker"] += n
		d2 := c.uniform(c.dWorker(st))
		time.Sleep(d2)
		flush.Process.Signal(syscall.SIGKILL)
		err := flush.Wait()
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
		if killed {
			c.kills["busy flush"]++
		} else if code := flush.ProcessState.ExitCode(); code != 0 && code != 5 {
			c.t.Errorf("flush behind a worker ended with exit %d: %s", code, out.Bytes())
		}
		c.logf("handle %s and a flush; the worker SIGKILLed after %v (%d killed), the flush %v later: killed %v", st.name, d1, n, d2, killed)
	}
	c.check(false)
}

// settle ends a burst: the reinvocation of its last event runs to its end,
// or its worker is killed as soon as the burst's snapshot shows at the
// destination.
func (c *campaign) settle(st kstate) {
	c.t.Helper()
	c.idle()
	c.runs["settle"]++
	h := c.handle(st)
	if h.code != 0 {
		c.t.Fatalf("settling handle exited %d: %s", h.code, h.stderr)
	}
	c.logf("settle %s: handle said %s", st.name, strings.TrimSpace(h.stdout))
	if c.rng.IntN(2) == 0 {
		c.idle()
		c.logf("settle %s: to the end: %s", st.name, c.l.status())
		c.check(true)
		return
	}
	final := filepath.Join(c.g.dir, filepath.FromSlash(c.g.stored(st.name)))
	for start, i := time.Now(), 0; ; i++ {
		_, err1 := os.Stat(tempFile(c.g.dir, c.g.stored(st.name)))
		_, err2 := os.Stat(final)
		if err1 == nil || err2 == nil {
			n := c.killWorkers()
			c.kills["settle worker"] += n
			c.logf("settle %s: worker SIGKILLed at its delivery (.part %v, final %v): %d killed", st.name, err1 == nil, err2 == nil, n)
			break
		}
		if i%100 == 0 && len(c.l.workers()) == 0 {
			c.logf("settle %s: the worker ended first", st.name)
			break
		}
		if time.Since(start) > workerBound {
			c.t.Fatalf("the settling worker still runs after %v", workerBound)
		}
		time.Sleep(100 * time.Microsecond)
	}
	c.check(false)
}

// idle waits until no worker of the lab runs, and every worker seen has
// exited entirely; handle and flush are this test's children, always
// waited for.
func (c *campaign) idle() {
	c.t.Helper()
	for start := time.Now(); ; time.Sleep(2 * time.Millisecond) {
		ws := c.l.workers()
		busy := len(ws) > 0
		for _, p := range ws {
			c.pids[p] = true
		}
		for p := range c.pids {
			if exited(p) {
				delete(c.pids, p)
			} else {
				busy = true
			}
		}
		if !busy {
			return
		}
		if time.Since(start) > workerBound {
			c.t.Fatalf("a worker still runs after %v\n%s", workerBound, c.diag())
		}
	}
}

// check checks the destination and the spool, with no cfgsnap running;
// settled says a run has just gone to its end, healthy.
func (c *campaign) check(settled bool) {
	c.t.Helper()
	c.idle()
	if c.t.Failed() {
		c.t.FailNow() // one broken invariant is enough; the rest would repeat it
	}
	// The destination: every final name a whole state at or after its own.
	for _, f := range files(c.t, c.g.dir) {
		if strings.HasPrefix(filepath.Base(f), ".") && strings.HasSuffix(f, ".part") {
			continue
		}
		p := filepath.Join(c.g.dir, filepath.FromSlash(f))
		st, err := os.Stat(p)
		if err != nil {
			c.t.Fatal(err)
		}
		stamp := fileStamp{st.Size(), st.ModTime()}
		if c.seenDest[f] == stamp {
			continue
		}
		name, ok := c.g.snapshotOf(f)
		i, ok2 := c.byName[name]
		if !ok || !ok2 {
			var near []string
			for _, s := range c.states {
				if d := s.lc.Sub(c.states[len(c.states)-1].lc); d > -3*time.Second {
					near = append(near, s.name)
				}
			}
			b, _ := os.ReadFile(p)
			b = b[max(0, bytes.Index(b, []byte("login-banner"))):]
			c.t.Errorf("the destination holds %s (%d bytes, %.40q...), named after no state of the switch; the last states are %q\n%s", f, len(b), b, near, c.diag())
			continue
		}
		// With encrypt-to, a file cut short fails to decrypt: a partial one.
		b, err := c.g.read(f)
		sum := sha256.Sum256(b)
		if err != nil || !slices.ContainsFunc(c.states[i:], func(s kstate) bool { return s.sum == sum }) {
			c.t.Errorf("PARTIAL: %s at the destination (%d bytes, %v) is neither its state's configuration (%d bytes) nor a later one", f, len(b), err, len(c.states[i].cfg))
		}
		if st.Mode().Perm() != 0o600 {
			c.t.Errorf("%s at the destination has mode %v, want 0600", f, st.Mode().Perm())
		}
		c.seenDest[f] = stamp
	}
	// The spool: every entry whole, every event whole.
	snaps := filepath.Join(c.l.spool, "snapshots")
	names, _ := filepath.Glob(filepath.Join(snaps, "*"))
	entries := 0
	for _, m := range names {
		id, ok := strings.CutSuffix(filepath.Base(m), ".meta")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		entries++
		var meta struct {
			Record struct {
				Name   string `json:"name"`
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			} `json:"record"`
			Targets []string `json:"targets"`
		}
		b, err := os.ReadFile(m)
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err != nil || len(meta.Targets) == 0 {
			c.t.Errorf("spool entry %s is damaged: %v: %q", filepath.Base(m), err, b)
			continue
		}
		c.spooled[meta.Record.Name] = true
		key := id + "/" + strconv.FormatInt(meta.Record.Size, 10)
		if c.seenEntry[key] {
			continue
		}
		content, err := os.ReadFile(filepath.Join(snaps, id+".json"))
		sum := sha256.Sum256(content)
		if err != nil || int64(len(content)) != meta.Record.Size || hex.EncodeToString(sum[:]) != meta.Record.SHA256 {
			c.t.Errorf("PARTIAL: spool entry %s (%s) has %d bytes of configuration (%v), not the %d bytes recorded with its SHA-256", id, meta.Record.Name, len(content), err, meta.Record.Size)
		}
		if _, ok := c.byName[meta.Record.Name]; !ok {
			c.t.Errorf("spool entry %s is named %s, after no state of the switch", id, meta.Record.Name)
		}
		c.seenEntry[key] = true
	}
	jobs, _ := filepath.Glob(filepath.Join(c.l.spool, "jobs", "*"))
	for _, j := range jobs {
		if strings.HasPrefix(filepath.Base(j), ".") {
			continue
		}
		b, err := os.ReadFile(j)
		if err != nil || !json.Valid(b) {
			c.t.Errorf("queued event %s is damaged: %v: %.80q", filepath.Base(j), err, b)
		}
	}
	if settled {
		if p := c.l.pending(); p != "0" || entries != 0 || len(jobs) != 0 {
			c.t.Errorf("after a healthy run: pending file %s, %d snapshots spooled, %d events queued; want all 0\n%s", p, entries, len(jobs), c.diag())
		}
		if tmp := spoolTemps(c.t, c.l.spool); len(tmp) > 0 {
			c.t.Errorf("after a healthy run the spool holds temporary files %q", tmp)
		}
	}
}

// final checks the end state: every snapshot seen in the spool delivered, no
// .part left, the spool empty.
func (c *campaign) final() {
	c.t.Helper()
	for name := range c.spooled {
		if _, err := os.Stat(filepath.Join(c.g.dir, filepath.FromSlash(c.g.stored(name)))); err != nil {
			c.t.Errorf("LOST: %s was spooled and is not at the destination: %v", name, err)
		}
	}
	for _, f := range files(c.t, c.g.dir) {
		if strings.HasSuffix(f, ".part") {
			c.t.Errorf("after the final flush the destination still holds %s", f)
		}
	}
	if left := files(c.t, filepath.Join(c.l.spool, "snapshots")); len(left) != 0 {
		c.t.Errorf("after the final flush the spool holds %q", left)
	}
}

// spoolTemps lists the temporary files anywhere in a spool.
func spoolTemps(t *testing.T, spool string) []string {
	var tmp []string
	for _, f := range files(t, spool) {
		if strings.HasPrefix(filepath.Base(f), ".tmp-") {
			tmp = append(tmp, f)
		}
	}
	return tmp
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// writeAtomic replaces path with b as a rename does: a reader sees the old
// file or the new one. It reports failures with Errorf, so that the simulated
// switch's own goroutine may call it.
func writeAtomic(t testing.TB, path string, b []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	err := os.WriteFile(tmp, b, perm)
	if err == nil {
		err = os.Chmod(tmp, perm) // not cut by the umask
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		t.Errorf("writing %s: %v", path, err)
	}
}

// testHostileInputs sends hostile input to every entrance: malformed events
// straight to the binary, huge values, path-traversal user names in the
// commit list, shell metacharacters in every option and every field of a
// name, each through the real script and the cmdline it returns. What is
// refused is refused before anything is queued, with one line on stderr and
// a documented exit code (2 bad option, 3 malformed event). What is accepted
// is taken literally: a snapshot that lands lands below the target folder,
// sanitised, and no shell ever runs (canary files that a command
// substitution would create never appear; files planted where a traversal
// would write stay as they were).
func testHostileInputs(t *testing.T, s *suite, g *ledger, _ *mathrand.Rand) {
	l, opts := faultLab(t, s, g)
	h := &hostile{t: t, l: l, g: g, opts: opts, canaries: t.TempDir(), mark: "cfgsnap-fault-" + hex.EncodeToString(randomBytes(4))}
	// Planted where an escape from the target folder would write, to be
	// found unchanged at the end.
	h.planted = map[string][]byte{}
	for _, rel := range []string{"canary.json", "srv/canary.json", "srv/" + h.mark + ".json", "srv/backups.json"} {
		b := []byte("planted " + rel + " " + hex.EncodeToString(randomBytes(8)) + "\n")
		if err := os.MkdirAll(filepath.Dir(filepath.Join(l.serverRoot, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(l.serverRoot, rel), b, 0o644)
		h.planted[rel] = b
	}
	defer h.nothingEscaped() // however the test ends

	// 0. A commit whose every name field is hostile: host, user, comment.
	meta := h.meta(0)
	host := "../../" + meta
	running := l.setRunning(host, nil)
	user := "../../../../../../../../etc/" + h.mark + meta
	lc := l.commit(user, "`touch "+h.canary(0)+"`\n"+meta)
	memory := l.fire(lc, opts, map[string]any{"persistent-data": map[string]any{"note": meta}})
	g.trials++
	g.faults++
	g.expect(snapName(sanitized(host), lc, sanitized(user)), running)
	l.wantStatus("hostile host, user and comment", 0, "ok (1 delivered)")

	h.malformed()
	h.huge(memory)
	h.traversal()
	h.everyOption()

	// Everything still pending goes now; then nothing may be left anywhere
	// but the expected snapshots.
	r := l.cli("root", opts, "flush")
	g.trials++
	if r.code != 0 || !regexp.MustCompile(`(^|; )0 pending\n$`).MatchString(r.stdout) {
		t.Errorf("final flush: exit %d, %q %q; want 0 pending", r.code, r.stdout, r.stderr)
	}
	l.noPartial(g, "the end")
	var except []string
	for rel := range h.planted {
		except = append(except, rel)
	}
	g.only(l, except...)
}

// hostile is testHostileInputs' state.
type hostile struct {
	t        *testing.T
	l        *lab
	g        *ledger
	opts     map[string]any
	canaries string            // where a command that ran would leave a file
	mark     string            // in names that, escaping, would land in /etc
	planted  map[string][]byte // below the server's root: must stay as they are
}

// canary is a file that appears only if a shell ran a hostile value.
func (h *hostile) canary(i int) string {
	return filepath.Join(h.canaries, fmt.Sprintf("c%d", i))
}

// meta is a value with every shell metacharacter, each of whose commands
// would create canary i.
func (h *hostile) meta(i int) string {
	c := h.canary(i)
	return "$(touch " + c + ");`touch " + c + "`|touch " + c + "&&touch " + c + ">" + c + "<" + c + " 'q\"\\ \t*?~{a,b}[x]!#%^=\n$IFS${PATH}"
}

// nothingEscaped checks, however the test ended, that no command ran and
// nothing was written outside the target folder.
func (h *hostile) nothingEscaped() {
	t, l := h.t, h.l
	if got := files(t, h.canaries); len(got) != 0 {
		t.Errorf("a shell ran a hostile value: canaries %q exist", got)
	}
	if got := files(t, l.cwd); len(got) != 0 {
		t.Errorf("files appeared in run-script's working folder: %q", got)
	}
	for _, pat := range []string{"/etc/" + h.mark + "*", "/" + h.mark + "*", "/tmp/" + h.mark + "*", filepath.Join(l.serverRoot, "*"+h.mark+"*")} {
		hits, _ := filepath.Glob(pat)
		for _, hit := range hits {
			if rel, _ := filepath.Rel(l.serverRoot, hit); h.planted[rel] == nil {
				t.Errorf("a name escaped the target folder: %s exists", hit)
			}
		}
	}
	for rel, want := range h.planted {
		if b, err := os.ReadFile(filepath.Join(l.serverRoot, rel)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("the planted file %s was changed or removed: %v", rel, err)
		}
	}
	backups, _ := filepath.Rel(l.serverRoot, h.g.dir)
	for _, f := range files(t, l.serverRoot) {
		if !strings.HasPrefix(f, filepath.ToSlash(backups)+"/") && h.planted[f] == nil {
			t.Errorf("%s was written outside the target folder %s", f, backups)
		}
	}
}

// jobs lists the queued events.
func (h *hostile) jobs() []string {
	names, _ := filepath.Glob(filepath.Join(h.l.spool, "jobs", "[0-9]*"))
	return names
}

// refused checks a run the binary refused: exit code, one line, nothing
// queued (jobs are the queued events before the run), no worker started.
func (h *hostile) refused(what string, r result, jobs []string, code int, says ...string) {
	h.t.Helper()
	oneLine(h.t, what, r, code, says...)
	if n := len(strings.TrimSuffix(r.stderr, "\n")); n > 2048 {
		h.t.Errorf("%s: the error line is %d characters long: it quotes the whole value", what, n)
	}
	if j := h.jobs(); !slices.Equal(j, jobs) {
		h.t.Errorf("%s: refused, but queued: %q, then %q", what, jobs, j)
	}
	if w := h.l.workers(); len(w) != 0 {
		h.t.Errorf("%s: refused, but a worker runs", what)
		h.l.waitWorker()
	}
}

// malformed sends malformed events straight to the binary, as run-script
// would pass them (handle HEX), and on stdin (handle -).
func (h *hostile) malformed() {
	t, l := h.t, h.l
	lc := `{"path":"system configuration last-change","value":"2025-09-20T11:02:08.456Z"}`
	meta := h.meta(1)
	quoted, _ := json.Marshal(meta)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	huge := `{"paths":[` + lc + `],"x":"` + strings.Repeat("A", 1<<20) + `"}`
	for _, c := range []struct {
		name  string
		arg   string // handle's argument; "-" reads stdin
		stdin string
		code  int
		says  string
	}{
		{"not hex", "7b22" + meta, "", 3, "not the hex"},
		{"odd hex", "7b2", "", 3, "not the hex"},
		{"truncated JSON", hex.EncodeToString([]byte(`{"paths":[` + lc)), "", 3, "not valid JSON"},
		{"JSON array", hex.EncodeToString([]byte(`[` + lc + `]`)), "", 3, "not a JSON object"},
		{"JSON null", hex.EncodeToString([]byte(`null`)), "", 3, "not a JSON object"},
		{"JSON string", hex.EncodeToString(quoted), "", 3, "not a JSON object"},
		{"empty object", hex.EncodeToString([]byte(`{}`)), "", 3, "last-change"},
		{"last-change not a time", hex.EncodeToString([]byte(`{"paths":[{"path":"system configuration last-change","value":` + string(quoted) + `}]}`)), "", 3, "not an RFC 3339 time"},
		{"last-change a number", hex.EncodeToString([]byte(`{"paths":[{"path":"system configuration last-change","value":1e308}]}`)), "", 3, "last-change"},
		{"options a string", hex.EncodeToString([]byte(`{"paths":[` + lc + `],"options":` + string(quoted) + `}`)), "", 3, "options is not an object"},
		{"unknown option", hex.EncodeToString([]byte(`{"paths":[` + lc + `],"options":{"tagret":` + string(quoted) + `}}`)), "", 2, "unknown option"},
		{"option an object", hex.EncodeToString([]byte(`{"paths":[` + lc + `],"options":{"target":{"a":` + string(quoted) + `}}}`)), "", 2, "target"},
		{"NUL in an option", hex.EncodeToString([]byte(`{"paths":[` + lc + `],"options":{"target":"sftp://x\u0000y/z"}}`)), "", 2, "NUL"},
		{"invalid UTF-8", hex.EncodeToString([]byte("{\"paths\":[\xff\xfe\x00" + lc + "]}")), "", 3, "not valid JSON"},
		{"deep nesting on stdin", "-", `{"paths":[` + lc + `],"x":` + deep + `}`, 2, "no target"},
		{"no argument", "", "", 2, "one argument"},
		{"empty stdin", "-", "", 3, "not valid JSON"},
		{"over 1 MiB on stdin", "-", huge, 3, "more than"},
	} {
		args := []string{"handle"}
		if c.arg != "" {
			args = append(args, c.arg)
		}
		cmd := exec.Command(l.bin, args...)
		cmd.Dir = l.cwd
		var stdin []byte
		if c.arg == "-" {
			stdin = []byte(c.stdin)
		}
		jobs := h.jobs()
		r := runResult(t, cmd, stdin)
		h.g.trials++
		h.g.faults++
		h.refused("malformed event: "+c.name, r, jobs, c.code, c.says)
	}

	// Through the script: what it cannot pass on it refuses itself; what it
	// passes on, the binary refuses.
	out, printed := l.runScript([]byte(`{"paths":[` + lc + `],"options":{"sudo":"false","spool-dir":"` + l.spool + `","x":"` + strings.Repeat("B", 70000) + `"}}`))
	h.g.trials++
	h.g.faults++
	if len(out.Actions) != 0 || !strings.Contains(printed, "too long to pass on a command line") {
		t.Errorf("an event too long for a cmdline: the script returned %+v and printed %q; want no action and an error", out.Actions, printed)
	}
	out, printed = l.runScript([]byte(`{"paths":[{"path":"system configuration last-change","value":` + string(quoted) + `}],"options":{"sudo":"false","spool-dir":"` + l.spool + `","target":` + string(quoted) + `}}`))
	h.g.trials++
	h.g.faults++
	line, _ := cmdline(t, out)
	if !regexp.MustCompile(`^/[A-Za-z0-9/._+-]+ handle [0-9a-f]+$`).MatchString(line) || printed != "" {
		t.Errorf("malformed event through the script: cmdline %.120q, printed %q; want only the binary, handle and hex", line, printed)
	}
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = l.cwd
	h.refused("malformed event through the script and /bin/sh", runResult(t, cmd, nil), h.jobs(), 3, "not an RFC 3339 time")
}

// huge sends valid events with huge values: a 60 KB option (as much as a
// cmdline carries), a 100 KB user name and host name and a 1 MB comment in
// what the switch reports, a 100 KB target.
func (h *hostile) huge(memory map[string]any) {
	t, l, g := h.t, h.l, h.g
	opts := maps.Clone(h.opts)
	opts["comment"] = strings.Repeat("C", 60000) + h.meta(2)
	host := strings.Repeat("h", 100000) + h.meta(2)
	running := l.setRunning(host, nil)
	user := strings.Repeat("u", 100000) + "/../" + h.meta(2)
	lc := l.commit(user, strings.Repeat("c", 1<<20))
	l.fire(lc, opts, memory)
	g.trials++
	g.faults++
	name := snapName(sanitized(host), lc, sanitized(user))
	g.expect(name, running)
	st := l.status()
	if strings.Contains(st, "\n") || len(st) > 4096 || !strings.HasPrefix(st, "captured "+name+" (") || l.pending() != "0" {
		t.Errorf("huge values: the report is %d bytes, %.200q..., pending %s; want one line of at most 4 KiB naming %s, 0 pending", len(st), st, l.pending(), name)
	}
	if !strings.HasSuffix(st, "; 0 pending") {
		t.Errorf("with a 100 KB user name the report loses its end (the targets' results and the pending count): it ends %q", st[max(0, len(st)-80):])
	}

	opts = maps.Clone(h.opts)
	opts["target"] = []string{"sftp://" + strings.Repeat("x", 50000) + "/srv"}
	jobs := h.jobs()
	r := h.viaShell(l.event(lc, opts, nil))
	if r.code == 0 {
		t.Logf("a 50 KB target host was accepted: %s", r.stdout)
		l.waitWorker()
	} else {
		h.refused("a 50 KB target host", r, jobs, 2)
	}

	// A refused option value of 50 KB: the error line stays short.
	opts = maps.Clone(h.opts)
	opts["commit-wait"] = strings.Repeat("9", 50000)
	h.refused("a 50 KB commit-wait", h.viaShell(l.event(lc, opts, nil)), h.jobs(), 2, "option commit-wait")

	// A spool folder whose name is longer than a file name can be.
	opts = maps.Clone(h.opts)
	opts["spool-dir"] = filepath.Join(t.TempDir(), strings.Repeat("s", 300))
	r = h.viaShell(l.event(lc, opts, nil))
	oneLine(t, "a spool-dir name of 300 bytes", r, r.code, "spool")
	if r.code != 2 {
		t.Errorf("a spool-dir whose name is too long exits %d, not 2 (bad option): %s", r.code, strings.TrimSpace(r.stderr))
	}
}

// traversal commits as users whose names try to leave the target folder.
func (h *hostile) traversal() {
	t, l, g := h.t, h.l, h.g
	m := h.mark
	users := []string{
		"../../../../../../../../etc/" + m, "..", ".", "/", "/etc/" + m, "a/../../" + m,
		`..\..\` + m, "\u2215etc\u2215" + m, "\uff0e\uff0e\uff0f" + m, "x\x00y/../" + m,
		"-rf --no-preserve-root /", ".hidden", "\u202e" + m + "nosj.", "~root/" + m, "$HOME/" + m, "",
		strings.Repeat("../", 40) + m,
	}
	var memory map[string]any
	running := l.setRunning("leaf11", nil)
	for _, u := range users {
		lc := l.commit(u, "traversal")
		memory = l.fire(lc, h.opts, memory)
		g.trials++
		g.faults++
		name := snapName("leaf11", lc, sanitized(u))
		g.expect(name, running)
		if st := l.status(); !strings.Contains(st, "captured "+name) || !strings.HasSuffix(st, "; 0 pending") {
			t.Errorf("user %q: the report is %q; want %s captured, 0 pending", u, st, name)
		}
	}
}

// everyOption sets each option, one at a time, to a value full of shell
// metacharacters (for a path: a file of such a name in a scratch folder),
// and fires a commit with it through the script and its cmdline. The binary
// refuses it (exit 2, one line, nothing queued) or takes it literally: the
// snapshot lands below the target folder, or the report says why not.
func (h *hostile) everyOption() {
	t, l, g := h.t, h.l, h.g
	scratch := t.TempDir()
	// In a path, one element of at most 255 bytes; its commands would
	// create the file rel in their working folder.
	rel := "c-" + h.mark
	short := "$(touch " + rel + ");`touch " + rel + "`|touch " + rel + "&&touch " + rel + ">" + rel + "<" + rel + " 'q\"\\ *?~{a_b}[x]!#%^=$IFS${PATH}"
	defer func() {
		for _, dir := range []string{l.cwd, scratch, l.serverRoot, l.switchDir, "/", os.Getenv("HOME"), l.srv.Home()} {
			if hits, _ := filepath.Glob(filepath.Join(dir, rel+"*")); len(hits) > 0 {
				t.Errorf("a shell ran a hostile value: %q exist", hits)
			}
		}
	}()
	for i, o := range option.All() {
		value := h.meta(10 + i)
		spool := l.spool
		target := ""
		switch {
		case o.Name == "target":
			target = "t " + short
			value = l.targetURL("sftp", filepath.Join(g.dir, target))
		case o.Name == "source":
			value = "file:" + filepath.Join(scratch, short)
		case o.Name == "spool-dir":
			value = filepath.Join(scratch, "spool "+short)
			spool = value
		case o.Name == "binary" || o.Name == "identity" || o.Name == "known-hosts" || o.Name == "sr-cli" ||
			o.Name == "jsonrpc-socket" || strings.HasSuffix(o.Name, "-file"):
			value = filepath.Join(scratch, short)
		}
		opts := maps.Clone(h.opts)
		opts[o.Name] = value
		if o.List {
			opts[o.Name] = []string{value}
		}
		if o.Name == "spool-dir" {
			// The instance may name key files only in the spool folder, and
			// a new one holds none yet: the snapshot waits there for root's
			// flush below.
			delete(opts, "identity")
			delete(opts, "known-hosts")
		}
		running := l.banner(fmt.Sprintf("option %s", o.Name))
		lc := l.commit("alice", o.Name)
		out, printed := l.runScript(l.event(lc, opts, nil))
		g.trials++
		g.faults++
		if len(out.Actions) == 0 {
			// Only what decides how the binary is started is the script's.
			if !o.Script || !strings.Contains(printed, "cfgsnap not run") {
				t.Errorf("option %s: the script returned no action and printed %q", o.Name, printed)
			}
			t.Logf("option %s: the script refused it: %s", o.Name, strings.TrimSpace(printed))
			continue
		}
		line, _ := cmdline(t, out)
		m := regexp.MustCompile(`^(/usr/bin/sudo -n )?(/[A-Za-z0-9/._+-]+ handle [0-9a-f]+)$`).FindStringSubmatch(line)
		if m == nil {
			t.Errorf("option %s: cmdline %.200q holds more than the binary, handle and hex", o.Name, line)
			continue
		}
		cmd := exec.Command("/bin/sh", "-c", m[2]) // without sudo, which this machine lacks: root already
		cmd.Dir = l.cwd
		jobs := h.jobs()
		statusFile := filepath.Join(spool, "status")
		before, _ := os.Stat(statusFile)
		r := runResult(t, cmd, nil)
		if r.code != 0 {
			h.refused("option "+o.Name, r, jobs, 2, "option "+o.Name)
			continue
		}
		// Accepted: the worker runs with it, to its end. An empty process
		// list alone once let this read the previous run's report while
		// this run's snapshot was still to come; each run replaces the
		// status file, so wait for a new one too.
		for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
			now, err := os.Stat(statusFile)
			if err == nil && (before == nil || !os.SameFile(before, now)) && len(testenv.Workers(l.bin, spool)) == 0 {
				break
			}
			if time.Since(start) > workerBound {
				wl, _ := os.ReadFile(filepath.Join(spool, "worker.log"))
				t.Fatalf("option %s: no worker has finished a run after %v; worker.log ends:\n%s", o.Name, workerBound, wl[max(0, len(wl)-2000):])
			}
		}
		b, _ := os.ReadFile(filepath.Join(spool, "status"))
		st := strings.TrimSpace(string(b))
		if strings.Contains(st, "\n") {
			t.Errorf("option %s: the report is not one line: %q", o.Name, st)
		}
		t.Logf("option %s: accepted; the worker's report: %.300s", o.Name, st)
		// A file that does not exist may exist by the next run; a value of
		// the wrong form never will be right.
		if (o.Name == "name" || o.Name == "host-key") && (strings.Contains(st, "option "+o.Name) || strings.Contains(st, o.Name+" \"")) {
			t.Errorf("option %s: handle accepted a value of the wrong form, which only the worker refuses (the README: an invalid option is refused before anything is queued, exit 2)", o.Name)
		}
		if c := regexp.MustCompile(`^captured (\S+) \(`).FindStringSubmatch(st); c != nil {
			name := c[1]
			if target != "" {
				name = target + "/" + name
			}
			g.expect(name, running)
		}
		if spool != l.spool {
			if st, err := os.Stat(spool); err != nil || !st.IsDir() {
				t.Errorf("option spool-dir: no spool folder named literally %q: %v", spool, err)
			}
			// The snapshot waits in that spool if it was not delivered.
			r := l.cli("root", map[string]any{"spool-dir": spool, "netns": l.pair.Switch, "known-hosts": l.knownHosts, "identity": l.identity}, "flush")
			if r.code != 0 {
				t.Errorf("flush of the spool %q: exit %d %s", spool, r.code, r.stderr)
			}
		}
	}

	// A target whose path holds a line break (a control character).
	spool := filepath.Join(scratch, "spool-newline") // not the lab's: see below
	opts := maps.Clone(h.opts)
	opts["spool-dir"] = spool
	delete(opts, "identity") // key files only in the spool folder, and this one is new
	delete(opts, "known-hosts")
	opts["target"] = []string{l.targetURL("sftp", filepath.Join(g.dir, "line\nbreak"))}
	lc := l.commit("alice", "newline")
	r := h.viaShell(l.event(lc, opts, nil))
	if r.code == 0 {
		for start := time.Now(); len(testenv.Workers(l.bin, spool)) > 0 && time.Since(start) < workerBound; time.Sleep(10 * time.Millisecond) {
		}
		b, _ := os.ReadFile(filepath.Join(spool, "status"))
		p, _ := os.ReadFile(filepath.Join(spool, "pending"))
		t.Errorf("a target whose path holds a line break is accepted by handle, and its snapshot is spooled for a target no run can deliver to (pending %s, for good: the entry keeps its targets): %.300s", strings.TrimSpace(string(p)), b)
	} else {
		h.refused("a target with a line break", r, h.jobs(), 2, "control characters")
	}
}

// viaShell is one hostile trial as the switch runs it: the script turns event
// into its cmdline, which /bin/sh runs in the switch's working folder.
func (h *hostile) viaShell(event []byte) result {
	h.t.Helper()
	out, _ := h.l.runScript(event)
	line, _ := cmdline(h.t, out)
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Dir = h.l.cwd
	h.g.trials++
	h.g.faults++
	return runResult(h.t, cmd, nil)
}
