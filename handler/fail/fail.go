// Package fail gives cfgsnap's errors a kind, and each kind a documented exit code,
// so that main can turn any error into one line on stderr and a number a script can test.
//
// Errors that carry no kind are internal: exit code 1.
package fail

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the user must do about it. Its value is the exit code.
type Kind int

const (
	// Internal is a bug or an unexpected operating-system error.
	Internal Kind = 1
	// Usage is a bad command line, option or options file: fix the invocation.
	Usage Kind = 2
	// Event is a malformed event-handler input: check the script and its options.
	Event Kind = 3
	// Source means the running configuration or commit list could not be read.
	Source Kind = 4
	// Deliver means a destination could not be reached or refused the write;
	// the snapshot stays spooled and is retried.
	Deliver Kind = 5
	// Auth means authentication failed, either way: the peer refused our
	// credentials (an SSH key, a git password, S3 keys, a webhook's 401 or 403),
	// or we refused the peer's (an SSH host key, a TLS certificate). Fix the keys,
	// known_hosts, the password or ca-file; the snapshot stays spooled, and no
	// retry can help before that.
	Auth Kind = 6
	// Permission means an operation needed privileges (entering the network
	// namespace, writing the spool): run with sudo.
	Permission Kind = 7
	// Busy means another cfgsnap holds the spool lock; not an error for handle.
	Busy Kind = 8
)

// Error is an error with a Kind. Its message should say what failed and what to do.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a formatted message; %w verbs wrap as with fmt.Errorf.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...)}
}

// As wraps err with kind k unless err already carries a kind. It returns nil for nil.
func As(k Kind, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: k, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, Internal if none, 0 for nil.
func KindOf(err error) Kind {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
