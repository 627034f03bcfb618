// Package sftp is the destination for an SSH server's SFTP subsystem:
// sftp://user@host[:port]/path.
//
// The path is absolute (sftp://backup@10.0.0.5/srl is /srl); /~/ starts it in the
// login folder (sftp://backup@10.0.0.5/~/srl), and no path at all is the login
// folder itself. Each snapshot is written to a hidden temporary file beside its
// final name, synced (fsync@openssh.com), and renamed over the final name
// (posix-rename@openssh.com), so a reader never sees half a file. Files are
// created 0600 and folders 0700, in the request that creates them, since a
// configuration holds password hashes and keys. The temporary file has a
// random name and is created exclusively (SSH_FXF_EXCL), so a file or link that
// another user planted there never receives a snapshot.
package sftp

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
	"slices"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// grace is how long a cancelled Save may still take to remove its temporary
// file before the connection is cut.
const grace = 3 * time.Second

// Destination stores snapshots below a folder on an SFTP server. It connects on
// the first Save (or List, or Remove) and keeps the connection for the next ones
// until Close, or until one fails, after which the next connects afresh. It is
// a destination.Pruner, so retention (options keep and keep-days) applies to it.
type Destination struct {
	root string
	conn *sshclient.Conn[*pkgsftp.Client]
}

var _ destination.Pruner = (*Destination)(nil)

// New returns the destination for an sftp:// URL. base carries the settings
// shared by all SSH targets (sshclient.FromOptions, plus Dial and Warnf); the
// user and host come from u. New does not connect.
func New(u *url.URL, base sshclient.Config) (*Destination, error) {
	t, err := sshclient.ParseTarget(u, "sftp", base)
	if err != nil {
		return nil, err
	}
	start := func(ctx context.Context, conn *ssh.Client) (*pkgsftp.Client, error) {
		return startSFTP(ctx, conn, t.Config.Timeout)
	}
	stop := func(c *pkgsftp.Client) { c.Close() }
	return &Destination{root: t.Root, conn: sshclient.NewConn(t, grace, start, stop)}, nil
}

// Kind describes sftp:// targets to package target's registry, which
// refuses a remote path that can never work before anything is queued.
func Kind() destination.Kind {
	return destination.Kind{Name: "sftp", Schemes: []string{"sftp"}, Forms: []string{"sftp://user@host[:port]/path"}, New: open, Encrypts: true,
		Check: func(u *url.URL) error { _, err := sshclient.RemotePath(u); return err }}
}

// String is the target URL.
func (d *Destination) String() string { return d.conn.String() }

// Save streams r to a temporary file, syncs it and renames it over name.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	name, size := rec.Name, rec.Size
	return d.conn.Save(ctx, name, func(conn *ssh.Client, client *pkgsftp.Client) error {
		final := path.Join(d.root, name)
		tmp := path.Join(d.root, destination.TempName(name+"."+rand.Text()))
		return save(ctx, conn, client, final, tmp, size, r)
	})
}

// save writes r to tmp, syncs it and renames it over final, with client, which
// runs over conn.
func save(ctx context.Context, conn *ssh.Client, client *pkgsftp.Client, final, tmp string, size int64, r io.Reader) (err error) {
	if err := mkdirAll(client, path.Dir(final)); err != nil {
		return err
	}
	// Only this open may open tmp (O_EXCL, which follows no link either), and
	// the file is 0600 from the start (createModes).
	f, err := client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, explainFailure(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			removeBounded(conn, client, tmp)
		}
	}()
	// For servers that ignore the mode of the open, and umasks that leave less.
	if err := f.Chmod(0o600); err != nil && !unsupported(err) {
		return fmt.Errorf("making %s private: %w", tmp, err)
	}
	if err := destination.Copy(ctx, f, r, size); err != nil {
		return explainFailure(err)
	}
	// Without the extension (non-OpenSSH servers) the rename still makes the file
	// appear whole; only a crash of the server itself could then lose it.
	if err := f.Sync(); err != nil && !unsupported(err) {
		return fmt.Errorf("syncing %s: %w", tmp, explainFailure(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, explainFailure(err))
	}
	if err := client.PosixRename(tmp, final); err != nil {
		if unsupported(err) {
			return fmt.Errorf("renaming %s over %s: the server lacks posix-rename@openssh.com, which an atomic replace needs; use an scp:// target", tmp, final)
		}
		return fmt.Errorf("renaming %s to %s: %w", tmp, final, err)
	}
	removeLeftovers(ctx, client, final, tmp)
	return nil
}

// removeLeftovers removes the temporary files of earlier Saves of final that
// were cut short (a lost connection, a killed process), which a retry cannot
// overwrite since temporary names are random: the regular files named as Save
// names final's, ours aside, whose owner is final's, this user, who just
// renamed it there. Someone else's file is not cfgsnap's to remove. What
// fails stays for the next Save of final.
func removeLeftovers(ctx context.Context, client *pkgsftp.Client, final, ours string) {
	dir, base, ours := path.Dir(final), path.Base(final), path.Base(ours)
	infos, err := client.ReadDirContext(ctx, dir)
	if err != nil {
		return
	}
	owner := func(fi fs.FileInfo) (uint32, bool) {
		st, ok := fi.Sys().(*pkgsftp.FileStat)
		if !ok {
			return 0, false
		}
		return st.UID, true
	}
	i := slices.IndexFunc(infos, func(fi fs.FileInfo) bool { return fi.Name() == base })
	if i < 0 {
		return
	}
	uid, ok := owner(infos[i])
	if !ok {
		return
	}
	for _, fi := range infos {
		n := fi.Name()
		if n == ours || len(n) != len(ours) || !strings.HasPrefix(n, "."+base+".") || !strings.HasSuffix(n, ".part") || !fi.Mode().IsRegular() {
			continue
		}
		if u, ok := owner(fi); ok && u == uid {
			client.Remove(path.Join(dir, n))
		}
	}
}

// mkdirAll creates dir and its missing parents, 0700 (createModes). Unlike the
// sftp package's MkdirAll it sets the mode again for servers that ignore the
// one of the request.
func mkdirAll(client *pkgsftp.Client, dir string) error {
	st, err := client.Stat(dir)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s exists and is not a folder", dir)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("checking folder %s: %w", dir, err)
	}
	if parent := path.Dir(dir); parent != dir {
		if err := mkdirAll(client, parent); err != nil {
			return err
		}
	}
	if err := client.Mkdir(dir); err != nil {
		// Another writer may have made it meanwhile.
		if st, serr := client.Stat(dir); serr == nil && st.IsDir() {
			return nil
		}
		return fmt.Errorf("creating folder %s: %w", dir, err)
	}
	if err := client.Chmod(dir, 0o700); err != nil && !unsupported(err) {
		return fmt.Errorf("making folder %s private: %w", dir, err)
	}
	return nil
}

// removeBounded removes a temporary file, giving up (and cutting the connection)
// if the server does not answer: the leftover is hidden, and the next Save of the
// same name removes it (removeLeftovers).
func removeBounded(conn *ssh.Client, client *pkgsftp.Client, tmp string) {
	t := time.AfterFunc(grace, func() { conn.Close() })
	defer t.Stop()
	_ = client.Remove(tmp)
}

// startSFTP starts the SFTP subsystem on conn. Its errors say what the user can
// do; Conn adds the target.
func startSFTP(ctx context.Context, conn *ssh.Client, timeout time.Duration) (*pkgsftp.Client, error) {
	// Starting the subsystem knows no context or timeout of its own.
	limit := timeout
	if limit <= 0 {
		limit = grace
	}
	t := time.AfterFunc(limit, func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	client, err := newClient(conn)
	t.Stop()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("starting SFTP: %w", ctx.Err())
		}
		return nil, fmt.Errorf("the server did not start SFTP (%v): enable its sftp subsystem, or use an scp:// target", err)
	}
	return client, nil
}

// newClient starts an SFTP client on conn as pkgsftp.NewClient does, but
// with its requests passed through createModes.
func newClient(conn *ssh.Client) (*pkgsftp.Client, error) {
	s, err := conn.NewSession()
	if err != nil {
		return nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	return pkgsftp.NewClientPipe(r, &createModes{w: w})
}

// List returns the regular files directly in folder dir ("" is the root), with
// their size and modification time (whole seconds: SFTP carries no more).
// Temporaries of Saves (destination.IsTempName), folders and symbolic links are
// left out: none is a snapshot. A missing folder is an empty list.
func (d *Destination) List(ctx context.Context, dir string) ([]destination.File, error) {
	if dir != "" && !fs.ValidPath(dir) {
		return nil, fail.New(fail.Usage, "%s: cannot list %q: not a relative, clean folder name", d, dir)
	}
	what := "listing the root folder"
	if dir != "" && dir != "." {
		what = "listing " + dir
	}
	var files []destination.File
	err := d.do(ctx, what, func(client *pkgsftp.Client) error {
		infos, err := client.ReadDirContext(ctx, path.Join(d.root, dir))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, fi := range infos {
			// The server names the entries: one that is not a plain name
			// could point elsewhere once joined to dir.
			base := fi.Name()
			if !fi.Mode().IsRegular() || destination.IsTempName(base) || !fs.ValidPath(base) || strings.Contains(base, "/") || base == "." {
				continue
			}
			files = append(files, destination.File{Name: path.Join(dir, base), Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return nil, err
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
	p := path.Join(d.root, name)
	return d.do(ctx, "removing "+name, func(client *pkgsftp.Client) error {
		st, err := client.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil
		case err != nil:
			return err
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file; not removed", p)
		}
		if err := client.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
}

// do runs op over the connection, connecting first when there is none, for
// List and Remove. Conn words the errors of what it runs as a Save's ("saving
// NAME"); do words them as what op was doing instead.
func (d *Destination) do(ctx context.Context, what string, op func(client *pkgsftp.Client) error) error {
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: %s: %w", d, what, err)
	}
	var opErr error
	err := d.conn.Save(ctx, what, func(_ *ssh.Client, client *pkgsftp.Client) error {
		opErr = op(client)
		return opErr
	})
	if err == nil || opErr == nil { // success, or connecting failed: Conn's words
		return err
	}
	if ctx.Err() != nil && !errors.Is(opErr, ctx.Err()) {
		opErr = fmt.Errorf("%w (%w)", opErr, ctx.Err())
	}
	return fail.As(fail.Deliver, fmt.Errorf("%s: %s: %w", d, what, opErr))
}

// Close closes the connection, if any.
func (d *Destination) Close() error { return d.conn.Close() }

// explainFailure says what a bare SSH_FX_FAILURE on a write most often means.
// SFTP version 3, all OpenSSH speaks, has no code for a full disk or quota, so
// its server answers ENOSPC and EDQUOT with this one.
func explainFailure(err error) error {
	var se *pkgsftp.StatusError
	if errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxFailure {
		return fmt.Errorf("%w: the server gave no reason, which most often means its disk or the user's quota is full; free space there", err)
	}
	return err
}

func unsupported(err error) bool {
	var se *pkgsftp.StatusError
	return errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxOpUnsupported
}

// open is New as Kind gives it, with the SSH settings all targets share.
func open(u *url.URL, env destination.Env) (destination.Destination, error) {
	return destination.Made(New(u, sshclient.FromOptions(env.Config, env.Dial, env.Logf)))
}
