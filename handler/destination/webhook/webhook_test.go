package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/webhook"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

const secret = "s3cret-shared-with-the-receiver"

// receiver is a webhook endpoint as a Salt reactor or any careful receiver
// runs one: it checks the signature against the shared secret, decodes the
// body, and keeps each included configuration under the posted name.
type receiver struct {
	secret []byte // nil: accept unsigned bodies
	// answer, if set, may override the answer to request n (from 1): code 0
	// means "handle normally".
	answer func(n int) (code int, contentType, body string)

	mu       sync.Mutex
	requests []request
	files    map[string][]byte
}

type request struct {
	method, host, path string
	header             http.Header
	body               []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, request{r.Method, r.Host, r.URL.Path, r.Header.Clone(), body})
	n := len(rc.requests)
	rc.mu.Unlock()
	if rc.secret != nil && !validSignature(rc.secret, body, r.Header.Get("X-Cfgsnap-Signature")) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.answer != nil {
		if code, ct, text := rc.answer(n); code != 0 {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(code)
			io.WriteString(w, text)
			return
		}
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusUnsupportedMediaType)
		return
	}
	var slack webhook.Slack
	if json.Unmarshal(body, &slack) == nil && slack.Text != "" {
		io.WriteString(w, "ok")
		return
	}
	var m webhook.Message
	if err := json.Unmarshal(body, &m); err != nil || m.Schema != webhook.Schema {
		http.Error(w, "not a cfgsnap body", http.StatusBadRequest)
		return
	}
	if m.Config != nil {
		data := []byte(*m.Config)
		if m.ConfigEncoding == webhook.EncodingBase64 {
			if data, err = base64.StdEncoding.DecodeString(*m.Config); err != nil {
				http.Error(w, "bad base64", http.StatusBadRequest)
				return
			}
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != m.Size || hex.EncodeToString(sum[:]) != m.SHA256 {
			http.Error(w, "config does not match its size and sha256", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		if rc.files == nil {
			rc.files = map[string][]byte{}
		}
		rc.files[m.Name] = data
		rc.mu.Unlock()
	}
	io.WriteString(w, `{"success": true}`)
}

func validSignature(secret, body []byte, header string) bool {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal([]byte(header), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func (rc *receiver) last(t *testing.T) request {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.requests) == 0 {
		t.Fatal("the receiver got no request")
	}
	return rc.requests[len(rc.requests)-1]
}

func (rc *receiver) stored() map[string][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range rc.files {
		out[k] = v
	}
	return out
}

// config returns options with the signing secret in a file.
func config(t *testing.T) *option.Config {
	t.Helper()
	t.Setenv(webhook.SecretEnv, "")
	c := option.New()
	c.WebhookSecretFile = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(c.WebhookSecretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

var direct = (&net.Dialer{}).DialContext

func open(t *testing.T, raw string, c *option.Config) *webhook.Destination {
	t.Helper()
	d, err := webhook.New(mustParse(t, raw), c, direct, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func serve(t *testing.T, rc *receiver) *httptest.Server {
	s := httptest.NewServer(rc)
	t.Cleanup(s.Close)
	return s
}

var leafConfig = []byte("{\n  \"system\": {\n    \"name\": {\n      \"host-name\": \"leaf1\"\n    }\n  }\n}\n")

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fullRecord is what the worker knows about a commit snapshot.
func fullRecord(data []byte) snapshot.Record {
	return snapshot.Record{
		Host:       "leaf1",
		LastChange: time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC),
		User:       "alice",
		Comment:    "e1-1 <up> & running\nsecond line",
		Commits:    []snapshot.Commit{{ID: 41, Username: "bob", Status: "complete"}, {ID: 42, Username: "alice", Status: "complete"}},
		Taken:      time.Date(2025, 9, 20, 11, 2, 9, 0, time.UTC),
		Name:       "leaf1/leaf1_20250920T110208.456Z_alice.json",
		Size:       int64(len(data)),
		SHA256:     hexSum(data),
		Changes:    &snapshot.Changes{Added: 1, Changed: 2, Paths: []string{"+/interface[name=e1-1]/description", "~/system/name/host-name"}},
		Stored:     []string{"sftp://backup@10.0.0.5/srl/leaf1/leaf1_20250920T110208.456Z_alice.json", "git@git.example.net:netops/configs.git#main:leaf1.json"},
	}
}

func wantKind(t *testing.T, err error, kind fail.Kind, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %d", kind)
	}
	if fail.KindOf(err) != kind {
		t.Errorf("error %q has kind %d, want %d", err, fail.KindOf(err), kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans lines", err)
	}
}

// The suite every destination passes, against a receiver that keeps what it
// is sent: with webhook-include-config, a webhook is a (signed) file store.
func TestConformance(t *testing.T) {
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		rc := &receiver{secret: []byte(secret)}
		s := serve(t, rc)
		c := config(t)
		c.WebhookIncludeConfig = true
		return open(t, s.URL+"/hook/cfgsnap/leaf1", c), rc.stored
	})
}

func TestBodyIsTheSignedRecord(t *testing.T) {
	rc := &receiver{secret: []byte(secret)}
	s := serve(t, rc)
	d := open(t, s.URL+"/hook/cfgsnap/leaf1", config(t))
	rec := fullRecord(leafConfig)
	if err := d.Save(t.Context(), rec, bytes.NewReader(leafConfig)); err != nil {
		t.Fatal(err)
	}
	req := rc.last(t)
	if req.method != http.MethodPost || req.path != "/hook/cfgsnap/leaf1" {
		t.Errorf("got %s %s, want POST /hook/cfgsnap/leaf1", req.method, req.path)
	}
	if ct := req.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (salt-api decodes only what it is told is JSON)", ct)
	}
	if !validSignature([]byte(secret), req.body, req.header.Get("X-Cfgsnap-Signature")) {
		t.Errorf("signature %q does not match the body", req.header.Get("X-Cfgsnap-Signature"))
	}
	var got map[string]any
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"schema":      webhook.Schema,
		"host":        "leaf1",
		"last_change": "2025-09-20T11:02:08.456Z",
		"user":        "alice",
		"comment":     rec.Comment,
		"manual":      false,
		"taken":       "2025-09-20T11:02:09Z",
		"name":        rec.Name,
		"size":        float64(len(leafConfig)),
		"sha256":      hexSum(leafConfig),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	commits, _ := json.Marshal(got["commits"])
	if string(commits) != `[{"id":41,"status":"complete","username":"bob"},{"id":42,"status":"complete","username":"alice"}]` {
		t.Errorf("commits = %s", commits)
	}
	changes, _ := json.Marshal(got["changes"])
	if string(changes) != `{"added":1,"changed":2,"paths":["+/interface[name=e1-1]/description","~/system/name/host-name"],"removed":0}` {
		t.Errorf("changes = %s", changes)
	}
	stored, _ := json.Marshal(got["stored"])
	// Locations come from the stores and carry no secret; they go as they are,
	// so a receiver can fetch from them.
	if string(stored) != `["sftp://backup@10.0.0.5/srl/leaf1/leaf1_20250920T110208.456Z_alice.json","git@git.example.net:netops/configs.git#main:leaf1.json"]` {
		t.Errorf("stored = %s, want the stores' locations as they are", stored)
	}
	for _, k := range []string{"config", "config_encoding"} {
		if _, ok := got[k]; ok {
			t.Errorf("body has %s although webhook-include-config is off", k)
		}
	}
}

// A record without a hash (as deliver builds it from name and size) gets the
// hash of the bytes read; one whose hash is wrong posts nothing.
func TestSHA256(t *testing.T) {
	rc := &receiver{secret: []byte(secret)}
	d := open(t, serve(t, rc).URL+"/hook", config(t))
	if err := d.Save(t.Context(), snapshot.Record{Name: "a.json", Size: int64(len(leafConfig))}, bytes.NewReader(leafConfig)); err != nil {
		t.Fatal(err)
	}
	var m webhook.Message
	json.Unmarshal(rc.last(t).body, &m)
	if m.SHA256 != hexSum(leafConfig) {
		t.Errorf("sha256 %q, want that of the bytes read", m.SHA256)
	}
	rec := snapshot.Record{Name: "b.json", Size: int64(len(leafConfig)), SHA256: hexSum([]byte("other"))}
	err := d.Save(t.Context(), rec, bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Internal, "b.json", "damaged")
	if rc.count() != 1 {
		t.Errorf("%d requests, want none for the damaged snapshot", rc.count()-1)
	}
}

func TestIncludeConfig(t *testing.T) {
	binary := []byte{0xff, 0xfe, 0x00, '{', 0x80, '}'}
	for _, tc := range []struct {
		name     string
		data     []byte
		encoding string
	}{
		{"UTF8AsText", append([]byte("{\"description\": \"Zürich \\u2028 \x00\"}\n"), leafConfig...), webhook.EncodingUTF8},
		{"BinaryAsBase64", binary, webhook.EncodingBase64},
		{"Empty", []byte{}, webhook.EncodingUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &receiver{secret: []byte(secret)}
			c := config(t)
			c.WebhookIncludeConfig = true
			d := open(t, serve(t, rc).URL+"/hook", c)
			rec := fullRecord(tc.data)
			if err := d.Save(t.Context(), rec, bytes.NewReader(tc.data)); err != nil {
				t.Fatal(err)
			}
			var m webhook.Message
			if err := json.Unmarshal(rc.last(t).body, &m); err != nil {
				t.Fatal(err)
			}
			if m.ConfigEncoding != tc.encoding || m.Config == nil {
				t.Fatalf("config_encoding %q (config %v), want %q", m.ConfigEncoding, m.Config != nil, tc.encoding)
			}
			if tc.encoding == webhook.EncodingUTF8 && *m.Config != string(tc.data) {
				t.Errorf("config %q, want the bytes unchanged", *m.Config)
			}
			if got := rc.stored()[rec.Name]; !bytes.Equal(got, tc.data) {
				t.Errorf("receiver decoded %q, want %q", got, tc.data)
			}
		})
	}
}

// Too large a configuration is refused before it is read into memory.
func TestIncludeConfigBound(t *testing.T) {
	rc := &receiver{}
	c := config(t)
	c.WebhookIncludeConfig = true
	d := open(t, serve(t, rc).URL+"/hook", c)
	err := d.Save(t.Context(), snapshot.Record{Name: "huge.json", Size: webhook.MaxConfig + 1}, failingReader{})
	wantKind(t, err, fail.Usage, "huge.json", "webhook-include-config off")
	if rc.count() != 0 {
		t.Errorf("%d requests, want none", rc.count())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("spool file unreadable") }

// Nothing is posted unless all of the snapshot was read, whether or not the
// body carries it: the record's size and hash would otherwise be a lie.
func TestBadReaderPostsNothing(t *testing.T) {
	for _, include := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			r    io.Reader
			size int64
		}{
			{"Failing", io.MultiReader(bytes.NewReader(leafConfig[:10]), failingReader{}), int64(len(leafConfig))},
			{"Short", bytes.NewReader(leafConfig), int64(len(leafConfig)) + 1},
			{"Long", bytes.NewReader(leafConfig), int64(len(leafConfig)) - 1},
		} {
			t.Run(fmt.Sprintf("%s/include=%v", tc.name, include), func(t *testing.T) {
				rc := &receiver{secret: []byte(secret)}
				c := config(t)
				c.WebhookIncludeConfig = include
				d := open(t, serve(t, rc).URL+"/hook", c)
				err := d.Save(t.Context(), snapshot.Record{Name: "x.json", Size: tc.size}, tc.r)
				wantKind(t, err, fail.Deliver, "x.json", "nothing was posted")
				if rc.count() != 0 {
					t.Errorf("%d requests, want none", rc.count())
				}
			})
		}
	}
}

// 5xx, 408 and 429 may pass: WithRetry tries again and the third try lands.
func TestRetriesPassingFailures(t *testing.T) {
	for _, code := range []int{500, 502, 503, 504, 408, 429} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rc := &receiver{secret: []byte(secret), answer: func(n int) (int, string, string) {
				if n < 3 {
					return code, "text/plain", "try later"
				}
				return 0, "", ""
			}}
			d := destination.WithRetry(open(t, serve(t, rc).URL+"/hook", config(t)), 3, time.Millisecond, t.Logf)
			if err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
				t.Fatal(err)
			}
			if rc.count() != 3 {
				t.Errorf("%d requests, want 3", rc.count())
			}
		})
	}
	t.Run("GivesUp", func(t *testing.T) {
		rc := &receiver{secret: []byte(secret), answer: func(int) (int, string, string) { return 503, "text/plain", "down for maintenance" }}
		d := destination.WithRetry(open(t, serve(t, rc).URL+"/hook", config(t)), 3, time.Millisecond, t.Logf)
		err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
		wantKind(t, err, fail.Deliver, "HTTP 503 Service Unavailable", "down for maintenance")
		if rc.count() != 3 {
			t.Errorf("%d requests, want 3", rc.count())
		}
	})
}

// Other 4xx answers do not change on a second try: one request, and an error
// that names the status, shows a clean excerpt of the answer and says what to fix.
func TestNoRetryOnRefusal(t *testing.T) {
	page := "<html><head><title>404</title></head><body><h1>No such hook</h1>\x1b[2J\x00 bell\a \u202egnp.exe</body></html>"
	for _, tc := range []struct {
		code        int
		ct, body    string
		kind        fail.Kind
		parts       []string
		secretWrong bool
	}{
		{code: 404, ct: "text/html", body: page, kind: fail.Usage, parts: []string{"HTTP 404 Not Found", `"404 No such hook [2J bell gnp.exe"`, "check the target's path"}},
		{code: 400, ct: "text/plain", body: "invalid_payload", kind: fail.Usage, parts: []string{"HTTP 400 Bad Request", "invalid_payload", "webhook-format json"}},
		{code: 413, ct: "text/plain", body: "", kind: fail.Usage, parts: []string{"HTTP 413", "max_request_body_size", "webhook-include-config off"}},
		{code: 403, ct: "text/plain", body: "forbidden", kind: fail.Auth, parts: []string{"HTTP 403 Forbidden", "webhook-secret-file"}},
		{code: 401, kind: fail.Auth, secretWrong: true, parts: []string{"HTTP 401 Unauthorized", "bad signature", "same secret"}},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			rc := &receiver{secret: []byte(secret), answer: func(int) (int, string, string) { return tc.code, tc.ct, tc.body }}
			if tc.secretWrong {
				rc = &receiver{secret: []byte("not the same secret")}
			}
			d := destination.WithRetry(open(t, serve(t, rc).URL+"/hook", config(t)), 3, time.Millisecond, t.Logf)
			err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
			wantKind(t, err, tc.kind, tc.parts...)
			if strings.ContainsAny(err.Error(), "\x1b\x00\a\u202e") {
				t.Errorf("error %q carries control characters from the answer", err)
			}
			if rc.count() != 1 {
				t.Errorf("%d requests, want 1: a refusal is not retried", rc.count())
			}
		})
	}
}

// A long answer is cut short in the message.
func TestExcerptIsShort(t *testing.T) {
	rc := &receiver{answer: func(int) (int, string, string) { return 422, "text/plain", strings.Repeat("x", 10000) }}
	d := open(t, serve(t, rc).URL+"/hook", config(t))
	err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Usage, "HTTP 422")
	if len(err.Error()) > 600 {
		t.Errorf("error is %d characters long", len(err.Error()))
	}
}

// https is verified against the system's roots plus ca-file: a private CA is
// refused until ca-file names it, and nothing is sent to an unverified server.
func TestTLS(t *testing.T) {
	rc := &receiver{secret: []byte(secret)}
	s := httptest.NewUnstartedServer(rc)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	s.StartTLS()
	defer s.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	d := open(t, s.URL+"/hook", config(t))
	err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Auth, "ca-file")
	if rc.count() != 0 {
		t.Fatalf("%d requests reached a server whose certificate was refused", rc.count())
	}

	c := config(t)
	c.CAFile = caFile
	if err := open(t, s.URL+"/hook", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
		t.Fatalf("with ca-file: %v", err)
	}
	if rc.count() != 1 {
		t.Errorf("%d requests, want 1", rc.count())
	}

	// The right CA does not excuse the wrong name.
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	d2, err := webhook.New(mustParse(t, "https://wrong.test:"+port+"/hook"), c, mapDial(s.Listener.Addr().String(), nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	err = d2.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Auth, "wrong.test")
}

func TestCAFileErrors(t *testing.T) {
	c := config(t)
	c.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	_, err := webhook.New(mustParse(t, "https://x.test/hook"), c, direct, nil)
	wantKind(t, err, fail.Usage, "ca-file", "does not exist")
	c.CAFile = c.WebhookSecretFile
	_, err = webhook.New(mustParse(t, "https://x.test/hook"), c, direct, nil)
	wantKind(t, err, fail.Usage, "holds no PEM certificate")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q shows the file's content", err)
	}
}

// mapDial sends every connection to addr, as the namespace dialer resolves a
// name inside the management network; it records the addresses asked for.
func mapDial(addr string, asked *[]string) destination.Dial {
	var mu sync.Mutex
	return func(ctx context.Context, network, a string) (net.Conn, error) {
		if asked != nil {
			mu.Lock()
			*asked = append(*asked, a)
			mu.Unlock()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

// Every connection, name resolution included, goes through the dial function,
// whatever proxy the environment names; one connection serves a run.
func TestAllConnectionsThroughDial(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("NO_PROXY", "")
	rc := &receiver{secret: []byte(secret)}
	s := serve(t, rc)
	var asked []string
	d, err := webhook.New(mustParse(t, "http://salt.mgmt.test:8000/hook/cfgsnap/leaf1"), config(t), mapDial(s.Listener.Addr().String(), &asked), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := range 3 {
		rec := fullRecord(leafConfig)
		rec.Name = fmt.Sprintf("leaf1/%d.json", i)
		if err := d.Save(t.Context(), rec, bytes.NewReader(leafConfig)); err != nil {
			t.Fatal(err)
		}
	}
	if len(asked) != 1 || asked[0] != "salt.mgmt.test:8000" {
		t.Errorf("dialled %v, want salt.mgmt.test:8000 once (no proxy, one kept-alive connection)", asked)
	}
	if host := rc.last(t).host; host != "salt.mgmt.test:8000" {
		t.Errorf("Host %q, want the target's", host)
	}
}

// A dial error keeps its kind (entering the namespace needs root); others are
// fail.Deliver. Neither message shows the URL's query, which holds a token.
func TestDialErrors(t *testing.T) {
	c := config(t)
	u := mustParse(t, "https://salt.test/hook/cfgsnap?token=TOKEN123")
	for _, tc := range []struct {
		err  error
		kind fail.Kind
	}{
		{fail.New(fail.Permission, "entering namespace srbase-mgmt: operation not permitted"), fail.Permission},
		{errors.New("connect: connection refused"), fail.Deliver},
	} {
		d, err := webhook.New(u, c, func(context.Context, string, string) (net.Conn, error) { return nil, tc.err }, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
		wantKind(t, err, tc.kind, "https://salt.test/hook/cfgsnap?token=xxxxx: posting")
		if strings.Contains(err.Error(), "TOKEN123") {
			t.Errorf("error %q shows the token", err)
		}
		d.Close()
	}
}

// connect-timeout bounds each connection, inside the run's longer deadline.
func TestConnectTimeout(t *testing.T) {
	c := config(t)
	c.ConnectTimeout = 50 * time.Millisecond
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }
	d, err := webhook.New(mustParse(t, "https://salt.test/hook"), c, hang, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	err = d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Deliver, "within option connect-timeout")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

// Only 307 and 308 to the same scheme and host are followed: they resend the
// same signed POST. A 302 would turn it into a GET; another host is not the
// one the target names.
func TestRedirects(t *testing.T) {
	other := &receiver{}
	elsewhere := serve(t, other)
	rc := &receiver{secret: []byte(secret)}
	mux := http.NewServeMux()
	mux.Handle("/hook", rc)
	mux.Handle("/moved", http.RedirectHandler("/hook", http.StatusPermanentRedirect))
	mux.Handle("/found", http.RedirectHandler("/hook", http.StatusFound))
	mux.Handle("/away", http.RedirectHandler(elsewhere.URL+"/hook?token=AWAYTOKEN", http.StatusTemporaryRedirect))
	s := httptest.NewServer(mux)
	defer s.Close()

	c := config(t)
	if err := open(t, s.URL+"/moved", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
		t.Fatalf("308 to the same host: %v", err)
	}
	if req := rc.last(t); req.method != http.MethodPost || !validSignature([]byte(secret), req.body, req.header.Get("X-Cfgsnap-Signature")) {
		t.Errorf("after the 308: %s with a signature that does not match", req.method)
	}

	err := open(t, s.URL+"/found", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Usage, "HTTP 302", "/hook")
	err = open(t, s.URL+"/away", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig))
	wantKind(t, err, fail.Usage, "HTTP 307", elsewhere.URL+"/hook?token=xxxxx", "same host")
	if strings.Contains(err.Error(), "AWAYTOKEN") {
		t.Errorf("error %q shows the redirect's token", err)
	}
	if rc.count() != 1 || other.count() != 0 {
		t.Errorf("hook got %d requests (want 1), the other host %d (want 0)", rc.count(), other.count())
	}
}

func TestSlack(t *testing.T) {
	rc := &receiver{}
	c := config(t)
	c.WebhookSecretFile = "" // Slack authenticates by the URL's token, not a signature.
	c.WebhookFormat = webhook.FormatSlack
	c.WebhookIncludeConfig = true // ignored: a chat message is no place for a configuration
	s := serve(t, rc)
	d := open(t, s.URL+"/services/T000/B000/XXXXXXXX", c)
	if err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
		t.Fatal(err)
	}
	req := rc.last(t)
	if sig := req.header.Get("X-Cfgsnap-Signature"); sig != "" {
		t.Errorf("signed with %q without a secret", sig)
	}
	var body map[string]string
	if err := json.Unmarshal(req.body, &body); err != nil || len(body) != 1 {
		t.Fatalf("body %s: want exactly {\"text\": ...}", req.body)
	}
	want := "leaf1: commits 41 by bob, 42 by alice: e1-1 &lt;up&gt; &amp; running second line " +
		"(1 added, 0 removed, 2 changed: +/interface[name=e1-1]/description ~/system/name/host-name) " +
		"stored at sftp://backup@10.0.0.5/srl/leaf1/leaf1_20250920T110208.456Z_alice.json, git@git.example.net:netops/configs.git#main:leaf1.json"
	if body["text"] != want {
		t.Errorf("text\n%s\nwant\n%s", body["text"], want)
	}
	if got := d.String(); got != s.URL+"/services/xxxxx" {
		t.Errorf("String() = %q, want the token hidden", got)
	}

	// One commit, no comment, nothing stored elsewhere, no change.
	rec := snapshot.Record{Host: "spine1", User: "admin", Commits: []snapshot.Commit{{ID: 7}}, Name: "spine1/s.json", Size: 2, Changes: &snapshot.Changes{}}
	if err := d.Save(t.Context(), rec, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(rc.last(t).body, &body)
	if want := "spine1: commit 7 by admin (no change) saved as `spine1/s.json`"; body["text"] != want {
		t.Errorf("text %q, want %q", body["text"], want)
	}
	// A read the switch's commits kept overtaking says what else it may hold.
	rec.Unsettled, rec.Possibly = true, []snapshot.Commit{{ID: 8, Username: "bot"}, {ID: 9, Username: "bot"}}
	if err := d.Save(t.Context(), rec, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(rc.last(t).body, &body)
	if want := "spine1: commit 7 by admin [unsettled: may also hold commits 8 by bot, 9 by bot] (no change) saved as `spine1/s.json`"; body["text"] != want {
		t.Errorf("text %q, want %q", body["text"], want)
	}
	rec = snapshot.Record{Manual: true, Name: "x/y.json", Size: 2}
	if err := d.Save(t.Context(), rec, strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(rc.last(t).body, &body)
	if want := "unknown: manual snapshot by unknown (changes unknown) saved as `x/y.json`"; body["text"] != want {
		t.Errorf("text %q, want %q", body["text"], want)
	}
}

func TestSecret(t *testing.T) {
	u := mustParse(t, "https://salt.test/hook/cfgsnap")
	t.Run("RequiredForJSON", func(t *testing.T) {
		c := config(t)
		c.WebhookSecretFile = ""
		_, err := webhook.New(u, c, direct, nil)
		wantKind(t, err, fail.Usage, "no secret", "webhook-secret-file", webhook.SecretEnv)
	})
	t.Run("FromEnvironment", func(t *testing.T) {
		c := config(t)
		c.WebhookSecretFile = ""
		t.Setenv(webhook.SecretEnv, "from-env")
		rc := &receiver{secret: []byte("from-env")}
		if err := open(t, serve(t, rc).URL+"/hook", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("FirstLineOfFile", func(t *testing.T) {
		c := config(t)
		os.WriteFile(c.WebhookSecretFile, []byte("line-one\r\nline-two\n"), 0o600)
		rc := &receiver{secret: []byte("line-one")}
		if err := open(t, serve(t, rc).URL+"/hook", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("BadFiles", func(t *testing.T) {
		c := config(t)
		c.WebhookSecretFile = filepath.Join(t.TempDir(), "nope")
		_, err := webhook.New(u, c, direct, nil)
		wantKind(t, err, fail.Usage, "webhook-secret-file", "does not exist")
		os.WriteFile(c.WebhookSecretFile, []byte("\nsecret-on-line-two\n"), 0o600)
		_, err = webhook.New(u, c, direct, nil)
		wantKind(t, err, fail.Usage, "empty first line")
		if strings.Contains(err.Error(), "secret-on-line-two") {
			t.Errorf("error %q shows the file's content", err)
		}
	})
	t.Run("SlackSignsWhenGiven", func(t *testing.T) {
		c := config(t)
		c.WebhookFormat = webhook.FormatSlack
		rc := &receiver{secret: []byte(secret)}
		if err := open(t, serve(t, rc).URL+"/hook", c).Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSignMatchesSalt(t *testing.T) {
	// Salt's hashutil.github_signature('{"a": 1}', 'k', sig) recomputes
	// hmac.new(b'k', b'{"a": 1}', hashlib.sha256).hexdigest(): this value.
	// The value is Python's, computed so.
	if got := webhook.Sign([]byte("k"), []byte(`{"a": 1}`)); got != "sha256=3af007ed82fd250c41e3ccf714fac4068641ac6ed7b90910c62345f0f9137b0e" {
		t.Errorf("Sign = %q", got)
	}
}

// Cleartext is allowed for labs, with a warning when it carries the configuration.
func TestHTTPWithConfigWarns(t *testing.T) {
	rc := &receiver{secret: []byte(secret)}
	c := config(t)
	c.WebhookIncludeConfig = true
	var warnings []string
	d, err := webhook.New(mustParse(t, serve(t, rc).URL+"/hook?token=TOK"), c, direct, func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Save(t.Context(), fullRecord(leafConfig), bytes.NewReader(leafConfig)); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "unencrypted") {
		t.Errorf("warnings %q, want one about cleartext", warnings)
	}
	for _, w := range warnings {
		if strings.Contains(w, "TOK") || strings.Contains(w, secret) {
			t.Errorf("warning %q shows a secret", w)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct{ raw, format, want string }{
		{"https://salt.example:8000/hook/cfgsnap/leaf1", "json", "https://salt.example:8000/hook/cfgsnap/leaf1"},
		{"https://salt.example/hook/cfgsnap?token=abc&team=net", "json", "https://salt.example/hook/cfgsnap?token=xxxxx&team=xxxxx"},
		{"http://10.0.0.9:8000/hook?bare-token", "json", "http://10.0.0.9:8000/hook?xxxxx"},
		{"https://[2001:db8::1]:8443/hook/cfgsnap?k=v#x", "json", "https://[2001:db8::1]:8443/hook/cfgsnap?k=xxxxx"},
		{"https://backup:hunter2@salt.example/hook/cfgsnap", "json", "https://backup:xxxxx@salt.example/hook/cfgsnap"},
		{"https://hooks.slack.com/services/T000/B000/XXXX?x=1#slack", "slack", "https://hooks.slack.com/services/xxxxx?x=xxxxx"},
		{"https://mattermost.example/hooks/xgjbq6ftg3df8xjqk5bz8sixzh", "slack", "https://mattermost.example/hooks/xxxxx"},
		{"https://chat.example/", "slack", "https://chat.example/"},
	} {
		if got := webhook.Redact(mustParse(t, tc.raw), tc.format); got != tc.want {
			t.Errorf("Redact(%s, %s) = %s, want %s", tc.raw, tc.format, got, tc.want)
		}
	}
	d := open(t, "https://salt.example/hook/cfgsnap?token=abc", config(t))
	if d.String() != "https://salt.example/hook/cfgsnap?token=xxxxx" {
		t.Errorf("String() = %q", d.String())
	}
}

func TestNewRefuses(t *testing.T) {
	c := config(t)
	for raw, part := range map[string]string{
		"ftp://x.test/hook":                   "not an https:// or http:// URL",
		"https://git.test/netops/configs.git": "git repository",
		"https:///hook":                       "names no host",
		"https://user@x.test/hook":            "user information",
		"https://user:pw@x.test/hook":         "user information",
		"https://x.test/hook#frag":            "#fragment",
	} {
		_, err := webhook.New(mustParse(t, raw), c, direct, nil)
		wantKind(t, err, fail.Usage, part)
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("error %q shows the password", err)
		}
	}
	c.WebhookFormat = "xml"
	_, err := webhook.New(mustParse(t, "https://x.test/hook"), c, direct, nil)
	wantKind(t, err, fail.Usage, "webhook-format")
}

func TestClaims(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://salt.test/hook/cfgsnap":       true,
		"http://10.0.0.9:8000/hook":            true,
		"https://git.test/netops/configs.git":  false,
		"https://git.test/netops/configs.git/": false,
		"sftp://backup@10.0.0.5/srl":           false,
		"file:///var/backups":                  false,
	} {
		if got := webhook.Claims(mustParse(t, raw)); got != want {
			t.Errorf("Claims(%s) = %v, want %v", raw, got, want)
		}
	}
}
