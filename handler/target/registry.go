package target

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/sshsig"
)

// A Registry knows kinds of destination, and finds the kind of a target.
type Registry struct {
	kinds []destination.Kind
}

// NewRegistry returns the registry of kinds. Two kinds may list the same
// scheme only if both have Claims to tell their URLs apart; NewRegistry
// panics otherwise, as that is a mistake in the list, not in a target.
func NewRegistry(kinds ...destination.Kind) *Registry {
	byScheme := map[string]destination.Kind{}
	for _, k := range kinds {
		for _, s := range k.Schemes {
			if o, ok := byScheme[s]; ok && (o.Claims == nil || k.Claims == nil) {
				panic(fmt.Sprintf("target: kinds %s and %s both take scheme %s, and not both have Claims", o.Name, k.Name, s))
			}
			byScheme[s] = k
		}
	}
	return &Registry{kinds: slices.Clone(kinds)}
}

// Parse checks a target without connecting anywhere: that some kind takes it,
// that the kind's Check passes, and that the URL holds no password (which
// would show in the event-handler state).
func (r *Registry) Parse(target string) (*url.URL, error) {
	// A form that url.Parse cannot read (git's scp-like user@host:path)
	// travels in Opaque; it has no password syntax to refuse.
	for _, k := range r.kinds {
		if k.Parse == nil {
			continue
		}
		if u, ok := k.Parse(target); ok {
			return u, nil
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, fail.New(fail.Usage, "target %q is not a URL such as sftp://user@host/path or file:///path", redact(target))
	}
	k, ok := r.kindOf(u)
	if !ok {
		return nil, fail.New(fail.Usage, "target %s: unknown scheme %q; cfgsnap stores to %s", u.Redacted(), u.Scheme, r.forms())
	}
	if k.Check != nil {
		if err := k.Check(u); err != nil {
			return nil, err
		}
	}
	if _, ok := u.User.Password(); ok {
		return nil, fail.New(fail.Usage, "target %s: a password in the URL would show in the event-handler state; use a key file (option identity)", u.Redacted())
	}
	return u, nil
}

// Open returns the destination for target, with retries and logging around
// it, and retention (options keep and keep-days) around those. With option
// encrypt-to, a kind that Encrypts stores each snapshot encrypted as NAME.age
// (destination.WithEncryption, inside the retries, so each try encrypts
// anew), and a kind that does not is opened only if its EncryptTo lets it.
// A kind that Encrypts (a file of its own per snapshot) also stores each
// snapshot's record beside it, signed with option sign-key when set
// (destination.WithRecords, also inside the retries).
func (r *Registry) Open(target string, env Env) (destination.Destination, error) {
	u, err := r.Parse(target)
	if err != nil {
		return nil, err
	}
	k, _ := r.kindOf(u) // Parse found it
	var to *destination.Recipients
	if len(env.Config.EncryptTo) > 0 {
		if to, err = encryption(k, u, env.Config); err != nil {
			return nil, err
		}
	}
	d, err := k.New(u, env)
	if err != nil {
		return nil, err
	}
	if k.Encrypts { // a file of its own per snapshot: its record goes beside it
		signer, err := sshsig.FromOptions(env.Config)
		if err != nil {
			d.Close()
			return nil, err
		}
		plain := d
		if to != nil {
			d = destination.WithEncryption(d, to)
		}
		var sign destination.Signer // a nil *sshsig.Signer must not become a non-nil Signer
		if signer != nil {
			sign = signer
		}
		d = destination.WithRecords(d, plain, sign)
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	// Retention goes outermost: it prunes once, after the save (and its
	// retries) succeeded and was logged.
	wrapped := destination.WithLog(destination.WithRetry(d, tries, firstPause, env.Logf), env.Logf)
	kept, err := destination.WithRetention(wrapped, Retention(env.Config), now, env.Logf)
	if err != nil {
		d.Close()
		return nil, err
	}
	return kept, nil
}

// CheckEncryption refuses, with one line, what option encrypt-to cannot do
// as set in c: recipients age cannot encrypt to (it reads the files of them),
// and a target that would get the configuration in the clear (a git
// repository; a webhook with webhook-include-config). handle runs it before
// anything is queued. Without encrypt-to it accepts anything.
func (r *Registry) CheckEncryption(c *option.Config) error {
	if len(c.EncryptTo) == 0 {
		return nil
	}
	for _, t := range c.Targets {
		u, err := r.Parse(t)
		if err != nil {
			return err
		}
		k, _ := r.kindOf(u)
		if _, err := encryption(k, u, c); err != nil {
			return err
		}
	}
	_, err := destination.ReadRecipients(c.EncryptTo)
	return err
}

// encryption returns the recipients that kind k encrypts to under c, which
// sets encrypt-to: none for a kind that does not encrypt but may serve all
// the same (its EncryptTo), and an error for one that may not.
func encryption(k destination.Kind, u *url.URL, c *option.Config) (*destination.Recipients, error) {
	switch {
	case k.Encrypts:
		return destination.ReadRecipients(c.EncryptTo)
	case k.EncryptTo != nil:
		return nil, k.EncryptTo(u, c)
	}
	return nil, fail.New(fail.Usage, "target %s: %s targets cannot store encrypted snapshots, and option encrypt-to is set: drop the target or encrypt-to", u.Redacted(), k.Name)
}

// Display is target as reports show it: no password, and no secret its kind
// knows of (a Slack-style webhook URL keeps its token in the path).
func (r *Registry) Display(target string, c *option.Config) string {
	u, err := r.Parse(target)
	if err != nil {
		return "(bad target)"
	}
	if k, ok := r.claimant(u); ok && k.Redact != nil {
		return k.Redact(u, c)
	}
	return u.Redacted()
}

// Notifies reports whether target is a notification (a webhook) rather than a
// store: it holds no copy to point at, and goes after the stores, so it can say
// where the snapshot is.
func (r *Registry) Notifies(target string) bool {
	u, err := r.Parse(target)
	if err != nil {
		return false
	}
	k, ok := r.claimant(u)
	return ok && k.Notifies
}

// claimant returns the kind that claims u.
func (r *Registry) claimant(u *url.URL) (destination.Kind, bool) {
	for _, k := range r.kinds {
		if k.Claims != nil && k.Claims(u) || k.Claims == nil && slices.Contains(k.Schemes, u.Scheme) {
			return k, true
		}
	}
	return destination.Kind{}, false
}

// kindOf returns the kind that claims u or, when none does, the first that
// lists its scheme, whose New then says what is wrong with u (an https:// URL
// ending in .git/ is neither a repository nor a webhook).
func (r *Registry) kindOf(u *url.URL) (destination.Kind, bool) {
	if k, ok := r.claimant(u); ok {
		return k, true
	}
	for _, k := range r.kinds {
		if slices.Contains(k.Schemes, u.Scheme) {
			return k, true
		}
	}
	return destination.Kind{}, false
}

// forms lists the target forms of every kind, for error messages.
func (r *Registry) forms() string {
	var all []string
	for _, k := range r.kinds {
		all = append(all, k.Forms...)
	}
	return strings.Join(all, ", ")
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
