package main_test

// Secrets stay on the switch (issue "Security"). A configuration holds password
// hashes, TLS private keys and SNMP communities. The backup keeps them (that is
// what the stores are for), but nothing that describes a snapshot may: not the
// report, the worker's log, a webhook, a git commit message, S3 metadata, nor
// any process's arguments, which every local user can read in /proc.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestSecretsStayOnTheSwitch commits leaf11's configuration as it is (its own
// password hashes, TLS key and SNMP community), then planted secrets, then
// every one of them changed, through the real script and binary, with two
// event-handler instances: one to git over SSH, S3 and a JSON webhook, one to
// a Slack-style webhook. The change summaries name the secret leaves; no
// value shows anywhere but in the stores' copies of the configuration.
func TestSecretsStayOnTheSwitch(t *testing.T) {
	s := newSuite(t)
	gwBin := versitygw(t)
	l := newLab(t, s)
	// sr_cli takes a moment, as a busy switch's does: the process watch sees it.
	write(t, filepath.Join(l.switchDir, "delay"), []byte("0.3\n"), 0o644)

	repo := newBareRepo(t, filepath.Join(l.serverRoot, "srv/git/configs.git"))
	gw := startGateway(t, l, gwBin)
	const bucket = "configs"
	gw.makeBucket(bucket)
	s3Target := "s3://" + bucket + "/srl?endpoint=" + net.JoinHostPort(s3Host, gatewayPort) + "&tls=false"
	hook, chat := &hookReceiver{}, &hookReceiver{}
	hookTarget := "http://" + net.JoinHostPort(hookHost, strconv.Itoa(l.serve(hook))) + "/hook/cfgsnap/leaf11"
	chatTarget := "http://" + net.JoinHostPort(hookHost, strconv.Itoa(l.serve(chat))) + "/services/noc/configs"

	// Key files live in cfgsnap's own folder on the switch, the spool.
	keys := l.spool // newLab made it, as cfgsnap does
	hookSecret := "whsec-" + hex.EncodeToString(randomBytes(16))
	write(t, filepath.Join(keys, "webhook-secret"), []byte(hookSecret+"\n"), 0o600)
	write(t, filepath.Join(keys, "s3-access"), []byte(gw.access+"\n"), 0o600)
	write(t, filepath.Join(keys, "s3-secret"), []byte(gw.secret+"\n"), 0o600)
	opts := l.options(l.targetURL("git+ssh", repo.dir), s3Target, hookTarget)
	opts["webhook-format"] = "json"
	opts["webhook-include-config"] = "false"
	opts["webhook-secret-file"] = filepath.Join(keys, "webhook-secret")
	opts["s3-access-key-file"] = filepath.Join(keys, "s3-access")
	opts["s3-secret-key-file"] = filepath.Join(keys, "s3-secret")

	// The second instance on the same switch: its own spool, a chat channel.
	cl := *l
	cl.spool = makeSpool(t, filepath.Join(t.TempDir(), "spool"))
	t.Cleanup(func() {
		for _, pid := range cl.workers() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	chatOpts := cl.options(chatTarget)
	chatOpts["webhook-format"] = "slack"
	// No SSH target, and SSH keys are the other instance's.
	delete(chatOpts, "identity")
	delete(chatOpts, "known-hosts")

	// The values: leaf11's own, then planted ones, then each changed.
	secrets := &secretSet{}
	var own secretValues
	l.running("leaf11", func(cfg map[string]any) { own = secretLeaves(t, cfg) })
	secrets.add("leaf11's own", own)
	planted := secretValues{alice: yescrypt(), tlsKey: privateKeyPEM(t), community: "noc-ro-" + hex.EncodeToString(randomBytes(12))}
	secrets.add("planted", planted)
	changed := secretValues{alice: yescrypt(), admin: yescrypt(), linuxadmin: yescrypt(), tlsKey: privateKeyPEM(t),
		community: "noc-ro-" + hex.EncodeToString(randomBytes(12))}
	secrets.add("changed", changed)

	const (
		alicePath     = "/system/aaa/authentication/user[username=alice]/password"
		communityPath = "/system/snmp/access-group[name=SNMPv2-RO-Community]/community-entry[name=RO-Community]/community"
		keyPath       = "/system/tls/server-profile[name=clab-profile]/key"
	)
	steps := []struct {
		user, comment string
		values        *secretValues // nil: leaf11 as it is
		added         int
		paths         []string // the summary's; nil for the first snapshot, which has none
	}{
		{user: "admin", comment: "baseline"},
		{user: "carol", comment: "user alice, TLS key, SNMP community", values: &planted, added: 2, paths: []string{
			"+" + alicePath, "+/system/aaa/authentication/user[username=alice]/username", "~" + communityPath, "~" + keyPath}},
		{user: "carol", comment: "rotate every secret", values: &changed, paths: []string{
			"~/system/aaa/authentication/admin-user/password", "~/system/aaa/authentication/linuxadmin-user/password",
			"~" + alicePath, "~" + communityPath, "~" + keyPath}},
	}

	watch := watchArgs(t, secrets, s.bin, filepath.Join(l.switchDir, "sr_cli"))
	var memory, chatMemory map[string]any
	var lc time.Time
	var shown []string // what each handle printed, and the cmdlines it ran from
	for i, st := range steps {
		step := fmt.Sprintf("commit %d (%s)", i+1, st.comment)
		var running []byte
		if st.values == nil {
			running = l.setRunning("leaf11", nil)
		} else {
			running = l.setRunning("leaf11", func(cfg map[string]any) { plantSecrets(cfg, *st.values) })
		}
		lc = l.commit(st.user, st.comment)
		var line, printed, chatLine, chatPrinted string
		memory, line, printed = fireShown(l, lc, opts, memory)
		chatMemory, chatLine, chatPrinted = fireShown(&cl, lc, chatOpts, chatMemory)
		shown = append(shown, line, printed, chatLine, chatPrinted)

		// The summary was made: the report counts it, the commit message, the
		// JSON body and the chat line name the secret leaves.
		name := snapName("leaf11", lc, st.user)
		says := "captured " + name
		if st.paths != nil {
			says += fmt.Sprintf(" (commit %d by %s; %d added, 0 removed, %d changed)", i+2, st.user, st.added, len(st.paths)-st.added)
		}
		l.wantStatus(step, 0, says)
		cl.wantStatus(step+", chat instance", 0, says)
		secrets.nowhere(t, step+": the report (SPOOL/status)", l.status())
		secrets.nowhere(t, step+": the chat instance's report", cl.status())

		summary := "Changes: first snapshot of this file on branch main\n"
		if st.paths != nil {
			summary = fmt.Sprintf("Changes: %d added, 0 removed, %d changed\n  %s\n", st.added, len(st.paths)-st.added, strings.Join(st.paths, "\n  "))
		}
		msg := repo.checkTip("git over SSH", i+1, gitCommit{user: st.user, email: st.user + "@leaf11", host: "leaf11", lastChange: lc,
			subject: fmt.Sprintf("leaf11: commit %d by %s: %s", i+2, st.user, st.comment), body: []string{summary}}, running)
		t.Logf("%s: git commit message:\n%s", step, msg)

		gw.checkObject(bucket, "srl/"+name, running, st.user)

		rec := hook.check(t, i+1, hookSecret, running, lc, st.user, name)
		if c := rec.Changes; st.paths == nil && c != nil ||
			st.paths != nil && (c == nil || c.Added != st.added || c.Removed != 0 || c.Changed != len(st.paths)-st.added || !slices.Equal(c.Paths, st.paths)) {
			t.Errorf("%s: the JSON webhook's changes are %+v; want %d added, %d changed: %q", step, c, st.added, len(st.paths)-st.added, st.paths)
		}
		posts := chat.all()
		if len(posts) != i+1 {
			t.Fatalf("%s: the chat webhook received %d posts, want %d", step, len(posts), i+1)
		}
		var slack struct{ Text string }
		if err := json.Unmarshal(posts[i].body, &slack); err != nil {
			t.Fatalf("%s: the chat webhook's body is not JSON: %v\n%s", step, err, posts[i].body)
		}
		want := "(changes unknown)"
		if st.paths != nil {
			want = fmt.Sprintf("(%d added, 0 removed, %d changed: %s)", st.added, len(st.paths)-st.added, strings.Join(st.paths, " "))
		}
		who := fmt.Sprintf("commit %d by %s", i+2, st.user)
		if i == 0 {
			who = "commits 1 by admin, 2 by admin" // the first snapshot names the boot commit too
		}
		if !strings.HasPrefix(slack.Text, "leaf11: "+who) || !strings.Contains(slack.Text, want) {
			t.Errorf("%s: the chat line is %q; want it to announce %s %s", step, slack.Text, who, want)
		}
	}
	// The reinvocation after the last commit: its handle prints the last run's report.
	for _, in := range []struct {
		l      *lab
		opts   map[string]any
		memory map[string]any
	}{{l, opts, memory}, {&cl, chatOpts, chatMemory}} {
		out, _ := in.l.runScript(in.l.event(lc, in.opts, in.memory))
		line, _ := cmdline(t, out)
		printed := in.l.runCmdline(line)
		in.l.waitWorker()
		if !strings.Contains(printed, "last run: captured "+snapName("leaf11", lc, "carol")) {
			t.Errorf("the reinvocation's handle printed %q; want the last run's report", printed)
		}
		shown = append(shown, line, printed)
	}
	watch.end()

	for i, s := range shown {
		secrets.nowhere(t, fmt.Sprintf("run-script cmdline or handle's line (%d of %d)", i+1, len(shown)), s)
	}
	for _, sp := range []string{l.spool, cl.spool} {
		b, err := os.ReadFile(filepath.Join(sp, "worker.log"))
		if err != nil || len(b) == 0 {
			t.Errorf("%s/worker.log: %v, %d bytes; want the workers' log", sp, err, len(b))
		}
		secrets.nowhere(t, sp+"/worker.log", string(b))
	}
	for i, p := range hook.all() {
		secrets.nowhere(t, fmt.Sprintf("the JSON webhook's body %d", i+1), string(p.body))
	}
	for i, p := range chat.all() {
		secrets.nowhere(t, fmt.Sprintf("the chat webhook's body %d", i+1), string(p.body))
	}
	secrets.nowhere(t, "git log --format=%B", repo.git("log", "--format=%B", "main"))
	for _, key := range gw.objects(bucket) {
		st, err := gw.client.StatObject(t.Context(), bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("S3: HEAD %s: %v", key, err)
		}
		if len(st.UserMetadata) == 0 {
			t.Errorf("S3: %s has no x-amz-meta-* metadata", key)
		}
		var headers strings.Builder
		for k, vs := range st.Metadata {
			fmt.Fprintf(&headers, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		secrets.nowhere(t, "S3: the headers of HEAD "+key, headers.String())
	}
	watch.check(t)
}

// fireShown is l.fire, returning also the run-script cmdline cfgsnap.py
// returned and the line handle printed (the instance state's stdout-stderr).
func fireShown(l *lab, lc time.Time, opts, memory map[string]any) (map[string]any, string, string) {
	l.t.Helper()
	out, printed := l.runScript(l.event(lc, opts, memory))
	if printed != "" {
		l.t.Errorf("cfgsnap.py printed %q", printed)
	}
	line, _ := cmdline(l.t, out)
	memory = remembers(l.t, out, lc)
	shown := l.runCmdline(line)
	l.waitWorker()
	return memory, line, shown
}

// secretValues are the values of the secret leaves the test plants; an empty
// one is left as it is.
type secretValues struct {
	alice             string // system aaa authentication user alice password
	admin, linuxadmin string // admin-user and linuxadmin-user password
	tlsKey, community string // tls server-profile clab-profile key; snmp access-group community
}

// plantSecrets sets the secret leaves of leaf11's configuration to v.
func plantSecrets(cfg map[string]any, v secretValues) {
	sys := cfg["srl_nokia-system:system"].(map[string]any)
	auth := sys["srl_nokia-aaa:aaa"].(map[string]any)["authentication"].(map[string]any)
	auth["user"] = []any{map[string]any{"username": "alice", "password": v.alice}}
	if v.admin != "" {
		auth["admin-user"].(map[string]any)["password"] = v.admin
	}
	if v.linuxadmin != "" {
		auth["linuxadmin-user"].(map[string]any)["password"] = v.linuxadmin
	}
	sys["srl_nokia-tls:tls"].(map[string]any)["server-profile"].([]any)[0].(map[string]any)["key"] = v.tlsKey
	group := sys["srl_nokia-system-snmp:snmp"].(map[string]any)["access-group"].([]any)[0].(map[string]any)
	group["community-entry"].([]any)[0].(map[string]any)["community"] = v.community
}

// secretLeaves reads leaf11's own values of the leaves plantSecrets sets.
func secretLeaves(t *testing.T, cfg map[string]any) (v secretValues) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("fixture srl-config-dcf-leaf11.json lacks a secret leaf the test changes: %v", r)
		}
	}()
	sys := cfg["srl_nokia-system:system"].(map[string]any)
	auth := sys["srl_nokia-aaa:aaa"].(map[string]any)["authentication"].(map[string]any)
	v.admin = auth["admin-user"].(map[string]any)["password"].(string)
	v.linuxadmin = auth["linuxadmin-user"].(map[string]any)["password"].(string)
	v.tlsKey = sys["srl_nokia-tls:tls"].(map[string]any)["server-profile"].([]any)[0].(map[string]any)["key"].(string)
	group := sys["srl_nokia-system-snmp:snmp"].(map[string]any)["access-group"].([]any)[0].(map[string]any)
	v.community = group["community-entry"].([]any)[0].(map[string]any)["community"].(string)
	return v
}

// yescrypt is a password hash as SR Linux stores one: $y$j9T$SALT$HASH.
func yescrypt() string {
	const b64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	pick := func(n int) string {
		b := randomBytes(n)
		for i := range b {
			b[i] = b64[int(b[i])%len(b64)]
		}
		return string(b)
	}
	return "$y$j9T$" + pick(16) + "$" + pick(43)
}

// privateKeyPEM is a new P-256 key, PEM-encoded as a TLS server profile takes it.
func privateKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// secretSet finds secret values in text. A value is looked for whole and in
// pieces: each run of it between '$', line breaks and PEM armour, cut into
// chunks of 24 characters (the last at least 12), so that any 47 characters
// of a value's random part give it away, also cut short, JSON-escaped or
// (in process arguments) hex-encoded as the script's cmdline encodes events.
type secretSet struct {
	needles, hexes []string // hexes[i] is needles[i] hex-encoded
	labels         []string
}

const chunk = 24

func (s *secretSet) add(label string, v secretValues) {
	for _, f := range []struct{ name, value string }{
		{"alice's password hash", v.alice}, {"admin-user's password hash", v.admin},
		{"linuxadmin-user's password hash", v.linuxadmin}, {"the TLS private key", v.tlsKey},
		{"the SNMP community", v.community},
	} {
		if f.value == "" {
			continue
		}
		what := label + " " + f.name
		s.put(what, f.value)
		for _, run := range strings.FieldsFunc(f.value, func(r rune) bool { return r == '$' || r == '\n' || r == '\r' }) {
			if strings.HasPrefix(run, "-----") {
				continue // PEM armour: the same in every key
			}
			for len(run) >= chunk/2 {
				n := min(chunk, len(run))
				s.put(what, run[:n])
				run = run[n:]
			}
		}
	}
}

func (s *secretSet) put(label, needle string) {
	s.needles = append(s.needles, needle)
	s.hexes = append(s.hexes, hex.EncodeToString([]byte(needle)))
	s.labels = append(s.labels, label)
}

// find returns the secrets text holds, each with the text around it.
func (s *secretSet) find(text string, hexToo bool) []string {
	var found []string
	seen := map[string]bool{}
	lower := ""
	if hexToo {
		lower = strings.ToLower(text)
	}
	for i, n := range s.needles {
		if seen[s.labels[i]] {
			continue
		}
		at := strings.Index(text, n)
		if at < 0 && hexToo {
			at = strings.Index(lower, s.hexes[i])
		}
		if at >= 0 {
			seen[s.labels[i]] = true
			found = append(found, fmt.Sprintf("%s (at %q)", s.labels[i], text[max(0, at-40):min(len(text), at+len(n)+40)]))
		}
	}
	return found
}

// nowhere fails the test if text holds a secret.
func (s *secretSet) nowhere(t *testing.T, where, text string) {
	t.Helper()
	for _, f := range s.find(text, true) {
		t.Errorf("%s holds %s", where, f)
	}
}

// argWatch reads the arguments of every process on the machine, again and
// again, until end, and keeps those that hold a secret. It stops by itself
// after workerBound times four, whatever happens: the runs take seconds.
type argWatch struct {
	secrets    *secretSet
	bin, srCli string
	stop, done chan struct{}
	mu         sync.Mutex
	leaks      map[string]bool
	seen       map[string]int // processes seen: "cfgsnap handle", "cfgsnap work", "sr_cli", by pid
	scans      int
	outlived   bool
}

func watchArgs(t *testing.T, secrets *secretSet, bin, srCli string) *argWatch {
	w := &argWatch{secrets: secrets, bin: bin, srCli: srCli, stop: make(chan struct{}), done: make(chan struct{}),
		leaks: map[string]bool{}, seen: map[string]int{}}
	pids := map[string]map[int]bool{}
	go func() {
		defer close(w.done)
		limit := time.After(4 * workerBound)
		for {
			select {
			case <-w.stop:
				return
			case <-limit:
				w.mu.Lock()
				w.outlived = true
				w.mu.Unlock()
				return
			default:
			}
			w.scan(pids)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.end)
	return w
}

func (w *argWatch) scan(pids map[string]map[int]bool) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
		kind := ""
		switch {
		case args[0] == w.bin && len(args) > 1:
			kind = "cfgsnap " + args[1]
		case slices.Contains(args, w.srCli):
			kind = "sr_cli"
		}
		found := w.secrets.find(strings.Join(args, " "), true)
		w.mu.Lock()
		if kind != "" {
			if pids[kind] == nil {
				pids[kind] = map[int]bool{}
			}
			pids[kind][pid] = true
			w.seen[kind] = len(pids[kind])
		}
		for _, f := range found {
			w.leaks[fmt.Sprintf("process %d (%s)'s arguments hold %s", pid, args[0], f)] = true
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.scans++
	w.mu.Unlock()
}

// end stops the watch and waits for it.
func (w *argWatch) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check fails the test if a process's arguments held a secret, or if the
// watch did not see the processes it is there for.
func (w *argWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("process watch: %d scans of /proc; saw %v", w.scans, w.seen)
	for l := range w.leaks {
		t.Error(l)
	}
	if w.outlived {
		t.Errorf("the process watch stopped after %v, before the runs ended", 4*workerBound)
	}
	for _, kind := range []string{"cfgsnap work", "sr_cli"} {
		if w.seen[kind] == 0 {
			t.Errorf("the process watch never saw %s: it did not watch what it is for", kind)
		}
	}
}
