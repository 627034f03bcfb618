// Package target turns a target URL into a Destination. Open's switch is the one
// place that knows every scheme: to add a destination, add a case here.
package target

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
	"github.com/cfgsnap/cfgsnap/handler/destination/git"
	"github.com/cfgsnap/cfgsnap/handler/destination/s3"
	"github.com/cfgsnap/cfgsnap/handler/destination/scp"
	"github.com/cfgsnap/cfgsnap/handler/destination/sftp"
	"github.com/cfgsnap/cfgsnap/handler/destination/webhook"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
)

// Env is what destinations need besides their URL.
type Env struct {
	Config *option.Config
	// Dial opens connections inside the management namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	Logf destination.Logf
}

// Retries within one run, before the snapshot is left to the spool.
const (
	tries      = 3
	firstPause = time.Second
)

// Parse checks a target URL without connecting anywhere, so that `handle` can
// refuse a bad target before it queues anything.
func Parse(target string) (*url.URL, error) {
	// git's scp-like user@host:path, which url.Parse cannot read, travels in
	// Opaque (see git.SCPURL); it has no password syntax to refuse.
	if git.IsSCPLike(target) {
		return git.SCPURL(target)
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, fail.New(fail.Usage, "target %q is not a URL such as sftp://user@host/path or file:///path", redact(target))
	}
	if !known(u.Scheme) && !git.Claims(u) {
		return nil, fail.New(fail.Usage, "target %s: unknown scheme %q; cfgsnap stores to %s", u.Redacted(), u.Scheme, schemeList())
	}
	if u.Scheme == "sftp" || u.Scheme == "scp" {
		// A remote path that can never work (control characters, climbing out
		// of the login folder) is refused now, not at every delivery.
		if _, err := sshclient.RemotePath(u); err != nil {
			return nil, err
		}
	}
	if u.Scheme == "s3" {
		// Its query and bucket are checked now, not at the first delivery.
		if err := s3.Check(u); err != nil {
			return nil, err
		}
	}
	if _, ok := u.User.Password(); ok {
		return nil, fail.New(fail.Usage, "target %s: a password in the URL would show in the event-handler state; use a key file (option identity)", u.Redacted())
	}
	return u, nil
}

// forms lists what Open accepts, for error messages and help; keep it in step
// with Open's switch.
func forms() []string {
	return []string{"sftp://user@host[:port]/path", "scp://user@host[:port]/path", "file:///path",
		"https://host[:port]/path (webhook)", "http://host[:port]/path (webhook, labs)",
		"git+ssh://user@host[:port]/path/repo.git (git)", "user@host:path/repo.git (git)",
		"https://host/path/repo.git (git; git+https:// where the URL does not end in .git)",
		"s3://bucket/prefix[?endpoint=host:port&region=R&tls=false]"}
}

func known(scheme string) bool {
	for _, f := range forms() {
		if strings.HasPrefix(f, scheme+":") {
			return true
		}
	}
	return false
}

func schemeList() string { return strings.Join(forms(), ", ") }

// Open returns the destination for target, with retries and logging around it.
func Open(target string, env Env) (destination.Destination, error) {
	u, err := Parse(target)
	if err != nil {
		return nil, err
	}
	ssh := sshclient.FromOptions(env.Config)
	ssh.Dial, ssh.Warnf = env.Dial, env.Logf
	var d destination.Destination
	switch {
	case git.Claims(u):
		// First: https:// URLs ending in .git are git repositories, not webhooks.
		d, err = git.New(u, env.Config, env.Dial, env.Logf)
	case u.Scheme == "sftp":
		d, err = sftp.New(u, ssh)
	case u.Scheme == "scp":
		d, err = scp.New(u, ssh)
	case u.Scheme == "file":
		d, err = file.New(u)
	case u.Scheme == "s3":
		d, err = s3.New(u, env.Config, env.Dial)
	case u.Scheme == "http", u.Scheme == "https":
		d, err = webhook.New(u, env.Config, env.Dial, env.Logf)
	}
	if err != nil {
		return nil, err
	}
	// Retention goes outermost: it prunes once, after the save (and its
	// retries) succeeded and was logged.
	wrapped := destination.WithLog(destination.WithRetry(d, tries, firstPause, env.Logf), env.Logf)
	kept, err := destination.WithRetention(wrapped, Retention(env.Config), time.Now, env.Logf)
	if err != nil {
		d.Close()
		return nil, err
	}
	return kept, nil
}

// Retention is the policy that options keep, keep-days and name make. Its
// Check is what handle runs before queuing, so a name template under which
// retention could take another switch's snapshots for this one's is refused
// there, in one line that names a template that works.
func Retention(c *option.Config) destination.Retention {
	return destination.Retention{Keep: c.Keep, KeepDays: c.KeepDays, Template: c.Name}
}

// Display is target as reports show it: no password, and no webhook token
// (Slack-style URLs keep theirs in the path).
func Display(target string, c *option.Config) string {
	u, err := Parse(target)
	switch {
	case err != nil:
		return "(bad target)"
	case Notifies(target):
		return webhook.Redact(u, c.WebhookFormat)
	}
	return u.Redacted()
}

// Notifies reports whether target is a notification (a webhook) rather than a
// store: it holds no copy to point at, and goes after the stores, so it can say
// where the snapshot is. An http(s) URL is a webhook unless it names a git
// repository (a path ending in .git).
func Notifies(target string) bool {
	u, err := Parse(target)
	return err == nil && webhook.Claims(u)
}

// redact hides whatever precedes an "@" (user and perhaps a password) in a
// target that could not be parsed, so an error never shows a password.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	if j := strings.Index(s, "://"); j >= 0 && j < at {
		return s[:j+3] + "…" + s[at:]
	}
	return "…" + s[at:]
}
