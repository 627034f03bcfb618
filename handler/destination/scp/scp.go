// Package scp is the destination for SSH servers that offer no SFTP:
// scp://user@host[:port]/path, spoken with the legacy SCP protocol, the server
// side of which is `scp -t`.
//
// Paths map as for sftp:// targets: /srl is absolute, /~/srl is below the login
// folder. Missing folders are created by the protocol itself (D records, 0700);
// each snapshot is sent to a hidden temporary file (0600) beside its final name and
// renamed over it by `mv -f`, so a reader never sees half a file. The temporary
// file has a random name that no one else learns before scp has created it: scp
// writes into whatever it finds at the name, through a link or into a file that
// keeps its owner and mode. All of this runs as one command line in the login
// shell, so the server needs a POSIX shell (sh, bash, dash, ksh, zsh) with scp,
// mv and rm, as every Linux server has, and quiet shell startup files: text they
// print breaks the protocol. SCP cannot sync the file to disk before the
// rename; use sftp:// where a crash of the server itself must not lose the
// newest snapshot.
package scp

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"golang.org/x/crypto/ssh"
)

// grace is how long a failed or cancelled Save waits for the server to remove its
// temporary file before the connection is cut.
const grace = 3 * time.Second

// Destination stores snapshots below a folder over SCP. It connects on the first
// Save and keeps the connection for the next ones until Close, or until a Save
// fails, after which the next Save connects afresh.
type Destination struct {
	root    string
	timeout time.Duration // the connect timeout, which also bounds the wait for scp's greeting
	conn    *sshclient.Conn[struct{}]
}

// New returns the destination for an scp:// URL. base carries the settings shared
// by all SSH targets (sshclient.FromOptions, plus Dial and Warnf); the user and host
// come from u. New does not connect.
func New(u *url.URL, base sshclient.Config) (*Destination, error) {
	t, err := sshclient.ParseTarget(u, "scp", base)
	if err != nil {
		return nil, err
	}
	// SCP keeps nothing on the connection: each Save runs a command of its own.
	conn := sshclient.NewConn[struct{}](t, grace, nil, nil)
	return &Destination{root: t.Root, timeout: t.Config.Timeout, conn: conn}, nil
}

// Kind describes scp:// targets to package target's registry, which
// refuses a remote path that can never work before anything is queued.
func Kind() destination.Kind {
	return destination.Kind{Name: "scp", Schemes: []string{"scp"}, Forms: []string{"scp://user@host[:port]/path"}, New: open, Encrypts: true,
		Check: func(u *url.URL) error { _, err := sshclient.RemotePath(u); return err }}
}

// String is the target URL.
func (d *Destination) String() string { return d.conn.String() }

// Save sends r as a temporary file and renames it over name, in one remote command.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	name, size := rec.Name, rec.Size
	return d.conn.Save(ctx, name, func(conn *ssh.Client, _ struct{}) error {
		return d.save(ctx, conn, name, size, r)
	})
}

// save runs the remote command of one Save over conn.
func (d *Destination) save(ctx context.Context, conn *ssh.Client, name string, size int64, r io.Reader) error {
	final := path.Join(d.root, name)
	dir := path.Dir(final)
	tmp := path.Base(destination.TempName(name + "." + rand.Text()))
	top, dirs := folders(dir)
	// The shell reads the temporary name from its input, as its first line: ps
	// shows command lines to every user of the server. The rm cleans up after
	// any failure, even when this connection is gone by then (scp -t fails at
	// the end of its input), so only a crash of the server leaves a leftover.
	cmd := fmt.Sprintf(`IFS= read -r t && scp -r -t -- %[1]s && mv -f -- %[2]s/"$t" %[3]s; s=$?; [ -z "$t" ] || rm -f -- %[2]s/"$t"; exit $s`,
		quote(top), quote(dir), quote(final))

	sess, err := conn.NewSession()
	if err != nil {
		return fmt.Errorf("opening a session: %w", err)
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := &capped{max: 2048}
	sess.Stderr = stderr
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("starting scp on the server: %w", err)
	}

	p := peer{w: stdin, r: bufio.NewReader(stdout)}
	if _, err := io.WriteString(stdin, tmp+"\n"); err != nil {
		return fmt.Errorf("sending to the server: %w", err)
	}
	// An account whose ForceCommand runs sftp-server waits for SFTP packets
	// forever: bound the wait for scp's greeting.
	limit := d.timeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	t := time.AfterFunc(limit, func() { sess.Close() })
	err = p.ack()
	if !t.Stop() {
		return fmt.Errorf("no SCP reply within %v: the account may be limited to SFTP (a ForceCommand in sshd_config); use an sftp:// target", limit)
	}
	if err == nil {
		err = p.send(ctx, dirs, tmp, size, r)
	}
	if err != nil {
		// Ending the input makes the server's scp stop, and the shell remove the
		// temporary file; wait for that, but not forever.
		stdin.Close()
		t := time.AfterFunc(grace, func() { sess.Close() })
		werr := sess.Wait()
		t.Stop()
		if errors.Is(err, errNoReply) {
			return fmt.Errorf("scp on the server ended without a reply (%s): check that scp is installed there, or use an sftp:// target", exitText(werr, stderr))
		}
		return err
	}
	stdin.Close()
	if err := sess.Wait(); err != nil {
		return fmt.Errorf("renaming %s to %s failed (%s)", path.Join(dir, tmp), final, exitText(err, stderr))
	}
	return nil
}

// Close closes the connection, if any.
func (d *Destination) Close() error { return d.conn.Close() }

// folders splits dir into where scp -t starts, / or the login folder, and the
// folders below it, which D records create where missing.
func folders(dir string) (top string, names []string) {
	top = "."
	if strings.HasPrefix(dir, "/") {
		top = "/"
	}
	for _, n := range strings.Split(strings.TrimPrefix(dir, "/"), "/") {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	return top, names
}

// quote makes s one single-quoted word for a POSIX shell: nothing in it expands.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var errNoReply = errors.New("no reply")

// peer speaks the source side of the SCP protocol to the server's scp -t.
type peer struct {
	w io.Writer
	r *bufio.Reader
}

// send, after the server's greeting, enters dirs (D records), sends one file (C record, data, a zero byte) and
// leaves the folders again (E records). The server acknowledges each step.
func (p peer) send(ctx context.Context, dirs []string, name string, size int64, r io.Reader) error {
	for _, d := range dirs {
		if err := p.record("D0700 0 " + d + "\n"); err != nil {
			return err
		}
	}
	if err := p.record(fmt.Sprintf("C0600 %d %s\n", size, name)); err != nil {
		return err
	}
	if err := destination.Copy(ctx, p.w, r, size); err != nil {
		return err
	}
	if err := p.record("\x00"); err != nil {
		return err
	}
	for range dirs {
		if err := p.record("E\n"); err != nil {
			return err
		}
	}
	return nil
}

func (p peer) record(s string) error {
	if _, err := io.WriteString(p.w, s); err != nil {
		return fmt.Errorf("sending to scp on the server: %w", err)
	}
	return p.ack()
}

// ack reads the server's reply: a zero byte for OK, or 1 (error) or 2 (fatal)
// followed by a message line.
func (p peer) ack() error {
	b, err := p.r.ReadByte()
	if err != nil {
		return errNoReply
	}
	if b == 0 {
		return nil
	}
	line, _ := p.r.ReadString('\n')
	line = strings.TrimSpace(printable(line, 200))
	if b == 1 || b == 2 {
		return fmt.Errorf("the server refused: %s", line)
	}
	return fmt.Errorf("the server sent %q instead of an SCP reply: either the account allows only SFTP (use an sftp:// target) or its shell startup files print text (make them quiet for non-interactive shells)",
		printable(string(b)+line, 80))
}

// exitText describes how the remote command ended, for one line of error.
func exitText(err error, stderr *capped) string {
	var parts []string
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit):
		parts = append(parts, fmt.Sprintf("exit status %d", exit.ExitStatus()))
	case err != nil:
		parts = append(parts, err.Error())
	}
	if s := stderr.String(); s != "" {
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no message"
	}
	return strings.Join(parts, ": ")
}

// capped keeps the first max bytes written to it: the server's stderr, for errors.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String is the text in one line.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(strings.Fields(printable(string(c.b), c.max)), " ")
}

// printable shortens s to n bytes and replaces control characters, so that what a
// server sends cannot forge log lines.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// open is New as Kind gives it, with the SSH settings all targets share.
func open(u *url.URL, env destination.Env) (destination.Destination, error) {
	return destination.Made(New(u, sshclient.FromOptions(env.Config, env.Dial, env.Logf)))
}
