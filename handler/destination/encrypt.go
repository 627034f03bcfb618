package destination

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// EncryptedSuffix ends the name of every snapshot that WithEncryption stores.
const EncryptedSuffix = ".age"

// The age format (age-encryption.org/v1): after the header and a 16-byte
// nonce, the payload is cut into chunks of 64 KiB, each sealed with a 16-byte
// Poly1305 tag; the last chunk may be full, and an empty payload is one empty
// chunk.
const (
	ageChunk = 64 << 10
	ageTag   = 16
)

// Recipients are the keys that option encrypt-to names: whoever holds the
// private key of any one of them decrypts the snapshots. A Recipients is
// immutable.
type Recipients struct {
	list []age.Recipient
	// header is the bytes an encrypted file holds before its first chunk
	// (header and nonce): the same for every file encrypted to list (each
	// kind of recipient wraps the file key in a stanza of fixed length), so
	// the encrypted size is known before encrypting. Were it ever not, the
	// destination would refuse the save as it refuses a short one, and store
	// nothing.
	header int64
}

// ReadRecipients reads option encrypt-to's values as age reads them: each is
// a recipient (age1..., or an SSH public key, ssh-ed25519 or ssh-rsa, as in
// authorized_keys) or the path of a file of them (option.RecipientFile), one a
// line, with blank lines and # comments, as age -R reads. It reads every file
// and refuses, in one fail.Usage line (fail.Permission for a file it may not
// read), anything age could not encrypt to, so that handle refuses bad
// recipients before a snapshot is queued. Its errors never quote a line of a
// file, which may be something else than its owner meant to show (a private
// key given by mistake), nor a private key given inline.
func ReadRecipients(values []string) (*Recipients, error) {
	rs := &Recipients{}
	for _, v := range values {
		if p, ok := option.RecipientFile(v); ok {
			fromFile, err := readRecipientsFile(p)
			if err != nil {
				return nil, err
			}
			rs.list = append(rs.list, fromFile...)
			continue
		}
		r, err := parseRecipient(v)
		if err != nil {
			return nil, fail.New(fail.Usage, "option encrypt-to: %s", err)
		}
		rs.list = append(rs.list, r)
	}
	if len(rs.list) == 0 {
		return nil, fail.New(fail.Usage, "option encrypt-to names no recipient: give an age1... key, an ssh-ed25519 or ssh-rsa public key, or a file of them")
	}
	// Encrypting nothing measures the header, and refuses now, rather than
	// at every delivery, recipients that age cannot mix (post-quantum age1pq1
	// keys with others).
	n := &counter{}
	w, err := age.Encrypt(n, rs.list...)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fail.New(fail.Usage, "option encrypt-to: these recipients cannot be used together: %v", err)
	}
	rs.header = n.n - ageTag
	return rs, nil
}

// parseRecipient reads one recipient as age's -r does, without its plugins
// (which would run other programs as root).
func parseRecipient(s string) (age.Recipient, error) {
	switch {
	case strings.HasPrefix(s, "AGE-SECRET-KEY-") || strings.HasPrefix(s, "AGE-PLUGIN-") || strings.Contains(s, "PRIVATE KEY"):
		return nil, errors.New("a private key, which must never leave its owner: give its public key (age-keygen -y, or the .pub file of an SSH key)")
	case strings.ContainsAny(s, "\r\n"):
		return nil, fmt.Errorf("%q holds several lines: give one recipient a value, or the absolute path of a file of them", clip(s))
	case strings.HasPrefix(s, "age1"):
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil || len(rs) != 1 {
			return nil, fmt.Errorf("%q is not an age recipient that cfgsnap can encrypt to (an X25519 age1... or post-quantum age1pq1... key; no plugins)", clip(s))
		}
		return rs[0], nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	switch {
	case err != nil && strings.HasPrefix(s, "ssh-"):
		return nil, fmt.Errorf("%q is not an SSH public key as authorized_keys holds one", clip(s))
	case err != nil:
		return nil, fmt.Errorf("%q is neither an age recipient (age1...), an SSH public key (ssh-ed25519 ..., ssh-rsa ...), nor the absolute path of a file of them", clip(s))
	case pk.Type() != ssh.KeyAlgoED25519 && pk.Type() != ssh.KeyAlgoRSA:
		return nil, fmt.Errorf("%s key %q: age encrypts only to ssh-ed25519 and ssh-rsa keys; give one of those, or an age key", pk.Type(), clip(s))
	}
	r, err := agessh.ParseRecipient(s)
	if err != nil {
		return nil, fmt.Errorf("SSH key %q: %v", clip(s), unquoted(err))
	}
	return r, nil
}

// readRecipientsFile reads a file of recipients as age -R does, but refuses
// the SSH keys of other types that age skips: a team member whose key is
// skipped could not decrypt, and learns it only when it is too late.
func readRecipientsFile(p string) ([]age.Recipient, error) {
	f, err := os.Open(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fail.New(fail.Usage, "cannot read option encrypt-to's file %s: it does not exist: fix the option or create the file", p)
		case errors.Is(err, fs.ErrPermission):
			return nil, fail.New(fail.Permission, "cannot read option encrypt-to's file %s: %v: run cfgsnap with sudo or make the file readable by its user", p, err)
		}
		return nil, fail.New(fail.Usage, "cannot read option encrypt-to's file %s: %v: fix the option", p, err)
	}
	defer f.Close()
	const limit = 16 << 20 // age's own limit
	lr := &io.LimitedReader{R: f, N: limit + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 8<<10), 64<<10)
	var out []age.Recipient
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fail.New(fail.Usage, "option encrypt-to's file %s, line %d: not UTF-8 text: a file of recipients holds one public key a line", p, n)
		}
		r, err := parseRecipient(line)
		if err != nil {
			return nil, fail.New(fail.Usage, "option encrypt-to's file %s, line %d: %s", p, n, withoutValue(line))
		}
		out = append(out, r)
	}
	switch {
	case sc.Err() != nil:
		return nil, fail.New(fail.Usage, "reading option encrypt-to's file %s: %v: a file of recipients holds one public key a line", p, sc.Err())
	case lr.N == 0:
		return nil, fail.New(fail.Usage, "option encrypt-to's file %s is longer than 16 MiB: a file of recipients holds one public key a line", p)
	case len(out) == 0:
		return nil, fail.New(fail.Usage, "option encrypt-to's file %s holds no recipient: put one public key a line in it", p)
	}
	return out, nil
}

// withoutValue says what is wrong with line, a line of a file of recipients
// that parseRecipient refused, without quoting it.
func withoutValue(line string) string {
	switch {
	case strings.HasPrefix(line, "AGE-") || strings.Contains(line, "PRIVATE KEY"):
		return "a private key, which must never leave its owner: put public keys in the file (age-keygen -y, or the .pub file of an SSH key)"
	case strings.HasPrefix(line, "age1"):
		return "not an age recipient that cfgsnap can encrypt to (an X25519 age1... or post-quantum age1pq1... key; no plugins)"
	}
	if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
		return "an " + pk.Type() + " key: age encrypts only to ssh-ed25519 and ssh-rsa keys; use one of those, or an age key"
	}
	if strings.HasPrefix(line, "ssh-") {
		return "not an SSH public key as authorized_keys holds one"
	}
	return "not a recipient: want an age1... key or an ssh-ed25519 or ssh-rsa public key"
}

// clip keeps an error line short however long the value it quotes.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// unquoted is err's text without the key that agessh quotes in it.
func unquoted(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// Size is the size of a snapshot of size plaintext bytes once encrypted to rs.
func (rs *Recipients) Size(plaintext int64) int64 {
	chunks := max(1, (plaintext+ageChunk-1)/ageChunk)
	return rs.header + plaintext + chunks*ageTag
}

// Encrypt returns a reader of plaintext encrypted to rs, streamed: it holds
// one chunk (64 KiB) at a time, whatever the size.
func (rs *Recipients) Encrypt(plaintext io.Reader) (io.Reader, error) {
	return age.EncryptReader(plaintext, rs.list...)
}

// counter counts the bytes written to it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// A Suffixer is a Destination that stores each snapshot under its record's
// name with a suffix added: WithEncryption adds EncryptedSuffix. Retention
// and Location find it through wrappers.
type Suffixer interface {
	NameSuffix() string
}

// StoredName is the name under which d, or a wrapper it holds, stores the
// snapshot called name: name itself, or name with a Suffixer's suffix.
func StoredName(d Destination, name string) string {
	if s, ok := As[Suffixer](d); ok {
		return name + s.NameSuffix()
	}
	return name
}

// WithEncryption has d store each snapshot encrypted with age to rs, under its
// name with EncryptedSuffix added: whoever holds a private key of rs decrypts
// it (age -d -i KEY). It is for destinations that keep each snapshot as a
// file of its own (file, sftp, scp, s3), and works for all of them alike: d
// gets the encrypted bytes as a stream of their exact size, never the whole
// snapshot in memory, and stores them atomically as it stores any snapshot,
// so a killed run leaves no part of a .age file under its name.
//
// The record d gets has the encrypted name and size, and no sha256: d would
// take it for the digest of what it stores (S3 has the server check it), and
// the ciphertext's is unknown before it is sent. The record that cfgsnap
// keeps, reports and announces is unchanged, with the plaintext's size and
// sha256.
//
// Wrap it inside WithRetry: a retry sends the snapshot again, and it is
// encrypted anew, with a new file key.
func WithEncryption(d Destination, rs *Recipients) Destination {
	return &encrypting{Destination: d, rs: rs}
}

type encrypting struct {
	Destination
	rs *Recipients
}

// NameSuffix is EncryptedSuffix: the encrypted snapshot is NAME.age.
func (e *encrypting) NameSuffix() string { return EncryptedSuffix }

// Unwrap returns the destination inside, for its optional interfaces.
func (e *encrypting) Unwrap() Destination { return e.Destination }

// Save stores the snapshot rec describes, read from data, encrypted.
func (e *encrypting) Save(ctx context.Context, rec snapshot.Record, data io.Reader) error {
	sealed := rec
	sealed.Name += EncryptedSuffix
	sealed.Size = e.rs.Size(rec.Size)
	sealed.SHA256 = ""
	r, err := e.rs.Encrypt(data)
	if err != nil { // ReadRecipients encrypted to rs already
		return fail.As(fail.Internal, fmt.Errorf("%s: encrypting %s: %w", e, rec.Name, err))
	}
	// A data that yields other than rec.Size bytes yields other than
	// sealed.Size encrypted ones, which d refuses as it refuses any.
	return e.Destination.Save(ctx, sealed, r)
}
