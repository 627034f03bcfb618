package httpx_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testcert"
)

func tlsServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// caFile writes the test server's certificate, its own CA, as PEM.
func caFile(t *testing.T, s *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, tr *http.Transport, url string) error {
	t.Helper()
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// wantErr checks err's kind and its whole message; file is quoted in pattern
// where it holds %s.
func wantErr(t *testing.T, err error, kind fail.Kind, pattern, file string) {
	t.Helper()
	re := regexp.MustCompile("^" + strings.ReplaceAll(pattern, "%s", regexp.QuoteMeta(file)) + "$")
	if fail.KindOf(err) != kind || !re.MatchString(err.Error()) { // kind is never 0: err is not nil here
		t.Errorf("error %v (kind %d), want kind %d and %s", err, fail.KindOf(err), kind, re)
	}
}

// The CA file's certificates are trusted besides the system's, which do not
// know the test server's.
func TestRoots(t *testing.T) {
	s := tlsServer(t)
	system, err := httpx.Roots("")
	if err != nil || system == nil {
		t.Fatalf(`Roots("") = %v, %v; want the system's pool`, system, err)
	}
	if err := get(t, httpx.Transport(nil, 0, system), s.URL); err == nil {
		t.Error("the system's roots trust the test server")
	}
	roots, err := httpx.Roots(caFile(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, httpx.Transport(nil, 0, roots), s.URL); err != nil {
		t.Errorf("with ca-file: %v", err)
	}
}

func TestRootsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	_, err := httpx.Roots(missing)
	wantErr(t, err, fail.Usage, "cannot read ca-file %s: it does not exist: fix the option or copy the CA certificate there", missing)

	// A key named by mistake: the message must not quote it.
	notPEM := filepath.Join(t.TempDir(), "key")
	os.WriteFile(notPEM, []byte("hunter2\n"), 0o600)
	_, err = httpx.Roots(notPEM)
	wantErr(t, err, fail.Usage, "ca-file %s holds no PEM certificate: give a file of -----BEGIN CERTIFICATE----- blocks", notPEM)

	dir := t.TempDir()
	_, err = httpx.Roots(dir)
	wantErr(t, err, fail.Usage, "cannot read ca-file %s: is a directory: fix the option", dir)

	if os.Geteuid() != 0 { // root reads every file
		os.Chmod(notPEM, 0)
		_, err = httpx.Roots(notPEM)
		wantErr(t, err, fail.Permission, "cannot read ca-file %s: permission denied: run cfgsnap with sudo .*", notPEM)
	}
}

// Every connection goes through dial, with the name the URL holds (the
// namespace's dialer resolves it), whatever proxy the environment names.
func TestOnlyThroughDial(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	t.Setenv("NO_PROXY", "")
	s := tlsServer(t)
	roots, err := httpx.Roots(caFile(t, s))
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan string, 10)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		asked <- addr
		return (&net.Dialer{}).DialContext(ctx, network, s.Listener.Addr().String())
	}
	// example.com is in the certificate httptest makes.
	if err := get(t, httpx.Transport(dial, time.Second, roots), "https://example.com:8443/"); err != nil {
		t.Fatal(err)
	}
	close(asked)
	if addr := <-asked; addr != "example.com:8443" || len(asked) != 0 {
		t.Errorf("dialled %s and %d more, want example.com:8443 once", addr, len(asked))
	}
}

// connect-timeout bounds each dial; 0 leaves it to the request's context.
func TestConnectTimeout(t *testing.T) {
	errNo := errors.New("not dialling")
	for _, timeout := range []time.Duration{0, 3 * time.Second} {
		var left time.Duration = -1
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if d, ok := ctx.Deadline(); ok {
				left = time.Until(d)
			}
			return nil, errNo
		}
		tr := httpx.Transport(dial, timeout, nil)
		if err := get(t, tr, "http://example.com/"); !errors.Is(err, errNo) {
			t.Fatalf("get = %v, want dial's error", err)
		}
		switch {
		case timeout == 0 && left != -1:
			t.Errorf("no connect timeout, but dial had %v left", left)
		case timeout > 0 && (left <= 0 || left > timeout):
			t.Errorf("connect timeout %v, but dial had %v left", timeout, left)
		}
	}
}

// A server that accepts the connection but never speaks TLS costs no more
// than connect-timeout.
func TestHandshakeTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // never accepts: the kernel completes the connection, and no one answers
	start := time.Now()
	err = get(t, httpx.Transport(nil, 200*time.Millisecond, nil), "https://"+l.Addr().String()+"/")
	if err == nil || !strings.Contains(err.Error(), "handshake timeout") {
		t.Errorf("get = %v, want a TLS handshake timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// TestCertError: what a user reads when a server's certificate is refused.
func TestCertError(t *testing.T) {
	s := tlsServer(t)
	host := strings.TrimPrefix(s.URL, "https://")
	system, err := httpx.Roots("")
	if err != nil {
		t.Fatal(err)
	}
	unknown := get(t, httpx.Transport(nil, 0, system), s.URL)
	wantErr(t, httpx.CertError(host, unknown), fail.Auth,
		"the TLS certificate of %s is signed by an authority cfgsnap does not trust: put that CA's certificate \\(PEM\\) in the file option ca-file names", host)

	roots, err := httpx.Roots(caFile(t, s))
	if err != nil {
		t.Fatal(err)
	}
	// The test certificate names example.com and 127.0.0.1, not this name.
	tr := httpx.Transport(nil, 0, roots)
	tr.TLSClientConfig.ServerName = "backup.invalid"
	wrongName := get(t, tr, s.URL)
	wantErr(t, httpx.CertError(host, wrongName), fail.Auth,
		"the TLS certificate of %s is not for that name \\(.*backup.invalid.*\\): use a name the certificate lists", host)

	expired, ca := expiredServer(t)
	expiredRoots, err := httpx.Roots(ca)
	if err != nil {
		t.Fatal(err)
	}
	stale := get(t, httpx.Transport(nil, 0, expiredRoots), expired.URL)
	wantErr(t, httpx.CertError(host, stale), fail.Auth,
		"the TLS certificate of %s is not valid \\(.*expired.*\\): renew it, or check the switch's clock", host)

	if err := httpx.CertError(host, errors.New("connection refused")); err != nil {
		t.Errorf("CertError of a refused connection = %v, want nil", err)
	}
}

// expiredServer serves a certificate for 127.0.0.1 that expired an hour ago,
// and returns the file of the CA that signed it.
func expiredServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ca, certFile, keyFile := testcert.Write(t, t.TempDir(), time.Now().Add(-time.Hour))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, ca
}
