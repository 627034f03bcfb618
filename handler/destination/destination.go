// Package destination defines where snapshots go: the Destination interface
// that every backend implements, its optional Pruner and Locator, the wrappers
// that retry, log, encrypt (age), store signed records and apply retention
// around one, and Kind, how a backend's package describes its targets to the
// registry in package target.
//
// To add a destination: write a package under handler/destination/ whose type
// is a Destination and whose function Kind describes its targets, add that
// Kind to target.Kinds, and run the conformance suite in
// handler/destination/desttest against its real server.
package destination

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// A Destination stores snapshots under slash-separated names relative to its root
// (the path of its target URL). Names come from package snapshot: relative, clean,
// no "..", no leading "/", made of safe characters only.
//
// Implementations are used by one goroutine at a time.
type Destination interface {
	// String describes the destination for logs and reports: its target URL,
	// never a secret.
	String() string

	// Save stores the snapshot rec describes: exactly rec.Size bytes read from r,
	// under rec.Name for destinations that keep files, creating missing folders
	// and replacing what is there. The rest of rec (host, user, commits,
	// last-change, sha256) is there for destinations that record it. Save is
	// atomic: whatever happens to this process or the connection, a reader sees
	// the old content, none, or all of the new content, never part of it. It fails
	// if r fails or yields other than rec.Size bytes, and when ctx is done.
	Save(ctx context.Context, rec snapshot.Record, r io.Reader) error

	// Close releases connections. The destination is not used afterwards.
	Close() error
}

// Pruner is a Destination that keeps files it can list and remove; retention
// (options keep and keep-days) works on those and leaves the others alone.
type Pruner interface {
	Destination

	// List returns the regular files directly in folder dir (slash-separated,
	// relative to the root; "" is the root), not those in subfolders, and not
	// the temporaries of a Save (IsTempName). A missing folder is an empty list.
	List(ctx context.Context, dir string) ([]File, error)

	// Remove deletes the file name (relative to the root). A missing file is
	// not an error.
	Remove(ctx context.Context, name string) error
}

// File is one entry of Pruner.List.
type File struct {
	Name    string // relative to the root, slash-separated
	Size    int64
	ModTime time.Time
}

// Locator is a Destination whose snapshots are not found at its URL joined
// with their name: a file in a git repository, say.
type Locator interface {
	// Location says where the snapshot rec describes is kept. Like String, it
	// never carries a secret: notifications pass it on as it is.
	Location(rec snapshot.Record) string
}

// Location says where d keeps the snapshot rec describes, for the record's
// Stored list that notifications carry. It looks through wrappers, and names
// the file as it is stored (StoredName: NAME.age when encrypted).
func Location(d Destination, rec snapshot.Record) string {
	rec.Name = StoredName(d, rec.Name)
	if l, ok := As[Locator](d); ok {
		return l.Location(rec)
	}
	return strings.TrimSuffix(d.String(), "/") + "/" + rec.Name
}

// As returns the first of d and the destinations it wraps (WithLog, WithRetry,
// WithRetention and any other with an Unwrap method) that is a T, and false if
// none is: it is how a caller reaches an optional interface (Pruner, Locator)
// of a destination that wrappers hide.
func As[T any](d Destination) (T, bool) {
	for d != nil {
		if t, ok := d.(T); ok {
			return t, true
		}
		w, ok := d.(interface{ Unwrap() Destination })
		if !ok {
			break
		}
		d = w.Unwrap()
	}
	var none T
	return none, false
}
