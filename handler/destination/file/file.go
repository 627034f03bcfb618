// Package file is the destination for a local or mounted folder: file:///path.
//
// It is what the demo uses, and what a switch can use with a folder that is
// mounted from elsewhere. Files are written 0600 and folders 0700 from the
// moment they are created, since a configuration holds password hashes and
// keys; below the target folder, no symbolic link is followed.
package file

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

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

// Kind describes file:// targets to package target's registry.
func Kind() destination.Kind {
	return destination.Kind{Name: "file", Schemes: []string{"file"}, Forms: []string{"file:///path"}, Encrypts: true,
		New: func(u *url.URL, _ destination.Env) (destination.Destination, error) { return destination.Made(New(u)) }}
}

func (d *Destination) String() string { return "file://" + d.root }

// Save writes to a hidden temporary file, syncs it, renames it over name and
// syncs the folder, so a crash leaves either the old file or the new one.
//
// Someone else may create files in the folder (a shared one, say): the
// temporary file has a random name, and only the open that creates it, 0600,
// may open it (O_EXCL; os.Root adds O_NOFOLLOW), so a file or link planted
// there is never written to; the rename replaces a link at name instead of
// following it.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) (err error) {
	name, size := rec.Name, rec.Size
	dir, base := path.Split(name)
	folder, err := d.folder(dir, true)
	if err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: %w", d, name, err)
	}
	defer folder.Close()
	tmp := destination.TempName(base + "." + rand.Text())
	f, err := folder.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: %w", d, name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			folder.Remove(tmp)
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
	if err := folder.Rename(tmp, base); err != nil {
		return err
	}
	if err := syncFolder(folder); err != nil {
		return err
	}
	removeLeftovers(folder, base, tmp)
	return nil
}

// folder opens folder dir below the root (slash-separated; "" is the root),
// creating it and its missing parents 0700 if create is set. It follows no
// symbolic link below the root: one there would send snapshots wherever its
// maker chose (os.Root alone follows those that stay inside the root). The
// root and the path to it are the user's, links included.
func (d *Destination) folder(dir string, create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(d.root, 0o700); err != nil {
			return nil, err
		}
	}
	r, err := os.OpenRoot(d.root)
	if err != nil {
		return nil, err
	}
	var done string
	for _, name := range strings.Split(strings.Trim(dir, "/"), "/") {
		if name == "" {
			continue
		}
		done = path.Join(done, name)
		sub, err := openFolder(r, name, create)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("folder %s: %w", done, err)
		}
		r = sub
	}
	return r, nil
}

// openFolder opens folder name in parent, creating it 0700 if it is missing
// and create is set. A link is not a folder here.
func openFolder(parent *os.Root, name string, create bool) (*os.Root, error) {
	st, err := parent.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = parent.Mkdir(name, 0o700); err == nil || errors.Is(err, fs.ErrExist) {
			st, err = parent.Lstat(name)
		}
	}
	switch {
	case err != nil:
		return nil, err
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, errors.New("a symbolic link, which cfgsnap does not follow below the target folder: make it a folder, or make the target the folder it points to")
	case !st.IsDir():
		return nil, errors.New("not a folder: move it away")
	}
	sub, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	// The folder may have been swapped for a link since the Lstat: what was
	// opened must be what was checked.
	if opened, err := sub.Stat("."); err != nil || !os.SameFile(opened, st) {
		sub.Close()
		return nil, errors.New("replaced while it was opened; try again")
	}
	return sub, nil
}

func syncFolder(folder *os.Root) error {
	f, err := folder.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// removeLeftovers removes the temporary files of earlier Saves of base that
// were cut short (a killed process, a lost mount), which a retry of the same
// name cannot overwrite since temporary names are random: the regular files
// of this user named as Save names base's, ours aside. Someone else's file is
// not cfgsnap's to remove. What fails stays for the next Save of base.
func removeLeftovers(folder *os.Root, base, ours string) {
	f, err := folder.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, n := range names {
		if n == ours || len(n) != len(ours) || !strings.HasPrefix(n, "."+base+".") || !strings.HasSuffix(n, ".part") {
			continue
		}
		if st, err := folder.Lstat(n); err == nil && st.Mode().IsRegular() && int(st.Sys().(*syscall.Stat_t).Uid) == os.Geteuid() {
			folder.Remove(n)
		}
	}
}

// List returns the regular files directly in folder dir ("" is the root), with
// their size and modification time. Temporaries of Saves (destination.IsTempName),
// folders and symbolic links are left out: none is a snapshot. A missing folder
// is an empty list; one reached through a link below the root is refused.
func (d *Destination) List(ctx context.Context, dir string) ([]destination.File, error) {
	if dir != "" && !fs.ValidPath(dir) {
		return nil, fail.New(fail.Usage, "%s: cannot list %q: not a relative, clean folder name", d, dir)
	}
	if err := ctx.Err(); err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	folder, err := d.folder(dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	defer folder.Close()
	f, err := folder.Open(".")
	if err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
	}
	var files []destination.File
	for _, e := range entries {
		if !e.Type().IsRegular() || destination.IsTempName(e.Name()) {
			continue
		}
		// Through the folder's descriptor: e.Info would look the path up again.
		info, err := folder.Lstat(e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the folder was read
		}
		if err != nil {
			return nil, fail.New(fail.Deliver, "%s: listing %s: %w", d, orRoot(dir), err)
		}
		if info.Mode().IsRegular() {
			files = append(files, destination.File{Name: path.Join(dir, e.Name()), Size: info.Size(), ModTime: info.ModTime()})
		}
	}
	return files, nil
}

// Remove deletes the file name; a missing one is not an error. It refuses to
// remove anything but a regular file: retention removes snapshots, never a
// folder or what a link points to, nor a file reached through a link.
func (d *Destination) Remove(ctx context.Context, name string) error {
	if !fs.ValidPath(name) || name == "." {
		return fail.New(fail.Usage, "%s: cannot remove %q: not a relative, clean file name", d, name)
	}
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: removing %s: %w", d, name, err)
	}
	dir, base := path.Split(name)
	folder, err := d.folder(dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fail.New(fail.Deliver, "%s: removing %s: %w", d, name, err)
	}
	defer folder.Close()
	st, err := folder.Lstat(base)
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
	if err := folder.Remove(base); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
