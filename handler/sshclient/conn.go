package sshclient

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"golang.org/x/crypto/ssh"
)

// Target is an sftp:// or scp:// target taken apart: what the destinations for
// both schemes need before they first connect.
type Target struct {
	// URL is the target as the user wrote it, any password redacted: what
	// messages and reports name.
	URL string
	// Root is the folder on the server, as RemotePath maps the target's path.
	Root string
	// Config is the base settings with the user and host of the target.
	Config Config
}

// ParseTarget checks that u is a scheme:// target without ?query or #fragment
// (neither means anything to an SSH server), and takes it apart with
// Config.ForURL and RemotePath. base carries the settings shared by all SSH
// targets (FromOptions, plus Dial and Warnf). Every error is a fail.Usage error.
func ParseTarget(u *url.URL, scheme string, base Config) (Target, error) {
	if u.Scheme != scheme {
		return Target{}, fail.New(fail.Usage, "target %s is not an %s:// URL", u.Redacted(), scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Target{}, fail.New(fail.Usage, "target %s: an %s target takes no ?query or #fragment", u.Redacted(), scheme)
	}
	c, err := base.ForURL(u)
	if err != nil {
		return Target{}, err
	}
	root, err := RemotePath(u)
	if err != nil {
		return Target{}, err
	}
	return Target{URL: u.Redacted(), Root: root, Config: c}, nil
}

// String is the target URL.
func (t Target) String() string { return t.URL }

// Conn is a destination's connection to its target, and S, what the destination
// runs over it for as long as the connection lives (an SFTP client; nothing for
// SCP, which opens a session per Save).
//
// The connection is made on the first Save, not before: a destination that has
// nothing to send never dials. It is kept for the next Saves, so that a backlog
// goes over one connection, until Close, or until a Save fails: the connection may
// be broken then, and a fresh one costs little next time.
//
// Like a Destination, a Conn is used by one goroutine at a time.
type Conn[S any] struct {
	target Target
	grace  time.Duration
	start  func(ctx context.Context, client *ssh.Client) (S, error)
	stop   func(S)

	client *ssh.Client // nil while not connected
	s      S
}

// NewConn returns the connection to t, not yet made.
//
// start, unless nil, runs on each new connection before the first save over it;
// when it fails, the connection is closed and the Save fails with its error,
// which should say what the user can do. stop, unless nil, ends what start began,
// before the connection is closed.
//
// grace is how long a Save whose ctx has ended may still go on, to clean up after
// itself, before the connection is cut under it.
func NewConn[S any](t Target, grace time.Duration, start func(ctx context.Context, client *ssh.Client) (S, error), stop func(S)) *Conn[S] {
	return &Conn[S]{target: t, grace: grace, start: start, stop: stop}
}

// Save runs save over the connection, connecting first when there is none; name
// is the snapshot save stores, for messages. It does not start once ctx has ended.
//
// If ctx ends and save has not returned within grace, the connection is closed:
// a save stuck on an unresponsive server then fails instead of hanging, while one
// that notices the cancellation in time can still clean up. If save fails, the
// connection is dropped, and its error is given the target, the name and, where
// it does not hold it already, ctx's error: a save cut short says why. Errors
// from connecting are given the target. All are of kind fail.Deliver unless they
// have a kind already, as those of Dial may (fail.Auth for keys and host keys).
func (c *Conn[S]) Save(ctx context.Context, name string, save func(client *ssh.Client, s S) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: %w", c.target, name, err)
	}
	if err := c.connect(ctx); err != nil {
		return err
	}
	defer cutAfterGrace(ctx, c.client, c.grace)()
	defer func() {
		if err != nil {
			c.drop()
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			err = fail.As(fail.Deliver, fmt.Errorf("%s: saving %s: %w", c.target, name, err))
		}
	}()
	return save(c.client, c.s)
}

// String is the target URL.
func (c *Conn[S]) String() string { return c.target.URL }

// Close closes the connection, if any. The next Save would connect afresh.
func (c *Conn[S]) Close() error {
	c.drop()
	return nil
}

func (c *Conn[S]) connect(ctx context.Context) error {
	if c.client != nil {
		return nil
	}
	client, err := Dial(ctx, c.target.Config)
	if err != nil {
		return fail.As(fail.Deliver, fmt.Errorf("%s: %w", c.target, err))
	}
	var s S
	if c.start != nil {
		s, err = c.start(ctx, client)
		if err != nil {
			client.Close()
			return fail.As(fail.Deliver, fmt.Errorf("%s: %w", c.target, err))
		}
	}
	c.client, c.s = client, s
	return nil
}

func (c *Conn[S]) drop() {
	if c.client != nil {
		if c.stop != nil {
			c.stop(c.s)
		}
		c.client.Close()
	}
	var zero S
	c.client, c.s = nil, zero
}

// cutAfterGrace closes client if ctx ends and the caller has not returned within
// grace. Call the returned function when done.
func cutAfterGrace(ctx context.Context, client *ssh.Client, grace time.Duration) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			client.Close()
		}
	}()
	return func() { close(done) }
}
