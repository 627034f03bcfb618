package git_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/git"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// httpBackend is git's own smart-HTTP server, run as a CGI program.
const httpBackend = "/usr/lib/git-core/git-http-backend"

// repo is a bare repository on this machine, checked with the git CLI. It
// refuses non-fast-forward updates, so no test passes by force pushing, and
// checks every object it receives, as a careful server does.
type repo struct {
	t   testing.TB
	dir string
}

// newRepo creates an empty bare repository, root/name, whose HEAD is main.
func newRepo(t testing.TB, root, name string) *repo {
	t.Helper()
	testenv.NeedCommand(t, "git")
	r := &repo{t: t, dir: filepath.Join(root, name)}
	run(t, "", "git", "init", "-q", "--bare", "-b", "main", r.dir)
	for _, kv := range [][2]string{
		{"http.receivepack", "true"},
		{"receive.denyNonFastForwards", "true"},
		{"receive.denyDeletes", "true"},
		{"receive.fsckObjects", "true"},
	} {
		r.git("config", kv[0], kv[1])
	}
	return r
}

// git runs git on the repository and returns its output.
func (r *repo) git(args ...string) string {
	r.t.Helper()
	return run(r.t, "", "git", append([]string{"--git-dir=" + r.dir}, args...)...)
}

// has reports whether the branch exists.
func (r *repo) has(branch string) bool {
	cmd := gitCmd("--git-dir="+r.dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch)
	return cmd.Run() == nil
}

// files is every file in the branch's tip, as git ls-tree and cat-file see it.
func (r *repo) files(branch string) map[string][]byte {
	r.t.Helper()
	out := map[string][]byte{}
	if !r.has(branch) {
		return out
	}
	for _, line := range strings.Split(r.git("ls-tree", "-r", "-z", "--full-tree", "refs/heads/"+branch), "\x00") {
		if line == "" {
			continue
		}
		meta, name, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		out[name] = []byte(r.git("cat-file", "blob", f[2]))
	}
	return out
}

// count is the number of commits on the branch.
func (r *repo) count(branch string) int {
	r.t.Helper()
	if !r.has(branch) {
		return 0
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(r.git("rev-list", "refs/heads/"+branch)), "\n") {
		if l != "" {
			n++
		}
	}
	return n
}

// fsck checks the repository strictly.
func (r *repo) fsck() {
	r.t.Helper()
	r.git("fsck", "--strict", "--no-progress")
}

func gitCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Env = gitEnv()
	return cmd
}

// gitEnv keeps the machine's git configuration from changing what tests see.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
}

func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = gitEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// httpServer serves the repositories below root with git-http-backend, as
// http://127.0.0.1:PORT/NAME. If password is set, it demands it for user
// (basic auth); wrap, if set, sees each request first.
type httpOptions struct {
	TLS            bool
	User, Password string
	Wrap           func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

func httpServer(t testing.TB, root string, o httpOptions) *httptest.Server {
	t.Helper()
	testenv.NeedCommand(t, "git")
	testenv.NeedCommand(t, httpBackend)
	var h http.Handler = &cgi.Handler{
		Path: httpBackend,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
		Stderr: logWriter{t},
	}
	if o.Password != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != o.User || p != o.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	if o.Wrap != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { o.Wrap(w, r, inner) })
	}
	var s *httptest.Server
	if o.TLS {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// caFile writes the certificate of a TLS test server as PEM, as option ca-file takes it.
func caFile(t testing.TB, s *httptest.Server) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// options are the defaults, with the test's SSH key and known_hosts if s is set.
func options(s *sshd.Server) *option.Config {
	c := option.New()
	c.ConnectTimeout = 5 * time.Second
	if s != nil {
		c.Identities = []string{s.ClientKey()}
		c.KnownHosts = s.KnownHosts()
	}
	return c
}

// dialer counts the connections it makes, as package netns would make them.
type dialer struct{ n atomic.Int32 }

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// newDest returns the destination for target and closes it when t ends.
func newDest(t testing.TB, target string, c *option.Config, dial destination.Dial, logf func(string, ...any)) *git.Destination {
	t.Helper()
	u, err := parse(target)
	if err != nil {
		t.Fatal(err)
	}
	d, err := git.New(u, c, dial, logf)
	if err != nil {
		t.Fatalf("New(%s): %v", target, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// parse reads a target as target.Parse will: scp-like forms through SCPURL.
func parse(target string) (*url.URL, error) {
	if git.IsSCPLike(target) {
		return git.SCPURL(target)
	}
	return url.Parse(target)
}

// logWriter sends what a server writes to stderr to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("server: %s", bytes.TrimSpace(p))
	return len(p), nil
}
