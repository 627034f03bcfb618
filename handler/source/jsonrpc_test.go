package source

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

const testPassword = "NokiaSrl1!"

func openRPC(t *testing.T, c *option.Config, dial func(context.Context, string, string) (net.Conn, error)) Source {
	t.Helper()
	src, err := Open(c, dial)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// configPeer answers a get of / from running with result, and checks that the
// request asks for what the fixture request asks for.
func configPeer(t *testing.T, result []byte) *rpcPeer {
	want := rpcFixtureRequest(t, "jsonrpc-get-root-running.request.json").Params.Commands[0]
	return &rpcPeer{user: "admin", password: testPassword, answer: func(c rpcCommand) (any, []byte) {
		// The fixture leaves datastore out, which means running.
		if c.Path != want.Path || c.Datastore != "running" {
			t.Errorf("get %s from %q, want %s from running", c.Path, c.Datastore, want.Path)
		}
		return json.RawMessage(result), nil
	}}
}

func TestJSONRPCConfigIsResultIndented(t *testing.T) {
	t.Parallel()
	result := configWithoutPreamble(t, "srl-config-dcf-leaf11.json")
	p := configPeer(t, result)
	c := startRPC(t, p)
	// The URL's host does not resolve: only the dial function given to Open
	// (the management namespace's) knows where the server is.
	server := strings.TrimPrefix(strings.TrimSuffix(c.JSONRPCURL, "/jsonrpc"), "http://")
	c.JSONRPCURL = "http://switch.invalid/jsonrpc"
	c.JSONRPCPlainHTTP = true // another host over plain http: root's explicit choice
	var dialed atomic.Int32
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		dialed.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, server)
	}
	// The password file's first line is the password; the rest is ignored.
	c.JSONRPCPasswordFile = writeFile(t, "password", []byte(testPassword+"\nnot the password\n"))

	var got bytes.Buffer
	if err := openRPC(t, c, dial).WriteConfig(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	json.Indent(&want, result, "", "  ")
	want.WriteByte('\n')
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("snapshot is not result[0] indented by two spaces with a final newline; got %d bytes, want %d\n%.300s", got.Len(), want.Len(), got.String())
	}
	var gotV, wantV any
	if err := json.Unmarshal(got.Bytes(), &gotV); err != nil {
		t.Fatalf("snapshot is not JSON: %v", err)
	}
	json.Unmarshal(result, &wantV)
	if !reflect.DeepEqual(gotV, wantV) {
		t.Error("snapshot does not hold the configuration the server sent")
	}
	if dialed.Load() == 0 {
		t.Error("the dial function given to Open was not used")
	}
}

func TestJSONRPCPasswordFromEnvironment(t *testing.T) {
	p := configPeer(t, []byte(`{"system":{"name":{"host-name":"leaf11"}},"interface":[]}`))
	c := startRPC(t, p)
	c.JSONRPCPasswordFile = ""
	t.Setenv(PasswordEnv, testPassword)
	var got bytes.Buffer
	if err := openRPC(t, c, nil).WriteConfig(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	const want = "{\n  \"system\": {\n    \"name\": {\n      \"host-name\": \"leaf11\"\n    }\n  },\n  \"interface\": []\n}\n"
	if got.String() != want {
		t.Errorf("got\n%s\nwant\n%s", got.String(), want)
	}
}

func TestJSONRPCRefusedCredentials(t *testing.T) {
	t.Parallel()
	p := configPeer(t, []byte(`{}`))
	c := startRPC(t, p)
	const wrong = "not-the-password-42"
	c.JSONRPCPasswordFile = writeFile(t, "password", []byte(wrong+"\n"))
	err := openRPC(t, c, nil).WriteConfig(context.Background(), &bytes.Buffer{})
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), `refused the credentials of user "admin"`) {
		t.Fatalf("WriteConfig = %v, want a Source error saying the credentials were refused", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("the message %q shows the password", err)
	}
}

func TestJSONRPCNoPasswordGiven(t *testing.T) {
	p := configPeer(t, []byte(`{}`))
	c := startRPC(t, p)
	c.JSONRPCPasswordFile = ""
	t.Setenv(PasswordEnv, "")
	err := openRPC(t, c, nil).WriteConfig(context.Background(), &bytes.Buffer{})
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "none were given") || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("WriteConfig = %v, want a Source error saying no password was given and where to put one", err)
	}
}

func TestJSONRPCServerErrorsAreQuoted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		response string
		status   int
		commits  bool
	}{
		{"jsonrpc-get-running-error.response.json", http.StatusOK, false},
		{"jsonrpc-get-state-error.response.json", http.StatusOK, true},
		{"jsonrpc-get-running-error.response.json", http.StatusInternalServerError, true},
	}
	for _, tc := range cases {
		body := fixture(t, tc.response)
		var e struct{ Error struct{ Message string } }
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
			t.Fatalf("fixture %s: %v", tc.response, err)
		}
		p := &rpcPeer{user: "admin", password: testPassword, answer: func(rpcCommand) (any, []byte) { return nil, body }}
		c := startRPC(t, p)
		if tc.status != http.StatusOK {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write(body)
			}))
			t.Cleanup(srv.Close)
			c.JSONRPCURL = srv.URL + "/jsonrpc"
		}
		src := openRPC(t, c, nil)
		var err error
		if tc.commits {
			_, err = src.Commits(context.Background())
		} else {
			err = src.WriteConfig(context.Background(), &bytes.Buffer{})
		}
		if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), e.Error.Message) {
			t.Errorf("%s (HTTP %d): error %v should be of kind Source and quote %q", tc.response, tc.status, err, e.Error.Message)
		}
	}
}

func TestJSONRPCOverUnixSocket(t *testing.T) {
	t.Parallel()
	result := configWithoutPreamble(t, "srl-config-srlcontroller-test.json")
	p := configPeer(t, result)
	p.t = t
	sock := filepath.Join(t.TempDir(), "jsonrpc.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	c := option.New()
	c.Source = "jsonrpc"
	c.JSONRPCSocket = sock // jsonrpc-url keeps its default, whose host is not used
	c.JSONRPCPasswordFile = writeFile(t, "password", []byte(testPassword))
	refuse := func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("the namespace dialer is not for unix sockets")
	}
	var got bytes.Buffer
	if err := openRPC(t, c, refuse).WriteConfig(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	json.Unmarshal(result, &wantV)
	if err := json.Unmarshal(got.Bytes(), &gotV); err != nil || !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("snapshot over the socket is not the configuration the server sent (%v)", err)
	}
}

// TestJSONRPCOverHTTPS: a server whose certificate no system CA signed is
// refused, with what to do; with its CA in ca-file the configuration comes.
func TestJSONRPCOverHTTPS(t *testing.T) {
	t.Parallel()
	p := configPeer(t, []byte(`{"system":{"name":{"host-name":"leaf11"}}}`))
	p.t = t
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := rpcOptions(t, p, srv.URL)

	err := openRPC(t, c, nil).WriteConfig(context.Background(), &bytes.Buffer{})
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "ca-file") {
		t.Fatalf("WriteConfig from an untrusted server = %v (kind %d), want a Source error that points to ca-file", err, fail.KindOf(err))
	}
	if p.requests.Load() != 0 {
		t.Fatal("a request reached the server whose certificate was refused")
	}

	c.CAFile = writeFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	var got bytes.Buffer
	if err := openRPC(t, c, nil).WriteConfig(context.Background(), &got); err != nil {
		t.Fatalf("with ca-file: %v", err)
	}
	if !strings.Contains(got.String(), `"host-name": "leaf11"`) {
		t.Errorf("with ca-file the snapshot is %q", got.String())
	}
}

func TestJSONRPCDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p := &rpcPeer{user: "admin", password: testPassword, answer: func(rpcCommand) (any, []byte) {
		<-release
		return map[string]any{}, nil
	}}
	c := startRPC(t, p)
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := openRPC(t, c, nil).Commits(ctx)
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("Commits = %v, want a Source error about the deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Commits returned after %v; the deadline was 150ms", d)
	}
}

func TestJSONRPCCommits(t *testing.T) {
	t.Parallel()
	want := testCommits()
	wantCmd := rpcFixtureRequest(t, "jsonrpc-get-root-state.request.json").Params.Commands[0]
	for name, result := range map[string]any{
		"list under commit":          map[string]any{"commit": commitList(want, false, false, "")},
		"module prefix, string ids":  map[string]any{"srl_nokia-configuration:commit": commitList(want, true, false, "")},
		"the list itself":            commitList(want, false, false, ""),
		"path from the root, prefix": map[string]any{"srl_nokia-system:system": map[string]any{"srl_nokia-configuration:configuration": map[string]any{"commit": commitList(want, false, false, "")}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := &rpcPeer{user: "admin", password: testPassword, answer: func(c rpcCommand) (any, []byte) {
				if c.Path != "/system/configuration/commit" || c.Datastore != wantCmd.Datastore {
					t.Errorf("get %s from %q, want /system/configuration/commit from %q", c.Path, c.Datastore, wantCmd.Datastore)
				}
				return result, nil
			}}
			got, err := openRPC(t, startRPC(t, p), nil).Commits(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sameCommits(t, got, want)
		})
	}
}

func TestJSONRPCNoCommits(t *testing.T) {
	t.Parallel()
	p := &rpcPeer{user: "admin", password: testPassword, answer: func(rpcCommand) (any, []byte) { return map[string]any{}, nil }}
	got, err := openRPC(t, startRPC(t, p), nil).Commits(context.Background())
	if err != nil || got != nil {
		t.Errorf("Commits = %v, %v; want nil, nil", got, err)
	}
}

func TestJSONRPCBrokenAnswer(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string]string{
		"truncated":   `{"result":[{"system":{"name":`,
		"not json":    `<html>Bad Gateway</html>`,
		"no result":   `{"id":0,"jsonrpc":"2.0"}`,
		"bad result":  `{"result":{"system":{}},"id":0,"jsonrpc":"2.0"}`,
		"null config": `{"result":[null],"id":0,"jsonrpc":"2.0"}`,
	} {
		p := &rpcPeer{user: "admin", password: testPassword, answer: func(rpcCommand) (any, []byte) { return nil, []byte(raw) }}
		err := openRPC(t, startRPC(t, p), nil).WriteConfig(context.Background(), &bytes.Buffer{})
		if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "broken answer") {
			t.Errorf("%s: WriteConfig = %v, want a Source error about a broken answer", name, err)
		}
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// A destination that fails (spool disk full) is reported as itself, not blamed on
// the switch.
func TestJSONRPCWriterErrorPassesThrough(t *testing.T) {
	t.Parallel()
	p := configPeer(t, configWithoutPreamble(t, "srl-config-dcf-leaf11.json"))
	full := errors.New("no space left on device")
	err := openRPC(t, startRPC(t, p), nil).WriteConfig(context.Background(), failingWriter{full})
	if !errors.Is(err, full) {
		t.Errorf("WriteConfig = %v, want the writer's error", err)
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	for name, set := range map[string]func(c *option.Config){
		"credentials in url": func(c *option.Config) {
			c.Source = "jsonrpc"
			c.JSONRPCURL = "http://admin:" + secret + "@10.0.0.1/jsonrpc"
		},
		"credentials, no scheme": func(c *option.Config) {
			c.Source = "jsonrpc"
			c.JSONRPCURL = "admin:" + secret + "@10.0.0.1/jsonrpc"
		},
		"url without scheme": func(c *option.Config) { c.Source = "jsonrpc"; c.JSONRPCURL = "10.0.0.1/jsonrpc" },
		"missing password file": func(c *option.Config) {
			c.Source = "jsonrpc"
			c.JSONRPCPasswordFile = "/nonexistent/cfgsnap-password"
		},
		"unknown source":    func(c *option.Config) { c.Source = "netconf" },
		"file without path": func(c *option.Config) { c.Source = "file:" },
	} {
		c := option.New()
		set(c)
		_, err := Open(c, nil)
		if k := fail.KindOf(err); k != fail.Usage {
			t.Errorf("%s: Open = %v (kind %d), want a Usage error", name, err, k)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: message %q shows the password", name, err)
		}
		if name == "unknown source" && !(strings.Contains(err.Error(), "sr_cli") && strings.Contains(err.Error(), "jsonrpc") && strings.Contains(err.Error(), "file:PATH")) {
			t.Errorf("message %q should name the valid forms", err)
		}
	}
}

// Basic auth over plain HTTP is the password in the clear: allowed to this
// switch's loopback and its unix socket, refused to anything else unless root
// sets jsonrpc-plain-http, and refused before anything is dialled.
func TestJSONRPCPasswordNeverInTheClear(t *testing.T) {
	t.Parallel()
	password := writeFile(t, "password", []byte("NokiaSrl1!\n"))
	for _, c := range []struct {
		url, socket string
		plain       bool
		password    string
		refused     bool
	}{
		{url: "http://172.20.20.2/jsonrpc", password: password, refused: true},
		{url: "http://leaf1.example/jsonrpc", password: password, refused: true},
		{url: "http://172.20.20.2/jsonrpc", password: password, plain: true},
		{url: "http://172.20.20.2/jsonrpc"}, // no password, nothing to leak
		{url: "https://172.20.20.2/jsonrpc", password: password},
		{url: "http://127.0.0.1/jsonrpc", password: password},
		{url: "http://[::1]/jsonrpc", password: password},
		{url: "http://localhost:8080/jsonrpc", password: password},
		{url: "http://172.20.20.2/jsonrpc", socket: "/run/srl/jsonrpc.sock", password: password},
	} {
		o := option.New()
		o.Source, o.JSONRPCURL, o.JSONRPCSocket, o.JSONRPCPlainHTTP, o.JSONRPCPasswordFile = "jsonrpc", c.url, c.socket, c.plain, c.password
		dialled := false
		_, err := Open(o, func(context.Context, string, string) (net.Conn, error) {
			dialled = true
			return nil, errors.New("not here")
		})
		switch {
		case c.refused && (fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "in the clear") || dialled):
			t.Errorf("%+v: Open = %v (dialled %v); want a Usage error before any dial", c, err, dialled)
		case !c.refused && err != nil:
			t.Errorf("%+v: Open = %v; want it accepted", c, err)
		}
	}
}
