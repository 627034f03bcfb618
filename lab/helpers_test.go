package lab

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// output collects what a server process writes, safe to read while it runs.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// newSignedRequest is a POST of body as cfgsnap signs it with key ("": unsigned).
func newSignedRequest(u, key, body string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(body))
		req.Header.Set("X-Cfgsnap-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	return req, nil
}

// start starts a server process for t, killed (by its own process id) when t
// ends; its output is logged if t failed. No Pdeathsig: it fires when the
// thread that started the process ends, and the goroutines that enter network
// namespaces end their threads on purpose.
func start(t testing.TB, cmd *exec.Cmd, name string, out *output) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() && out != nil && out.String() != "" {
			t.Logf("%s output:\n%s", name, out)
		}
	})
}

// waitFor polls cond for up to 15 s.
func waitFor(t testing.TB, what string, cond func() bool, out *output) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	log := ""
	if out != nil {
		log = out.String()
	}
	t.Fatalf("waiting for %s: timed out\n%s", what, log)
}
