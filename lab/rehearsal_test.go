package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/target"
	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// A rehearsal runs the switch's side of the lab for real, as far as a machine
// without Docker allows: no SR Linux and no containers, but everything else
// the lab uses, on the lab's own addresses, with the keys and secrets setup.sh
// makes and the instance options of configs/leaf1.cli.
//
//   - A network namespace stands for srbase-mgmt and the lab's management
//     network: the nodes' addresses (172.20.42.10 to .14) are on its loopback.
//   - sftp and git: OpenSSH sshd, keys only, internal-sftp, as servers/sshd.sh
//     configures it, each with its host key from setup.sh and the switch's
//     public key as the only authorized key; git's bare repository on main.
//   - s3: versitygw (make test-deps installs the release the lab's image
//     runs) with the bucket made as a folder and the switch's keys as its root
//     keys, as servers/s3.sh does.
//   - webhook: servers/webhook.py itself, with the webhook secret.
//   - The switch: a commit updates the running configuration and the commit
//     list that lab/sim/sr_cli serves, then cfgsnap's handler runs Handle and
//     Work, as cfgsnap.py's run-script and the worker do on the switch.
//
// Each node has a folder that stands for its root file system; servers keep
// their files there at the paths the lab uses (/backups, /srv/git/...,
// /data/..., /var/log/...), and the switch's folder holds cfgsnap's own,
// /etc/opt/srlinux/cfgsnap: made by the test as root's, 0755, with setup.sh's
// files where the switch's binds put them. What differs from the lab, and
// only that: the SSH targets log in as this machine's user below those
// folders (the servers here run as that user, not as backup and git), the
// files the instance names are the same ones below the switch's folder,
// netns names the stand-in namespace, and root's own options, the defaults on
// the switch, name the stand-ins: spool-dir cfgsnap's folder below the
// switch's, sr-cli lab/sim's sr_cli.
type rehearsal struct {
	t      *testing.T
	ns     string
	state  string
	nodes  map[string]*node
	roots  map[string]string // node -> the folder that stands for its /
	in     *ehInstance
	opts   map[string]any // the instance's options, as the switch passes them here
	srcli  string
	spool  string
	repo   string
	s3Addr string
	py     string
	git    string
	curl   string

	mu        sync.Mutex
	commits   []map[string]any
	running   string
	last      time.Time // last-change
	execStart time.Time // the event handler's last execution
	execOut   string
	errored   time.Time // an errored execution, when a test makes one up
	errors    int       // statistics execution-errors
	pending   sync.WaitGroup
}

const lastChangeLayout = "2006-01-02T15:04:05.000Z"

func newRehearsal(t *testing.T) *rehearsal {
	testenv.NeedRoot(t)
	sshdPath := testenv.NeedCommand(t, "/usr/sbin/sshd")
	testenv.NeedCommand(t, "scp") // the server side of scp -t
	r := &rehearsal{
		t:    t,
		py:   testenv.NeedCommand(t, "python3"),
		git:  testenv.NeedCommand(t, "git"),
		curl: testenv.NeedCommand(t, "curl"),
	}
	gw := versitygw(t)
	r.in, _ = loadInstance(t)
	topo, _, _ := loadTopology(t)
	r.nodes = topo.Topology.Nodes
	r.state = runSetup(t)
	tmp := t.TempDir()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	r.ns = nstest.NewNS(t)
	r.roots = map[string]string{}
	for name, n := range r.nodes {
		if out, err := exec.Command("ip", "-n", r.ns, "addr", "add", n.MgmtIPv4+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("ip addr add %s: %v: %s", n.MgmtIPv4, err, out)
		}
		r.roots[name] = filepath.Join(tmp, "nodes", name)
		mkdir(t, r.roots[name], 0o755)
	}
	at := func(node, p string) string { return filepath.Join(r.roots[node], p) }

	// sftp and git.
	mkdir(t, at("sftp", "backups"), 0o700)
	mkdir(t, at("sftp", "backups-scp"), 0o700)
	r.repo = at("git", "srv/git/configs.git")
	run(t, r.git, "init", "-q", "--bare", "-b", "main", r.repo)
	for _, n := range []string{"sftp", "git"} {
		startSSHD(t, sshdPath, r.ns, r.nodes[n].MgmtIPv4, filepath.Join(tmp, "sshd-"+n), r.state, n, me.Username)
	}

	// s3.
	mkdir(t, at("s3", "data/cfgsnap"), 0o755)
	r.s3Addr = net.JoinHostPort(r.nodes["s3"].MgmtIPv4, "7070")
	cmd := nstest.Command(r.ns, gw, "--port", r.s3Addr, "posix", at("s3", "data"))
	cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY="+firstLine(t, filepath.Join(r.state, "leaf1/s3-access-key")),
		"ROOT_SECRET_KEY="+firstLine(t, filepath.Join(r.state, "leaf1/s3-secret-key")))
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	start(t, cmd, "versitygw", out)
	waitFor(t, "versitygw on "+r.s3Addr, func() bool { return dialsIn(t, r.ns, r.s3Addr) }, out)

	// webhook: the script where the node has it, the log where it writes it.
	mkdir(t, at("webhook", "cfgsnap-lab"), 0o755)
	mkdir(t, at("webhook", "var/log"), 0o755)
	copyFile(t, filepath.Join(labDir(t), "servers/webhook.py"), at("webhook", "cfgsnap-lab/webhook.py"), 0o755)
	mkdir(t, filepath.Join(tmp, "webhook-run"), 0o755)
	startWebhookAt(t, r.py, net.JoinHostPort(r.nodes["webhook"].MgmtIPv4, "8080"),
		filepath.Join(r.state, "leaf1/webhook-secret"), at("webhook", "var/log/cfgsnap-webhook.jsonl"),
		filepath.Join(tmp, "webhook-run"), "ip", "netns", "exec", r.ns)

	// The switch: cfgsnap's folder, root's as on the switch (the folders above
	// it too: t.TempDir's are root's and 0700, below sticky /tmp), and the
	// files setup.sh makes where the binds put them, with their modes.
	sw := filepath.Join(tmp, "switch")
	mkdir(t, sw, 0o755)
	r.srcli = filepath.Join(sw, "sr_cli")
	copyFile(t, filepath.Join(labDir(t), "sim/sr_cli"), r.srcli, 0o755)
	r.spool = at(switchNode, option.New().SpoolDir)
	mkdir(t, r.spool, 0o755)
	for _, b := range binds(t, r.nodes[switchNode], switchNode) {
		if rel, ok := strings.CutPrefix(b.Src, ".state/"); ok {
			src := filepath.Join(r.state, rel)
			st, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			mkdir(t, filepath.Dir(at(switchNode, b.Dst)), 0o755)
			copyFile(t, src, at(switchNode, b.Dst), st.Mode().Perm())
		}
	}
	r.commits = []map[string]any{{"id": 1, "type": "shared", "name": "", "status": "complete", "comment": "",
		"username": "admin", "started": "2025-09-20T10:00:00.000Z", "ended": "2025-09-20T10:00:01.000Z"}}
	r.record("admin", "boot")

	// The instance's options, changed only where this machine differs.
	r.opts = r.in.optionsBelow(r.roots[switchNode])
	var targets []string
	for _, tg := range r.in.optionValues()["target"] {
		u, err := url.Parse(tg)
		if err != nil {
			t.Fatal(err)
		}
		switch u.Scheme {
		case "sftp", "scp":
			u.User, u.Path = url.User(me.Username), r.roots["sftp"]+u.Path
		case "git+ssh":
			u.User, u.Path = url.User(me.Username), r.roots["git"]+u.Path
		}
		targets = append(targets, u.String())
	}
	r.opts["target"] = targets
	r.opts["source"] = "sr_cli"
	r.opts["netns"] = r.ns
	t.Cleanup(r.pending.Wait)
	return r
}

// record makes a commit on the switch: user sets mgmt0's description. It
// returns the new last-change.
func (r *rehearsal) record(user, description string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	started := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	r.last = time.Now().UTC().Truncate(time.Millisecond)
	r.commits = append(r.commits, map[string]any{"id": len(r.commits) + 1, "type": "private", "name": "",
		"status": "complete", "comment": "", "username": user,
		"started": started.Format(lastChangeLayout), "ended": r.last.Format(lastChangeLayout)})
	r.running = fmt.Sprintf(`{"srl_nokia-system:system": {"srl_nokia-system-name:name": {"host-name": "leaf1"}}, "srl_nokia-interfaces:interface": [{"name": "mgmt0", "description": %q}]}`, description)
	writeFile(r.t, filepath.Join(filepath.Dir(r.srcli), "running.json"), r.running)
	commits, err := json.Marshal(map[string]any{"system": map[string]any{"configuration": map[string]any{"commit": r.commits}}})
	if err != nil {
		r.t.Fatal(err)
	}
	writeFile(r.t, filepath.Join(filepath.Dir(r.srcli), "commits.json"), string(commits))
	return r.last
}

// handle is the event handler's run for lastChange: Handle, as cfgsnap.py's
// run-script starts it, then the worker, which delivers to every target.
func (r *rehearsal) handle(ctx context.Context, lastChange time.Time) error {
	r.mu.Lock()
	r.execStart = time.Now().UTC()
	r.mu.Unlock()
	// Root's own options: on the switch, the defaults.
	base := option.New()
	if err := base.Set("spool-dir", []string{r.spool}); err != nil {
		return err
	}
	if err := base.Set("sr-cli", []string{r.srcli}); err != nil {
		return err
	}
	line, err := handler.Handle(ctx, r.in.event(lastChange.Format(lastChangeLayout), r.opts), base,
		handler.Env{Worker: func(*option.Config, []string) error { return nil }})
	if err != nil {
		return fmt.Errorf("handle: %w", err)
	}
	r.mu.Lock()
	r.execOut = line
	r.mu.Unlock()
	return handler.Work(ctx, base, handler.Env{Logf: r.t.Logf})
}

func (r *rehearsal) at(node, p string) string { return filepath.Join(r.roots[node], p) }

func TestRehearsal(t *testing.T) {
	r := newRehearsal(t)
	nonce := fmt.Sprintf("cfgsnap-lab-rehearsal-%d", time.Now().UnixNano())
	const who = "alice"
	lastChange := r.record(who, nonce)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r.handle(ctx, lastChange); err != nil {
		t.Fatal(err)
	}

	// What lab/verify.sh checks on the lab.
	name := fmt.Sprintf("leaf1/leaf1_%s_%s.json", snapshot.Timestamp(lastChange), who)
	for _, dir := range []string{"backups", "backups-scp"} {
		b, err := os.ReadFile(r.at("sftp", dir+"/"+name))
		if err != nil || string(b) != r.running {
			t.Errorf("sftp node, /%s/%s: %v (%d bytes)", dir, name, err, len(b))
		}
	}
	gitLog := strings.TrimSpace(run(t, r.git, "--git-dir="+r.repo, "log", "-1", "--format=%an %at", "main", "--", "leaf1.json"))
	if want := fmt.Sprintf("%s %d", who, lastChange.Unix()); gitLog != want {
		t.Errorf("git: newest commit of leaf1.json: %q, want %q", gitLog, want)
	}
	if got := run(t, r.git, "--git-dir="+r.repo, "show", "main:leaf1.json"); !strings.Contains(got, nonce) {
		t.Errorf("git: leaf1.json on main lacks the nonce")
	}
	if b, err := os.ReadFile(r.at("s3", "data/cfgsnap/srl/"+name)); err != nil || !strings.Contains(string(b), nonce) {
		t.Errorf("s3: /data/cfgsnap/srl/%s: %v", name, err)
	}
	// The HEAD verify.sh makes, with the same curl options.
	head := exec.Command("ip", "netns", "exec", r.ns, r.curl, "-sS", "--fail", "--max-time", "10", "-I", "-K", "-",
		"--aws-sigv4", "aws:amz:us-east-1:s3", "-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"http://"+r.s3Addr+"/cfgsnap/srl/"+name)
	head.Stdin = strings.NewReader(fmt.Sprintf("user = \"%s:%s\"\n",
		firstLine(t, filepath.Join(r.state, "leaf1/s3-access-key")), firstLine(t, filepath.Join(r.state, "leaf1/s3-secret-key"))))
	if out, err := head.CombinedOutput(); err != nil || !strings.Contains(strings.ToLower(string(out)), "x-amz-meta-user: "+who) {
		t.Errorf("s3: HEAD as verify.sh makes it: %v\n%s", err, out)
	}
	check := exec.Command(r.py, r.at("webhook", "cfgsnap-lab/webhook.py"), "check", "--log", r.at("webhook", "var/log/cfgsnap-webhook.jsonl"),
		"--name", name, "--user", who, "--last-change", lastChange.Format(lastChangeLayout), "--stores", "4")
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("webhook: the check verify.sh runs: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(r.spool, "pending")); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("spool: pending %q, want 0", b)
	}
	status, _ := os.ReadFile(filepath.Join(r.spool, "status"))
	t.Logf("report: %s", status)
	if strings.Contains(string(status), "FAILED") || !strings.Contains(string(status), "0 pending") {
		t.Errorf("report: %s", status)
	}
	base := option.New()
	for _, tg := range r.opts["target"].([]string) {
		if !strings.Contains(string(status), target.Display(tg, base)) {
			t.Errorf("the report does not name %s", target.Display(tg, base))
		}
	}
}

// TestVerifyScriptOnRehearsal runs lab/verify.sh itself against a rehearsal:
// a stand-in docker command treats each node's folder as its container, and a
// stand-in JSON-RPC server on the switch's address answers as SR Linux does
// (the shapes of ../shared/fixtures/srlinux/jsonrpc-*), making a commit as
// the basic-auth user on each set and running the event handler after it. The
// script must pass, and fail when the switch records another user or an
// errored execution after the commit.
func TestVerifyScriptOnRehearsal(t *testing.T) {
	r := newRehearsal(t)
	bin := filepath.Join(t.TempDir(), "bin")
	mkdir(t, bin, 0o755)
	writeFile(t, filepath.Join(bin, "docker"), fakeDocker)
	if err := os.Chmod(filepath.Join(bin, "docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range r.nodes {
		writeFile(t, r.at(name, ".ip"), n.MgmtIPv4+"\n")
	}
	password := regexp.MustCompile(`(?m)^set / system aaa authentication user alice password (\S+)$`).FindStringSubmatch(string(read(t, startupFile)))
	if password == nil {
		t.Fatal("no password for alice")
	}
	sw := &fakeSwitch{r: r, user: "alice", password: password[1]}
	l := nstest.Listen(t, r.ns, net.JoinHostPort(r.nodes[switchNode].MgmtIPv4, "80"))
	srv := &http.Server{Handler: sw}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	verify := func() (string, error) {
		cmd := exec.Command("ip", "netns", "exec", r.ns, "bash", filepath.Join(labDir(t), "verify.sh"))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_DOCKER_ROOT="+filepath.Dir(r.roots[switchNode]),
			"LAB_STATE="+r.state, "VERIFY_TIMEOUT=30")
		out, err := cmd.CombinedOutput()
		r.pending.Wait()
		return string(out), err
	}

	out, err := verify()
	if err != nil || !strings.Contains(out, "PASS: commit") {
		t.Fatalf("verify.sh on the rehearsal: %v\n%s", err, out)
	}
	t.Logf("verify.sh:\n%s", out)

	// It notices an errored execution after the commit...
	sw.set("", true)
	out, err = verify()
	if err == nil || !strings.Contains(out, "last-errored-execution at") {
		t.Errorf("verify.sh passed with an errored execution after the commit: %v\n%s", err, out)
	}
	sw.set("", false)
	// ...but not one before it.
	out, err = verify()
	if err != nil || !strings.Contains(out, "note: an errored execution before the commit") {
		t.Errorf("verify.sh on an errored execution before the commit: %v\n%s", err, out)
	}

	// And a commit recorded as someone else's.
	sw.set("admin", false)
	out, err = verify()
	if err == nil || !strings.Contains(out, "the newest commit is by admin, not alice") {
		t.Errorf("verify.sh passed with the commit recorded as admin's: %v\n%s", err, out)
	}
}

// fakeDocker is docker as lab/verify.sh uses it, for a rehearsal: container
// clab-cfgsnap-NODE is the folder $FAKE_DOCKER_ROOT/NODE; exec runs the command
// here, with each absolute path argument (and --opt=/path) moved into that
// folder; inspect says the container runs and gives NODE/.ip.
const fakeDocker = `#!/usr/bin/env bash
set -euo pipefail
root=${FAKE_DOCKER_ROOT:?}
node() { local n=${1#clab-cfgsnap-}; [ -d "$root/$n" ] || { echo "Error: No such container: $1" >&2; exit 1; }; echo "$n"; }
case ${1:-} in
inspect)
	[ "$2" = -f ] || { echo "fake docker: want inspect -f FORMAT NAME" >&2; exit 2; }
	n=$(node "$4")
	case $3 in
	*State.Running*) echo true ;;
	*IPAddress*) cat "$root/$n/.ip" ;;
	*) echo "fake docker: format $3" >&2; exit 2 ;;
	esac
	;;
exec)
	shift
	while [ "${1:-}" = -u ]; do shift 2; done
	n=$(node "$1")
	shift
	cmd=$1
	shift
	if [ "$cmd" = sr_cli ]; then
		echo "(sr_cli $*: no SR Linux in a rehearsal)"
		exit 0
	fi
	args=()
	for a in "$@"; do
		case $a in
		/*) args+=("$root/$n$a") ;;
		--*=/*) args+=("${a%%=*}=$root/$n${a#*=}") ;;
		*) args+=("$a") ;;
		esac
	done
	exec "$cmd" "${args[@]}"
	;;
*)
	echo "fake docker: $*" >&2
	exit 2
	;;
esac
`

// fakeSwitch answers JSON-RPC as SR Linux does, for what verify.sh asks.
type fakeSwitch struct {
	r              *rehearsal
	user, password string

	mu              sync.Mutex // the test sets these while the server runs
	recordAs        string     // records commits as this user instead of the caller
	failAfterCommit bool       // reports an errored execution after each commit
}

func (f *fakeSwitch) set(recordAs string, failAfterCommit bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recordAs, f.failAfterCommit = recordAs, failAfterCommit
}

func (f *fakeSwitch) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	u, p, ok := req.BasicAuth()
	if !ok || u != f.user || p != f.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var call struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params struct {
			Commands []struct {
				Action    string `json:"action"`
				Path      string `json:"path"`
				Value     any    `json:"value"`
				Datastore string `json:"datastore"`
			} `json:"commands"`
		} `json:"params"`
	}
	if err := json.NewDecoder(req.Body).Decode(&call); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer := map[string]any{"jsonrpc": "2.0", "id": call.ID}
	var results []any
	fail := func(msg string) {
		answer["error"] = map[string]any{"code": -1, "message": msg}
	}
	r := f.r
	f.mu.Lock()
	recordAs, failAfterCommit := f.recordAs, f.failAfterCommit
	f.mu.Unlock()
	for _, c := range call.Params.Commands {
		switch {
		case call.Method == "set" && c.Action == "update" && c.Path == "/interface[name=mgmt0]/description":
			who := u
			if recordAs != "" {
				who = recordAs
			}
			lc := r.record(who, fmt.Sprint(c.Value))
			if failAfterCommit {
				// Before the deliveries, so that verify.sh, which looks at the
				// state once they are done, cannot miss it.
				r.mu.Lock()
				r.errored = lc.Add(time.Millisecond)
				r.errors++
				r.mu.Unlock()
			}
			r.pending.Add(1)
			go func() { // the event handler, after the commit
				defer r.pending.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := r.handle(ctx, lc); err != nil {
					r.t.Errorf("the event handler's run: %v", err)
				}
			}()
			results = append(results, map[string]any{})
		case call.Method == "get" && c.Datastore == "state":
			r.mu.Lock()
			switch c.Path {
			case "/system/configuration/last-change":
				results = append(results, r.last.Format(lastChangeLayout))
			case "/system/configuration":
				results = append(results, map[string]any{"last-change": r.last.Format(lastChangeLayout), "commit": r.commits})
			case "/system/name/host-name":
				results = append(results, "leaf1")
			case "/system/event-handler/instance[name=cfgsnap]":
				inst := map[string]any{"name": "cfgsnap", "admin-state": "enable", "oper-state": "up",
					"upython-script": "cfgsnap.py", "paths": r.in.Paths}
				if !r.execStart.IsZero() {
					inst["last-execution"] = map[string]any{"start-time": r.execStart.Format(lastChangeLayout), "stdout-stderr": r.execOut}
				}
				if !r.errored.IsZero() {
					inst["last-errored-execution"] = map[string]any{"oper-down-reason": "script-action-failed",
						"oper-down-reason-detail": "Script action timed out", "start-time": r.errored.Format(lastChangeLayout)}
				}
				// A module prefix, as augmenting modules' keys carry in JSON.
				results = append(results, map[string]any{"srl_nokia-event-handler:instance-state-note": "rehearsal", "oper-state": inst["oper-state"],
					"name": inst["name"], "admin-state": inst["admin-state"], "last-execution": inst["last-execution"],
					"last-errored-execution": inst["last-errored-execution"], "statistics": map[string]any{"execution-count": fmt.Sprint(len(r.commits)), "execution-errors": fmt.Sprint(r.errors)}})
			default:
				fail("path not found: " + c.Path)
			}
			r.mu.Unlock()
		default:
			fail(fmt.Sprintf("the stand-in switch does not do %s %s %s", call.Method, c.Action, c.Path))
		}
	}
	if _, bad := answer["error"]; !bad {
		answer["result"] = results
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}

// startSSHD runs OpenSSH's sshd in ns on addr:22 with the settings
// servers/sshd.sh writes, node's host key from setup.sh, and the switch's
// public key as the only authorized key, for user.
func startSSHD(t testing.TB, sshdPath, ns, addr, dir, state, node, user string) {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	mkdir(t, dir, 0o700)
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	copyFile(t, filepath.Join(state, node, "ssh_host_ed25519_key"), hostKey, 0o600)
	auth := filepath.Join(dir, "authorized_keys")
	copyFile(t, filepath.Join(state, "leaf1/id_ed25519.pub"), auth, 0o600)
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(t, cfg, strings.Join([]string{
		"ListenAddress " + addr + ":22",
		"HostKey " + hostKey,
		"AllowUsers " + user,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"AuthorizedKeysFile " + auth,
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitEmptyPasswords no",
		"UsePAM no",
		"StrictModes no", // the test's temporary folders
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
		// Not in the lab, whose users' shells read no startup files: here the
		// user is this machine's, whose ~/.bashrc bash reads for commands
		// from sshd unless SHLVL says it is not the first shell.
		"SetEnv SHLVL=1",
		"",
	}, "\n"))
	cmd := nstest.Command(ns, sshdPath, "-D", "-e", "-f", cfg)
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	start(t, cmd, "sshd ("+node+")", out)
	waitFor(t, "sshd ("+node+") on "+addr, func() bool { return strings.Contains(out.String(), "Server listening on") }, out)
}

// dialsIn reports whether a TCP connection to addr succeeds from inside ns.
func dialsIn(t testing.TB, ns, addr string) bool {
	ok := false
	nstest.Do(t, ns, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			ok = true
		}
		return nil
	})
	return ok
}

// versitygw finds the S3 gateway where make test-deps installs it, or on PATH.
func versitygw(t testing.TB) string {
	t.Helper()
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			bin := filepath.Join(p, "bin", "versitygw")
			if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
				return bin
			}
		}
	}
	return testenv.NeedCommand(t, "versitygw")
}

func mkdir(t testing.TB, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
}

func firstLine(t testing.TB, path string) string {
	t.Helper()
	line, _, _ := strings.Cut(string(readAbs(t, path)), "\n")
	return line
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
