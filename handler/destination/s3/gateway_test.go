package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testcert"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// gateway is a real S3 server for the tests: versitygw with its posix backend in
// a temporary folder, on a free port of 127.0.0.1, with random keys, keeping
// connections open as AWS does (versitygw closes each one by default). One plain
// and one TLS gateway serve the whole package (started on first use, stopped by
// TestMain); tests that stop their server start their own.
type gateway struct {
	bin            string
	dir            string // the posix root: one folder per bucket
	addr           string // 127.0.0.1:port
	access, secret string
	cert, key      string // PEM files when serving TLS
	ca             string // PEM of the CA that signed cert

	debug bool

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

var (
	shared    = map[bool]*gateway{}
	sharedMu  sync.Mutex
	sharedDir string
	buckets   atomic.Int64
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cfgsnap-s3-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	for _, g := range shared {
		g.stop()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// versitygw finds the gateway where make test-deps installs it, or on PATH.
func versitygw(t testing.TB) string {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(gopath))) {
			if bin := filepath.Join(p, "bin", "versitygw"); isExec(bin) {
				return bin
			}
		}
	}
	return testenv.NeedCommand(t, "versitygw")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// sharedGateway returns the package's gateway, plain or TLS.
func sharedGateway(t testing.TB, secure bool) *gateway {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if g := shared[secure]; g != nil {
		return g
	}
	dir, err := os.MkdirTemp(sharedDir, "gw-")
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, dir, secure)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	shared[secure] = g
	return g
}

// ownGateway starts a gateway for t alone, stopped when t ends.
func ownGateway(t *testing.T, secure bool) *gateway {
	t.Helper()
	g := newGateway(t, t.TempDir(), secure)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	return g
}

func newGateway(t testing.TB, dir string, secure bool) *gateway {
	t.Helper()
	g := &gateway{
		bin:    versitygw(t),
		dir:    filepath.Join(dir, "root"),
		addr:   freeAddr(t),
		access: "AK" + randHex(t, 8),
		secret: randHex(t, 20),
	}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if secure {
		g.ca, g.cert, g.key = testcert.Write(t, dir, time.Now().Add(24*time.Hour))
	}
	return g
}

func (g *gateway) start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	args := []string{"--access", g.access, "--secret", g.secret, "--port", g.addr, "--quiet", "--keep-alive"}
	if g.debug {
		args = append(args, "--log-level", "debug")
	}
	if g.cert != "" {
		args = append(args, "--cert", g.cert, "--key", g.key)
	}
	args = append(args, "posix", g.dir)
	cmd := exec.Command(g.bin, args...)
	// Killed with the test binary, even one that crashes before TestMain stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited at start: %s", g.log)
		default:
		}
		if c, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
			c.Close()
			g.cmd = cmd
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	return fmt.Errorf("versitygw did not listen on %s: %s", g.addr, g.log)
}

// stop kills the gateway (by its own process id) and waits until its port is closed.
func (g *gateway) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Kill()
	for range 200 {
		c, err := net.DialTimeout("tcp", g.addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	g.cmd = nil
}

// admin is a client that sees the gateway as its owner does, to set up buckets
// and to check what a destination did.
func (g *gateway) admin(t testing.TB) *minio.Client {
	t.Helper()
	// One request per connection: minio-go sends an empty PUT over plain HTTP
	// as one signed empty chunk, which versitygw leaves unread and answers later
	// as a request of its own (TestEmptyThenMore; Save sends no body instead).
	tr := &http.Transport{DisableKeepAlives: true}
	if g.ca != "" {
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(g.ca)
		if err != nil {
			t.Fatal(err)
		}
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c, err := minio.New(g.addr, &minio.Options{
		Creds:     credentials.NewStaticV4(g.access, g.secret, ""),
		Secure:    g.ca != "",
		Transport: tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bucket creates a fresh, empty bucket.
func (g *gateway) bucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("cfgsnap-%d-%s", buckets.Add(1), randHex(t, 3))
	if err := g.admin(t).MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("creating bucket %s: %v (%s)", name, err, g.log)
	}
	return name
}

// target is the s3:// URL of prefix in bucket on g.
func (g *gateway) target(bucket, prefix string) string {
	s := "s3://" + bucket
	if prefix != "" {
		s += "/" + prefix
	}
	s += "?endpoint=" + g.addr
	if g.ca == "" {
		s += "&tls=false"
	}
	return s
}

// internal names the gateway's own folders in a bucket (temporary and
// multipart-upload state), which are not objects.
var internal = []string{".sgwtmp"}

// stored lists every file under bucket/prefix in the gateway's posix folder,
// which is what the server holds, leaving out its internal folders.
func (g *gateway) stored(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	return desttest.ReadTree(t, filepath.Join(g.dir, bucket, filepath.FromSlash(prefix)), internal...)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
