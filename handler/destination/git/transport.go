package git

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/secret"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
)

// sessions opens the two services a Save needs, on the link it runs over.
type sessions interface {
	upload(ctx context.Context) (transport.UploadPackSession, error)
	receive(ctx context.Context) (transport.ReceivePackSession, error)
}

// link is how a destination reaches its repository.
type link interface {
	// do runs f with the sessions of one Save. Its errors name the target and
	// what was saved, and carry a kind: fail.Auth for refused keys, host keys,
	// passwords and certificates, fail.Deliver for what may pass.
	do(ctx context.Context, what string, f func(ctx context.Context, s sessions) error) error
	close() error
}

// grace is how long a cancelled Save may go on before its SSH connection is
// cut under it: long enough to read a push's report, whose loss costs a retry.
const grace = 2 * time.Second

// sshLink runs Saves over one SSH connection, made by sshclient on the first
// Save (host key verified, through Dial) and kept for the next ones.
type sshLink struct {
	conn *sshclient.Conn[struct{}]
	repo string
}

func newSSHLink(e endpoint, c *option.Config, dial destination.Dial, logf func(string, ...any)) (*sshLink, error) {
	cfg, err := sshclient.FromOptions(c, dial, logf).ForURL(e.sshURL)
	if err != nil {
		return nil, err
	}
	t := sshclient.Target{URL: e.display, Root: e.repo, Config: cfg}
	return &sshLink{conn: sshclient.NewConn[struct{}](t, grace, nil, nil), repo: e.repo}, nil
}

func (l *sshLink) do(ctx context.Context, what string, f func(context.Context, sessions) error) error {
	return l.conn.Save(ctx, what, func(client *ssh.Client, _ struct{}) error {
		return f(ctx, sshSessions{client: client, repo: l.repo})
	})
}

func (l *sshLink) close() error { return l.conn.Close() }

type sshSessions struct {
	client *ssh.Client
	repo   string
}

func (s sshSessions) upload(ctx context.Context) (transport.UploadPackSession, error) {
	return startPack(ctx, s.client, transport.UploadPackServiceName, s.repo)
}

func (s sshSessions) receive(ctx context.Context) (transport.ReceivePackSession, error) {
	return startPack(ctx, s.client, transport.ReceivePackServiceName, s.repo)
}

// httpLink runs Saves over git's smart HTTP protocol with go-git's HTTP
// transport, given an http.Client of our own: its connections are made by
// Dial, its TLS is verified against the system's CAs plus option ca-file, and no
// proxy from the environment is used (it would be reached outside the namespace).
type httpLink struct {
	display  string
	user     string
	password bool // a password is sent
	tr       transport.Transport
	ep       *transport.Endpoint
	auth     transport.AuthMethod // nil: none
	hc       *http.Transport
}

func newHTTPLink(e endpoint, c *option.Config, dial destination.Dial, logf func(string, ...any)) (*httpLink, error) {
	password, source, err := secret.Read("git-password-file", c.GitPasswordFile, "CFGSNAP_GIT_PASSWORD")
	if err != nil {
		// This destination has always said fail.Usage (exit code 2) for a file
		// an option names, also for one cfgsnap may not read, where secret and
		// httpx say fail.Permission (7); scripts may test the code.
		return nil, fail.New(fail.Usage, "%w", err)
	}
	var roots *x509.CertPool
	if e.httpURL.Scheme == "https" {
		if roots, err = httpx.Roots(c.CAFile); err != nil {
			return nil, fail.New(fail.Usage, "%w", err) // as for the password file
		}
	} else if password != "" {
		logf("warning: %s: the git password (%s) is sent unencrypted over http://; use https://", e.display, source)
	}
	hc := httpx.Transport(dial, c.ConnectTimeout, roots)
	// A custom DialContext turns HTTP/2 off unless asked for.
	hc.ForceAttemptHTTP2 = true
	hc.MaxIdleConnsPerHost = 1
	hc.IdleConnTimeout = 90 * time.Second
	ep, err := transport.NewEndpoint(e.httpURL.String())
	if err != nil {
		return nil, fail.New(fail.Usage, "target %s: %v", e.display, err)
	}
	l := &httpLink{
		display:  e.display,
		user:     e.user,
		password: password != "",
		tr:       githttp.NewClient(&http.Client{Transport: recording{hc}}),
		ep:       ep,
		hc:       hc,
	}
	if password != "" {
		l.auth = &githttp.BasicAuth{Username: e.user, Password: password}
	}
	return l, nil
}

func (l *httpLink) do(ctx context.Context, what string, f func(context.Context, sessions) error) error {
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: %w", l.display, what, err)
	}
	// go-git wraps network errors in a type that hides them from errors.As;
	// the round tripper records them here, for this Save only.
	rec := &netError{}
	err := f(context.WithValue(ctx, netErrorKey{}, rec), httpSessions{l})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	kind, msg := l.explain(err, rec.get())
	return fail.New(kind, "%s: saving %s: %s", l.display, what, msg)
}

// explain words err, a failure of a Save over HTTP, with what to do about it.
func (l *httpLink) explain(err, netErr error) (fail.Kind, string) {
	host := l.ep.Host
	if l.ep.Port != 0 {
		host = net.JoinHostPort(host, fmt.Sprint(l.ep.Port))
	}
	cert := httpx.CertError(host, netErr)
	switch {
	case fail.KindOf(err) != fail.Internal:
		return fail.KindOf(err), err.Error()
	case errors.Is(err, transport.ErrAuthenticationRequired) && !l.password:
		return fail.Auth, fmt.Sprintf("%s asks for a password: put the token or password in the file option git-password-file names (or in $CFGSNAP_GIT_PASSWORD)", host)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fail.Auth, fmt.Sprintf("%s refused user %s with the password given: check the token in git-password-file (or $CFGSNAP_GIT_PASSWORD) and the user in the target (https://USER@host/...)", host, l.user)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fail.Auth, fmt.Sprintf("%s denies user %s access to the repository: give the token read and write access to it", host, l.user)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fail.Deliver, fmt.Sprintf("no repository at %s (or it is private and needs a password): check the target, or create the repository", l.ep.String())
	case cert != nil:
		return fail.Auth, cert.Error()
	case netErr != nil:
		var dnsErr *net.DNSError
		if errors.As(netErr, &dnsErr) {
			return fail.Deliver, fmt.Sprintf("cannot resolve %s: %v: check the host name and the DNS servers of the network namespace", host, netErr)
		}
		return fail.Deliver, fmt.Sprintf("cannot reach %s: %v: check the host, the port and that the git server runs there", host, netErr)
	}
	return fail.Deliver, err.Error()
}

func (l *httpLink) close() error {
	l.hc.CloseIdleConnections()
	return nil
}

type httpSessions struct{ l *httpLink }

func (s httpSessions) upload(context.Context) (transport.UploadPackSession, error) {
	return s.l.tr.NewUploadPackSession(s.l.ep, s.l.auth)
}

func (s httpSessions) receive(context.Context) (transport.ReceivePackSession, error) {
	return s.l.tr.NewReceivePackSession(s.l.ep, s.l.auth)
}

// recording is an http.RoundTripper that keeps the first error of a request
// in the netError its context carries.
type recording struct{ base http.RoundTripper }

type netErrorKey struct{}

func (r recording) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		if ne, ok := req.Context().Value(netErrorKey{}).(*netError); ok {
			ne.set(err)
		}
	}
	return resp, err
}

type netError struct {
	mu  sync.Mutex
	err error
}

func (n *netError) set(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = err
	}
}

func (n *netError) get() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}
