package destination

import (
	"context"
	"net"
	"net/url"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Dial opens a network connection, as net.Dialer.DialContext does. Package
// netns supplies one that dials inside the management namespace, DNS
// included; a destination makes every connection with the one it is given.
type Dial func(ctx context.Context, network, addr string) (net.Conn, error)

// Env is what every destination is made with besides its URL, the same for
// all: each takes what it needs of it.
type Env struct {
	// Config is the options.
	Config *option.Config
	// Dial makes every connection.
	Dial Dial
	// Logf hears what the user should know but that does not stop a
	// delivery (warnings, retries, what retention removed).
	Logf Logf
	// Now is the clock retention reads; nil is time.Now.
	Now func() time.Time
}

// A Kind is one kind of destination as package target's registry lists it:
// which targets are its, how they are checked and shown, and how to make one.
// Each destination package exports its own (its function Kind), and no other
// code decides anything by a target's scheme.
type Kind struct {
	// Name names the kind: "sftp", "git".
	Name string
	// Schemes are the URL schemes of its targets. Two kinds may share one
	// only if both have Claims (git and webhook share https).
	Schemes []string
	// Forms are its target forms, as the error for an unknown scheme lists them.
	Forms []string

	// Claims reports whether u is this kind's; nil: every URL whose scheme is
	// in Schemes is. A URL of a scheme in Schemes that no kind claims goes to
	// this kind all the same (to the first that lists the scheme), whose New
	// then says what is wrong with it.
	Claims func(u *url.URL) bool
	// Parse reads a target that is not a URL, such as git's scp-like
	// user@host:path: ok is false when target is not of its form. The URL it
	// returns must be one Claims accepts. nil: every target of the kind is a URL.
	Parse func(target string) (u *url.URL, ok bool)
	// Check refuses, with a fail.Usage error and without connecting or
	// reading any file, a URL of the kind that can never work, so that a bad
	// target is refused before a snapshot is queued. nil: none.
	Check func(u *url.URL) error
	// Notifies is true for a kind that announces snapshots rather than
	// storing them (a webhook): it holds no copy to point at, so it is served
	// after the stores and can say where they put the snapshot.
	Notifies bool
	// Redact is u as logs and reports show it, without secrets; nil:
	// u.Redacted(), without the password.
	Redact func(u *url.URL, c *option.Config) string

	// Encrypts is true for a kind that keeps each snapshot as a file of its
	// own under its name (file, sftp, scp, s3): with option encrypt-to the
	// registry wraps it in WithEncryption, and it stores NAME.age without
	// doing anything itself.
	Encrypts bool
	// EncryptTo says, for a kind that does not encrypt, whether it may serve
	// while option encrypt-to is set, which promises that no configuration
	// leaves in the clear: nil error when it sends none under c (a webhook
	// without webhook-include-config), else a fail.Usage error that says why
	// not and what to do (git). A kind with neither Encrypts nor EncryptTo is
	// refused with encrypt-to, so a new kind never sends a configuration in
	// the clear by omission.
	EncryptTo func(u *url.URL, c *option.Config) error

	// New returns the destination for u, a URL that this kind claims and
	// whose Check passed. It does not connect.
	New func(u *url.URL, env Env) (Destination, error)
}

// Made returns what a package's own constructor returned as Kind.New
// returns it: with an error, no Destination at all, rather than one that
// holds a nil pointer and is not == nil.
func Made[D Destination](d D, err error) (Destination, error) {
	if err != nil {
		return nil, err
	}
	return d, nil
}
