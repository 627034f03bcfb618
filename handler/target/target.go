// Package target turns a target string into a Destination. Kinds lists every
// kind of destination cfgsnap has, once; the Registry made of them is the one
// place that reads a target's scheme. To add a destination, write its package
// (see handler/destination) and add its Kind to Kinds.
package target

import (
	"net/url"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/file"
	"github.com/cfgsnap/cfgsnap/handler/destination/git"
	"github.com/cfgsnap/cfgsnap/handler/destination/s3"
	"github.com/cfgsnap/cfgsnap/handler/destination/scp"
	"github.com/cfgsnap/cfgsnap/handler/destination/sftp"
	"github.com/cfgsnap/cfgsnap/handler/destination/webhook"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Kinds is every kind of destination cfgsnap has, in the order errors list
// their target forms.
func Kinds() []destination.Kind {
	return []destination.Kind{
		sftp.Kind(),
		scp.Kind(),
		file.Kind(),
		webhook.Kind(),
		git.Kind(),
		s3.Kind(),
	}
}

// Env is what destinations need besides their URL.
type Env = destination.Env

// Retries within one run, before the snapshot is left to the spool.
const (
	tries      = 3
	firstPause = time.Second
)

// builtin is the registry of Kinds that the functions below use.
var builtin = NewRegistry(Kinds()...)

// Parse checks a target without connecting anywhere, so that `handle` can
// refuse a bad target before it queues anything (Registry.Parse).
func Parse(target string) (*url.URL, error) { return builtin.Parse(target) }

// Open returns the destination for target, with retries and logging around
// it (Registry.Open).
func Open(target string, env Env) (destination.Destination, error) { return builtin.Open(target, env) }

// CheckEncryption refuses what option encrypt-to cannot do as c sets it, before
// anything is queued (Registry.CheckEncryption).
func CheckEncryption(c *option.Config) error { return builtin.CheckEncryption(c) }

// Display is target as reports show it (Registry.Display).
func Display(target string, c *option.Config) string { return builtin.Display(target, c) }

// Notifies reports whether target is a notification (a webhook) rather than a
// store (Registry.Notifies).
func Notifies(target string) bool { return builtin.Notifies(target) }

// Retention is the policy that options keep, keep-days and name make. Its
// Check is what handle runs before queuing, so a name template under which
// retention could take another switch's snapshots for this one's is refused
// there, in one line that names a template that works.
func Retention(c *option.Config) destination.Retention {
	return destination.Retention{Keep: c.Keep, KeepDays: c.KeepDays, Template: c.Name}
}
