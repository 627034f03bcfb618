package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
)

// networkError words a request that got no answer. TLS verification failures
// are fail.Auth (a second try meets the same certificate); a server that does
// not speak TLS is fail.Usage (the URL is wrong); the rest may pass:
// fail.Deliver, unless dial gave its error a kind of its own.
func (d *Destination) networkError(ctx context.Context, name string, err error) error {
	err = unwrapURL(err)
	at := fmt.Sprintf("%s: posting %s", d, name)
	var (
		record  tls.RecordHeaderError
		timeout net.Error
	)
	switch cert := httpx.CertError(d.url.Host, err); {
	case cert != nil:
		return fail.As(fail.Auth, fmt.Errorf("%s: %w", at, cert))
	case errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &record):
		return fail.New(fail.Usage, "%s: the server does not speak TLS at %s: write http:// or use the server's HTTPS port", at, d.url.Host)
	case ctx.Err() != nil:
		return fail.New(fail.Deliver, "%s: no answer before the deadline (option deliver-timeout): %w", at, err)
	case errors.As(err, &timeout) && timeout.Timeout():
		// The run's deadline has not passed, so the connection's own did.
		return fail.As(fail.Deliver, fmt.Errorf("%s: no answer from %s within option connect-timeout: %w: check the address and that no firewall drops the connection", at, d.url.Host, err))
	}
	return fail.As(fail.Deliver, fmt.Errorf("%s: %w: check that the receiver runs and that the switch's management network reaches it", at, err))
}

// unwrapURL drops the *url.Error that http.Client wraps errors in: its message
// holds the whole URL, whose query or path may hold the receiver's token.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusError words an answer other than 2xx, with a kind that tells
// destination.WithRetry whether a second try may help. Whatever the kind, the
// snapshot stays spooled and the next run tries it again.
func (d *Destination) statusError(name string, resp *http.Response, head []byte, size int) error {
	code := resp.StatusCode
	// Our own status text: the server's reason phrase is its to choose.
	what := fmt.Sprintf("%s: posting %s: HTTP %d %s", d, name, code, http.StatusText(code))
	if ex := excerpt(head, resp.Header.Get("Content-Type")); ex != "" {
		what += fmt.Sprintf(" (%q)", ex)
	}
	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || (code >= 500 && code < 600):
		return fail.New(fail.Deliver, "%s: the receiver is busy or failing; cfgsnap tries again", what)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		fix := "check that the receiver holds the same secret as option webhook-secret-file (or $" + SecretEnv + "); salt-api needs webhook_disable_auth: True, with the signature checked in the reactor"
		if d.format == FormatSlack {
			fix = "check the token in the webhook URL"
		}
		return fail.New(fail.Auth, "%s: %s", what, fix)
	case code == http.StatusRequestEntityTooLarge:
		return fail.New(fail.Usage, "%s: the receiver takes no body of %d bytes: raise its limit (salt-api: max_request_body_size, 1 MiB by default) or turn webhook-include-config off", what, size)
	case code == http.StatusNotFound || code == http.StatusMethodNotAllowed || code == http.StatusGone:
		return fail.New(fail.Usage, "%s: no webhook at this URL: check the target's path (salt-api: /hook/...)", what)
	case code >= 300 && code < 400:
		return fail.New(fail.Usage, "%s: the receiver redirects to %s, and cfgsnap follows only 307 and 308 to the same host: put the final URL in the target", what, d.location(resp))
	}
	return fail.New(fail.Usage, "%s: the receiver refused the body: check that it expects cfgsnap's webhook-format %s", what, d.format)
}

// location is where a redirect points, redacted like the target.
func (d *Destination) location(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "nowhere valid"
	}
	return Redact(loc, d.format)
}

// excerptLen bounds how much of an answer goes into an error message.
const excerptLen = 160

// excerpt is the start of an answer, safe for a one-line report: HTML tags
// dropped, white space and control characters folded into single spaces,
// anything outside printable ASCII shown as "?", at most excerptLen characters.
func excerpt(b []byte, contentType string) string {
	s := string(b)
	if strings.Contains(strings.ToLower(contentType), "html") {
		s = stripTags(s)
	}
	var out strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			space = true
			continue
		case r == utf8.RuneError || r > '~':
			r = '?'
		}
		if space && out.Len() > 0 {
			out.WriteByte(' ')
		}
		space = false
		if out.Len() >= excerptLen {
			out.WriteString("...")
			break
		}
		out.WriteRune(r)
	}
	return out.String()
}

// stripTags drops everything between < and >, so that an HTML error page
// shows its words.
func stripTags(s string) string {
	var out strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			out.WriteByte(' ')
		case r == '>' && in:
			in = false
		case !in:
			out.WriteRune(r)
		}
	}
	return out.String()
}
