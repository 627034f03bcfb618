// Package webhook is the destination that announces each snapshot with an HTTP
// POST: https://host[:port]/path, or http:// for labs. It serves salt-api's
// /hook/PATH (an event salt/netapi/hook/PATH for a Salt reactor), any receiver
// of signed JSON, and Slack-style incoming webhooks (option webhook-format slack).
//
// Format json posts the snapshot's record (snapshot.Record: host, last_change,
// user, comment, commits, name, size, sha256, changes, stored) as one JSON
// object. The configuration itself rides along only with webhook-include-config:
// a receiver usually needs to know that, when and by whom the configuration
// changed, and a webhook is a poor place for a file that holds password hashes.
// The body is signed: X-Cfgsnap-Signature: sha256=<hex HMAC-SHA256 of the exact
// body> with the secret of webhook-secret-file or $CFGSNAP_WEBHOOK_SECRET. Format
// json refuses to run without a secret, because a receiver that acts on an
// unsigned body acts on whatever anyone who can reach it sends. Format slack
// posts {"text": "..."}, one line for a channel; those services authenticate by
// the token in the URL, so it needs no secret, and it never carries the
// configuration.
//
// Every connection goes through the dial function New is given (the management
// namespace, DNS included); proxies from the environment are ignored, and
// redirects are followed only to the same scheme and host, and only those
// (307, 308) that resend the body unchanged.
package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/secret"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// SecretEnv holds the signing secret when option webhook-secret-file is not set.
const SecretEnv = "CFGSNAP_WEBHOOK_SECRET"

// Formats of option webhook-format.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// MaxConfig is the largest configuration webhook-include-config sends. The body
// is built in memory before anything is sent (a receiver must never get half a
// configuration), so the limit bounds the memory a Save takes on the switch;
// SR Linux configurations are far smaller.
const MaxConfig = 32 << 20

// maxRedirects bounds same-host redirects, so a loop ends in an error.
const maxRedirects = 3

// Destination posts one request per snapshot. Connections are kept alive
// between the Saves of one run and released by Close.
type Destination struct {
	url     *url.URL // with its query: it may hold the receiver's token
	shown   string   // String(): url without secrets
	format  string
	include bool
	secret  []byte // nil: unsigned (format slack only)
	client  *http.Client
	tr      *http.Transport
	warnf   destination.Logf
}

// Kind describes webhook targets to package target's registry: the http://
// and https:// URLs that Claims takes, which notify rather than store, and
// show without the token of a Slack-style URL (Redact).
func Kind() destination.Kind {
	return destination.Kind{
		Name:     "webhook",
		Schemes:  []string{"https", "http"},
		Forms:    []string{"https://host[:port]/path (webhook)", "http://host[:port]/path (webhook, labs)"},
		Claims:   Claims,
		Notifies: true,
		Redact:   func(u *url.URL, c *option.Config) string { return Redact(u, c.WebhookFormat) },
		New: func(u *url.URL, env destination.Env) (destination.Destination, error) {
			return destination.Made(New(u, env.Config, env.Dial, env.Logf))
		},
		EncryptTo: EncryptTo,
	}
}

// EncryptTo lets a webhook serve while option encrypt-to is set: its body is
// the snapshot's record (who, when, the plaintext's sha256, where the .age
// file is stored), not the configuration. With webhook-include-config the
// configuration itself would leave in the clear, which encrypt-to promises it
// never does; and a ciphertext in the body would serve no reader of a
// webhook (a chat channel, salt-api). So that combination is refused.
func EncryptTo(u *url.URL, c *option.Config) error {
	if !c.WebhookIncludeConfig {
		return nil
	}
	return fail.New(fail.Usage, "target %s: webhook-include-config would send the configuration in the clear, and option encrypt-to is set: drop webhook-include-config (the webhook still gets the record: who, when, the sha256, and where the encrypted snapshot is stored)", Redact(u, c.WebhookFormat))
}

// Claims reports whether u is a webhook target: http:// or https:// with a path
// that ends neither in .git, which names a git repository (git.Claims), nor in
// .git/, which neither kind claims: the registry gives it to this one, whose New
// refuses it and says to drop the .git.
func Claims(u *url.URL) bool {
	return (u.Scheme == "https" || u.Scheme == "http") && !isGit(u)
}

func isGit(u *url.URL) bool {
	return strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
}

// New returns the destination for an http:// or https:// URL. c supplies
// webhook-format, webhook-include-config, webhook-secret-file, ca-file and
// connect-timeout; every connection is made with dial. warnf (may be nil) hears
// what the user should know but that does not stop a delivery. New reads the
// secret and the CA file but does not connect. Its errors are fail.Usage, or
// fail.Permission for a file it may not read.
func New(u *url.URL, c *option.Config, dial destination.Dial, warnf destination.Logf) (*Destination, error) {
	shown := Redact(u, c.WebhookFormat)
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fail.New(fail.Usage, "target %s is not an https:// or http:// URL", shown)
	case isGit(u):
		return nil, fail.New(fail.Usage, "target %s ends in .git, so it is a git repository, not a webhook: drop the .git for a webhook", shown)
	case u.Host == "" || u.Hostname() == "":
		return nil, fail.New(fail.Usage, "target %s names no host: write https://host[:port]/path", shown)
	case u.User != nil:
		// A password in the URL would show in the event-handler state; the body is
		// authenticated by its signature instead.
		return nil, fail.New(fail.Usage, "target %s holds user information: remove it; cfgsnap signs each body with the secret of webhook-secret-file or $%s", shown, SecretEnv)
	case u.Fragment != "":
		return nil, fail.New(fail.Usage, "target %s has a #fragment, which is never sent: remove it", shown)
	case dial == nil:
		return nil, fail.New(fail.Internal, "target %s: no dial function: the webhook destination must connect through the management namespace", shown)
	}
	if c.WebhookFormat != FormatJSON && c.WebhookFormat != FormatSlack {
		return nil, fail.New(fail.Usage, "target %s: webhook-format %q: want json or slack", shown, c.WebhookFormat)
	}
	key, _, err := secret.Read("webhook-secret-file", c.WebhookSecretFile, SecretEnv)
	if err != nil {
		return nil, err
	}
	if key == "" && c.WebhookFormat == FormatJSON {
		return nil, fail.New(fail.Usage, "target %s: no secret to sign the webhook with: put one in a file named by option webhook-secret-file (or $%s) and give the receiver the same secret", shown, SecretEnv)
	}
	roots, err := httpx.Roots(c.CAFile)
	if err != nil {
		return nil, err
	}
	if warnf == nil {
		warnf = func(string, ...any) {}
	}
	target := *u // the caller's URL may change; this one is used for every POST
	d := &Destination{
		url:     &target,
		shown:   shown,
		format:  c.WebhookFormat,
		include: c.WebhookIncludeConfig && c.WebhookFormat == FormatJSON,
		warnf:   warnf,
	}
	if key != "" {
		d.secret = []byte(key)
	}
	d.tr = httpx.Transport(dial, c.ConnectTimeout, roots)
	// A custom DialContext turns HTTP/2 off unless asked for.
	d.tr.ForceAttemptHTTP2 = true
	// Saves go one at a time: one connection, kept alive between them, serves a run.
	d.tr.MaxIdleConnsPerHost = 1
	d.tr.IdleConnTimeout = 30 * time.Second
	d.client = &http.Client{Transport: d.tr, CheckRedirect: d.checkRedirect}
	return d, nil
}

// String is the target URL without its secrets (see Redact).
func (d *Destination) String() string { return d.shown }

// Close releases kept-alive connections.
func (d *Destination) Close() error {
	d.tr.CloseIdleConnections()
	return nil
}

// Save reads the whole snapshot (exactly rec.Size bytes), checks it against
// rec.SHA256 when that is set, and only then posts one body describing it, so
// a failing or short reader posts nothing. A 2xx answer is success: the
// receiver has all of the body, which is the only atomicity a notification has.
//
// Errors: fail.Deliver for what may pass (the network, timeouts, 5xx, 408, 429),
// which destination.WithRetry retries; fail.Auth for a refused certificate or
// a 401/403 (the secret or the CA is wrong); fail.Usage for other answers that
// a second try cannot change (a wrong URL, a body the receiver refuses). The
// snapshot stays spooled whatever the kind.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	config, err := d.read(ctx, &rec, r)
	if err != nil {
		return err
	}
	body, err := d.body(rec, config)
	if err != nil {
		return fail.New(fail.Internal, "%s: encoding the body for %s: %w", d, rec.Name, err)
	}
	if d.include && d.url.Scheme == "http" {
		d.warnf("%s: sending the configuration of %s unencrypted (http://, webhook-include-config): use https:// outside a lab", d, rec.Name)
	}
	return d.post(ctx, rec.Name, body)
}

// post sends body once and classifies the answer.
func (d *Destination) post(ctx context.Context, name string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url.String(), bytes.NewReader(body))
	if err != nil {
		return fail.New(fail.Usage, "%s: %v", d, unwrapURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cfgsnap")
	if d.secret != nil {
		req.Header.Set("X-Cfgsnap-Signature", Sign(d.secret, body))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return d.networkError(ctx, name, err)
	}
	defer resp.Body.Close()
	// Read a little of the answer: enough for an error message, and so that a
	// short answer leaves the connection reusable.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return d.statusError(name, resp, head, len(body))
}

// checkRedirect follows a redirect only when it cannot change what is sent or
// where: 307 and 308 resend the same POST, and only to the same scheme and host.
// 301-303 would turn the POST into a GET whose 2xx would look like a delivery.
// Anything else ends the request with the 3xx, which Save reports.
func (d *Destination) checkRedirect(req *http.Request, via []*http.Request) error {
	code := req.Response.StatusCode
	same := req.URL.Scheme == via[0].URL.Scheme && strings.EqualFold(req.URL.Host, via[0].URL.Host)
	if (code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect) || !same || len(via) > maxRedirects {
		return http.ErrUseLastResponse
	}
	return nil
}
