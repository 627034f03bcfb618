// Package file is the destination for a local or mounted folder: file:///path.
//
// It is what the demo uses, and what a switch can use with a folder that is
// mounted from elsewhere. Files are written 0600 and folders 0700, since a
// configuration holds password hashes and keys.
package file

import (
	"context"
	"fmt"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// Destination stores snapshots below a local folder.
type Destination struct {
	root string
}

// New returns the destination for a file:///path URL. The folder is created on
// the first Save.
func New(u *url.URL) (*Destination, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fail.New(fail.Usage, "target %s: a file target has no host; write file:///absolute/path", u.Redacted())
	}
	if !filepath.IsAbs(u.Path) {
		return nil, fail.New(fail.Usage, "target %s: want an absolute path, as in file:///var/backups/srl", u.Redacted())
	}
	return &Destination{root: filepath.Clean(u.Path)}, nil
}

func (d *Destination) String() string { return "file://" + d.root }

// Save writes to a hidden temporary file, syncs it, renames it over name and
// syncs the folder, so a crash leaves either the old file or the new one.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) (err error) {
	name, size := rec.Name, rec.Size
	final := filepath.Join(d.root, filepath.FromSlash(name))
	tmp := filepath.Join(d.root, filepath.FromSlash(destination.TempName(name)))
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail.New(fail.Deliver, "%s: %w", d, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fail.New(fail.Deliver, "%s: %w", d, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fail.As(fail.Deliver, fmt.Errorf("%s: saving %s: %w", d, name, err))
		}
	}()
	if err := destination.Copy(ctx, f, r, size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Close does nothing: a folder holds no connection.
func (d *Destination) Close() error { return nil }
