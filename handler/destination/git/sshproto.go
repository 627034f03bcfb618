package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh"
)

// packSession speaks git's pack protocol (version 0, as go-git does) with
// git-upload-pack or git-receive-pack, run in one SSH session of a connection
// that sshclient made and verified.
//
// go-git's own SSH transport cannot be used: it dials by itself (through
// golang.org/x/net/proxy, from the environment), so its connections would leave
// the management namespace and skip sshclient's host-key checks; and the
// session logic it shares with its other transports is in an internal package.
// What remains is small: the messages themselves are go-git's public packp
// encoders and decoders.
type packSession struct {
	service string // git-upload-pack or git-receive-pack
	sess    *ssh.Session
	stdin   io.WriteCloser
	stdout  *bufio.Reader
	stderr  *tail
	adv     *packp.AdvRefs
	sent    bool // a request went out: the server ends the exchange itself
	stop    func() bool
}

// startPack runs service on repo over client. Once ctx ends, the session is
// closed, which fails whatever read or write is waiting on it.
func startPack(ctx context.Context, client *ssh.Client, service, repo string) (*packSession, error) {
	sess, err := client.NewSession()
	if err != nil {
		// On a connection kept from an earlier Save, the server may be gone.
		return nil, fmt.Errorf("the SSH connection broke (opening a session for %s: %w); the next try connects afresh", service, err)
	}
	s := &packSession{service: service, sess: sess, stderr: &tail{}}
	sess.Stderr = s.stderr
	if s.stdin, err = sess.StdinPipe(); err == nil {
		var out io.Reader
		if out, err = sess.StdoutPipe(); err == nil {
			s.stdout = bufio.NewReaderSize(out, 64<<10)
		}
	}
	if err == nil {
		err = sess.Start(service + " " + shellQuote(repo))
	}
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("starting %s on the server: %w", service, err)
	}
	s.stop = context.AfterFunc(ctx, func() { sess.Close() })
	return s, nil
}

// shellQuote quotes s for the remote shell as git does (sq_quote_buf): in single
// quotes, with ' and ! closed, escaped and reopened.
func shellQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, c := range []byte(s) {
		if c == '\'' || c == '!' {
			b.WriteString(`'\`)
			b.WriteByte(c)
			b.WriteByte('\'')
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}

func (s *packSession) AdvertisedReferences() (*packp.AdvRefs, error) {
	return s.AdvertisedReferencesContext(context.Background())
}

// AdvertisedReferencesContext reads the references the server lists first. An
// empty repository is transport.ErrEmptyRemoteRepository for upload-pack, as
// go-git's transports report it; for receive-pack it is an empty list.
func (s *packSession) AdvertisedReferencesContext(context.Context) (*packp.AdvRefs, error) {
	if s.adv != nil {
		return s.adv, nil
	}
	ar := packp.NewAdvRefs()
	err := ar.Decode(s.stdout)
	var errLine *pktline.ErrorLine
	switch {
	case err == nil:
	case errors.Is(err, packp.ErrEmptyAdvRefs):
		// Only a flush: an empty repository, before git 2.41.
		if s.service == transport.UploadPackServiceName {
			return nil, transport.ErrEmptyRemoteRepository
		}
	case errors.As(err, &errLine):
		return nil, fmt.Errorf("%s: %s", s.service, errLine.Text)
	default:
		// Nothing or garbage on stdout: the reason is on stderr (no such
		// repository, no git on the server, a login banner in the way).
		return nil, s.failed(err)
	}
	if ar.IsEmpty() && s.service == transport.UploadPackServiceName {
		// git 2.41+ lists a zero id with its capabilities instead.
		return nil, transport.ErrEmptyRemoteRepository
	}
	transport.FilterUnsupportedCapabilities(ar.Capabilities)
	s.adv = ar
	return ar, nil
}

// failed explains a broken exchange by what the server wrote to stderr.
func (s *packSession) failed(err error) error {
	_ = s.stdin.Close()
	s.wait()
	msg := s.stderr.String()
	switch {
	case strings.Contains(msg, "not found") && strings.Contains(msg, s.service):
		return fmt.Errorf("the server has no %s (%s): install git on it, or use an account whose shell runs git", s.service, msg)
	case strings.Contains(msg, "does not appear to be a git repository") || strings.Contains(msg, "not a git repository"):
		return fmt.Errorf("%s: %s: check the path in the target, or create the repository (git init --bare)", s.service, msg)
	case msg != "":
		return fmt.Errorf("%s: %s", s.service, msg)
	}
	return fmt.Errorf("%s: %w", s.service, err)
}

// wait waits for the server's command to end, which also collects all it wrote
// to stderr, but not for long: a server that keeps the session open after a
// broken exchange gets it closed under it.
func (s *packSession) wait() {
	done := make(chan struct{})
	go func() {
		_ = s.sess.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = s.sess.Close()
		<-done
	}
}

// UploadPack sends the request and returns the response, whose Read yields the
// packfile (multiplexed if the request asked for a side band).
func (s *packSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	s.sent = true
	var b bytes.Buffer
	if err := req.UploadRequest.Encode(&b); err != nil {
		return nil, err
	}
	if err := req.UploadHaves.Encode(&b, true); err != nil {
		return nil, err
	}
	if err := pktline.NewEncoder(&b).EncodeString("done\n"); err != nil {
		return nil, err
	}
	if _, err := s.stdin.Write(b.Bytes()); err != nil {
		return nil, s.failed(err)
	}
	resp := packp.NewUploadPackResponse(req)
	if err := resp.Decode(io.NopCloser(s.stdout)); err != nil {
		return nil, s.failed(err)
	}
	return resp, nil
}

// ReceivePack sends the update request with its packfile and returns the
// server's report; a command the server refused is in report.Error().
func (s *packSession) ReceivePack(ctx context.Context, req *packp.ReferenceUpdateRequest) (*packp.ReportStatus, error) {
	if _, err := s.AdvertisedReferencesContext(ctx); err != nil {
		return nil, err
	}
	s.sent = true
	if err := req.Encode(s.stdin); err != nil {
		return nil, s.failed(err)
	}
	if err := s.stdin.Close(); err != nil {
		return nil, s.failed(err)
	}
	if !req.Capabilities.Supports(capability.ReportStatus) {
		return nil, errors.New("the server does not report whether a push succeeded (no report-status capability)")
	}
	var r io.Reader = s.stdout
	var d *sideband.Demuxer
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		d = sideband.NewDemuxer(sideband.Sideband64k, r)
	case req.Capabilities.Supports(capability.Sideband):
		d = sideband.NewDemuxer(sideband.Sideband, r)
	}
	if d != nil {
		d.Progress = req.Progress
		r = d
	}
	report := packp.NewReportStatus()
	if err := report.Decode(r); err != nil {
		return nil, s.failed(err)
	}
	return report, report.Error()
}

// Close ends the session. A session that sent no request is told so with a
// flush, which the server takes as a clean goodbye.
func (s *packSession) Close() error {
	s.stop()
	if !s.sent {
		_, _ = s.stdin.Write(pktline.FlushPkt)
	}
	_ = s.stdin.Close()
	return s.sess.Close()
}

// tail keeps the first lines the server writes to stderr, for messages: enough
// to say why, bounded so a chatty server cannot fill memory.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 1024

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := tailMax - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String is what was kept, on one line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(t.b), "?")), " ")
}
