// Package file is the destination for a local or mounted folder: file:///path.
//
// It is what the demo uses, and what a switch can use with a folder that is
// mounted from elsewhere. Files are written 0600 and folders 0700, since a
// configuration holds password hashes and keys.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Destination stores snapshots below a local folder. It is a
// destination.Pruner, so retention (options keep and keep-days) applies to it.
type Destination struct {
	root string
}

var _ destination.Pruner = (*Destination)(nil)

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

// List returns the regular files directly in folder dir ("" is the root), with
// their size and modification time. Temporaries of Saves (destination.IsTempName),
// folders and symbolic links are left out: none is a snapshot. A missing folder
// is an empty list.
func (d *Destination) List(ctx context.Context, dir string) ([]destination.File, error) {
	if dir != "" && !fs.ValidPath(dir) {
		return nil, fail.New(fail.Usage, "%s: cannot list %q: not a relative, clean folder name", d, dir)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	entries, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	var files []destination.File
	for _, e := range entries {
		if !e.Type().IsRegular() || destination.IsTempName(e.Name()) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the folder was read
		}
		if err != nil {
			return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
		}
		files = append(files, destination.File{Name: path.Join(dir, e.Name()), Size: info.Size(), ModTime: info.ModTime()})
	}
	return files, nil
}

// Remove deletes the file name; a missing one is not an error. It refuses to
// remove anything but a regular file: retention removes snapshots, never a
// folder or what a link points to.
func (d *Destination) Remove(ctx context.Context, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return fail.New(fail.Usage, "%s: cannot remove %q: not a relative, clean file name", d, name)
	}
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: removing %s: %w", d, name, err)
	}
	p := filepath.Join(d.root, filepath.FromSlash(name))
	st, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fail.New(fail.Deliver, "%s: removing %s: %w", d, name, err)
	case !st.Mode().IsRegular():
		return fail.New(fail.Usage, "%s: not removing %s: it is not a regular file", d, name)
	}
	// No folder sync: a removal that a crash undoes is repeated by the next
	// Save's retention, and costs nothing meanwhile.
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail.New(fail.Deliver, "%s: removing %s: %w", d, name, err)
	}
	return nil
}

// orRoot names folder dir for messages.
func orRoot(dir string) string {
	if dir == "" || dir == "." {
		return "the root folder"
	}
	return dir
}

// Close does nothing: a folder holds no connection.
func (d *Destination) Close() error { return nil }
