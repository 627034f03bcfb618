package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// file reads a configuration that SR Linux wrote to disk: config.json (changes only
// on save) or an auto-checkpoint (written after each commit). A file names no user,
// so commits come from sr_cli when it is installed; without it the user is unknown.
type file struct {
	path    string
	commits *srCLI
}

// WriteConfig streams the file to w byte for byte, checking on the way that it is one
// JSON object: a checkpoint caught half-written must not become a snapshot.
func (f *file) WriteConfig(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Source, "reading %s: %v", f.path, context.Cause(ctx))
	}
	r, err := os.Open(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail.New(fail.Source, "%s does not exist: fix option source file:PATH (checkpoints need system configuration auto-checkpoint true)", f.path)
	case errors.Is(err, fs.ErrPermission):
		return fail.New(fail.Permission, "cannot read %s: run cfgsnap with sudo", f.path)
	case err != nil:
		return fail.New(fail.Source, "opening %s: %v", f.path, err)
	}
	defer r.Close()
	writeErr, badJSON := copyJSON(w, r)
	switch {
	case writeErr != nil:
		return writeErr
	case badJSON != nil:
		return fail.New(fail.Source, "%s is not a JSON configuration (%v): point option source at config.json or a checkpoint-N.json", f.path, badJSON)
	}
	return nil
}

// Commits asks sr_cli when it is installed; otherwise there are none.
func (f *file) Commits(ctx context.Context) ([]snapshot.Commit, error) {
	if !f.commits.available() {
		return nil, nil
	}
	return f.commits.Commits(ctx)
}
