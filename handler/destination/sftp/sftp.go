// Package sftp is the destination for an SSH server's SFTP subsystem:
// sftp://user@host[:port]/path.
//
// The path is absolute (sftp://backup@10.0.0.5/srl is /srl); /~/ starts it in the
// login folder (sftp://backup@10.0.0.5/~/srl), and no path at all is the login
// folder itself. Each snapshot is written to a hidden temporary file beside its
// final name, synced (fsync@openssh.com), and renamed over the final name
// (posix-rename@openssh.com), so a reader never sees half a file. Files are
// created 0600 and folders 0700, since a configuration holds password hashes and keys.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	pkgsftp "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// grace is how long a cancelled Save may still take to remove its temporary
// file before the connection is cut.
const grace = 3 * time.Second

// Destination stores snapshots below a folder on an SFTP server. It connects on
// the first Save and keeps the connection for the next ones until Close, or until
// a Save fails, after which the next Save connects afresh.
type Destination struct {
	url    string
	root   string
	ssh    sshclient.Config
	conn   *ssh.Client
	client *pkgsftp.Client
}

// New returns the destination for an sftp:// URL. base carries the settings
// shared by all SSH targets (sshclient.FromOptions, plus Dial and Warnf); the
// user and host come from u. New does not connect.
func New(u *url.URL, base sshclient.Config) (*Destination, error) {
	if u.Scheme != "sftp" {
		return nil, fail.New(fail.Usage, "target %s is not an sftp:// URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fail.New(fail.Usage, "target %s: an sftp target takes no ?query or #fragment", u.Redacted())
	}
	c, err := base.ForURL(u)
	if err != nil {
		return nil, err
	}
	root, err := sshclient.RemotePath(u)
	if err != nil {
		return nil, err
	}
	return &Destination{url: u.Redacted(), root: root, ssh: c}, nil
}

// String is the target URL.
func (d *Destination) String() string { return d.url }

// Save streams r to a temporary file, syncs it and renames it over name.
func (d *Destination) Save(ctx context.Context, name string, size int64, r io.Reader) (err error) {
	if err := ctx.Err(); err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: %w", d, name, err)
	}
	if err := d.connect(ctx); err != nil {
		return err
	}
	defer cutAfterGrace(ctx, d.conn)()
	defer func() {
		if err != nil {
			// The connection may be broken; a fresh one costs little next time.
			d.disconnect()
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			err = fail.As(fail.Deliver, fmt.Errorf("%s: saving %s: %w", d, name, err))
		}
	}()

	final := path.Join(d.root, name)
	tmp := path.Join(d.root, destination.TempName(name))
	if err := d.mkdirAll(path.Dir(final)); err != nil {
		return err
	}
	f, err := d.client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			d.removeBounded(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && !unsupported(err) {
		return fmt.Errorf("making %s private: %w", tmp, err)
	}
	if err := destination.Copy(ctx, f, r, size); err != nil {
		return err
	}
	// Without the extension (non-OpenSSH servers) the rename still makes the file
	// appear whole; only a crash of the server itself could then lose it.
	if err := f.Sync(); err != nil && !unsupported(err) {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := d.client.PosixRename(tmp, final); err != nil {
		if unsupported(err) {
			return fmt.Errorf("renaming %s over %s: the server lacks posix-rename@openssh.com, which an atomic replace needs; use an scp:// target", tmp, final)
		}
		return fmt.Errorf("renaming %s to %s: %w", tmp, final, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents, 0700. Unlike the sftp package's
// MkdirAll it sets the mode: servers create folders world-readable.
func (d *Destination) mkdirAll(dir string) error {
	st, err := d.client.Stat(dir)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s exists and is not a folder", dir)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("checking folder %s: %w", dir, err)
	}
	if parent := path.Dir(dir); parent != dir {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := d.client.Mkdir(dir); err != nil {
		// Another writer may have made it meanwhile.
		if st, serr := d.client.Stat(dir); serr == nil && st.IsDir() {
			return nil
		}
		return fmt.Errorf("creating folder %s: %w", dir, err)
	}
	if err := d.client.Chmod(dir, 0o700); err != nil && !unsupported(err) {
		return fmt.Errorf("making folder %s private: %w", dir, err)
	}
	return nil
}

// removeBounded removes a temporary file, giving up (and cutting the connection)
// if the server does not answer: the leftover is hidden, and the next try of the
// same name overwrites it.
func (d *Destination) removeBounded(tmp string) {
	conn := d.conn
	t := time.AfterFunc(grace, func() { conn.Close() })
	defer t.Stop()
	_ = d.client.Remove(tmp)
}

func (d *Destination) connect(ctx context.Context) error {
	if d.client != nil {
		return nil
	}
	conn, err := sshclient.Dial(ctx, d.ssh)
	if err != nil {
		return fail.As(fail.Deliver, fmt.Errorf("%s: %w", d, err))
	}
	// Starting the subsystem knows no context or timeout of its own.
	limit := d.ssh.Timeout
	if limit <= 0 {
		limit = grace
	}
	t := time.AfterFunc(limit, func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	client, err := pkgsftp.NewClient(conn)
	t.Stop()
	stop()
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return fail.New(fail.Deliver, "%s: starting SFTP: %w", d, ctx.Err())
		}
		return fail.New(fail.Deliver, "%s: the server did not start SFTP (%v): enable its sftp subsystem, or use an scp:// target", d, err)
	}
	d.conn, d.client = conn, client
	return nil
}

func (d *Destination) disconnect() {
	if d.client != nil {
		d.client.Close()
		d.conn.Close()
	}
	d.client, d.conn = nil, nil
}

// Close closes the connection, if any.
func (d *Destination) Close() error {
	d.disconnect()
	return nil
}

// cutAfterGrace closes conn if ctx ends and the caller has not returned within
// grace: a Save stuck on an unresponsive server then fails instead of hanging,
// while one that notices the cancellation in time can still clean up. Call the
// returned function when done.
func cutAfterGrace(ctx context.Context, conn *ssh.Client) func() {
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
			conn.Close()
		}
	}()
	return func() { close(done) }
}

func unsupported(err error) bool {
	var se *pkgsftp.StatusError
	return errors.As(err, &se) && se.FxCode() == pkgsftp.ErrSSHFxOpUnsupported
}
