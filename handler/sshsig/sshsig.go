// Package sshsig signs with the switch's SSH key (option sign-key) in
// OpenSSH's own format, the one `ssh-keygen -Y sign` writes and `ssh-keygen -Y
// verify` and git (gpg.format ssh) check: an armored SSHSIG blob over the
// SHA-512 of the message, bound to a namespace ("git" for commits) so that a
// signature made for one use is never accepted for another. See OpenSSH's
// PROTOCOL.sshsig.
package sshsig

import (
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// maxKeyFile bounds what is read of a key file: an OpenSSH ed25519 key is
// about 400 bytes, and a wrong path must not read a large file into memory.
const maxKeyFile = 64 << 10

// Signer signs with one ed25519 key.
type Signer struct {
	key ssh.Signer
}

// FromOptions returns the signer of option sign-key, or nil when it is not
// set. Errors are one line, fail.Usage (fail.Permission for a file cfgsnap
// may not read), and never hold the key.
func FromOptions(c *option.Config) (*Signer, error) {
	if c.SignKey == "" {
		return nil, nil
	}
	return Load(c.SignKey)
}

// Load reads an unencrypted ed25519 private key, as ssh-keygen -t ed25519
// writes it with an empty passphrase. A passphrase cannot be typed on a
// switch, and ed25519 is what every OpenSSH and git that check SSH signatures
// take.
func Load(file string) (*Signer, error) {
	const how = "make one with ssh-keygen -t ed25519 -N '' -C leaf1@cfgsnap -f FILE"
	f, err := os.Open(file)
	if err == nil {
		defer f.Close()
		var b []byte
		b, err = io.ReadAll(io.LimitReader(f, maxKeyFile+1))
		if err == nil && len(b) > maxKeyFile {
			return nil, fail.New(fail.Usage, "option sign-key %s is larger than a private key: name the switch's ed25519 private key file (%s)", file, how)
		}
		if err == nil {
			return parse(file, b, how)
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // its text would repeat the file's name
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail.New(fail.Usage, "cannot read option sign-key %s: it does not exist: fix the option or %s", file, how)
	case errors.Is(err, fs.ErrPermission):
		return nil, fail.New(fail.Permission, "cannot read option sign-key %s: %v: run cfgsnap with sudo or make the file readable by its user", file, err)
	}
	return nil, fail.New(fail.Usage, "cannot read option sign-key %s: %v: fix the option", file, err)
}

func parse(file string, b []byte, how string) (*Signer, error) {
	key, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fail.New(fail.Usage, "option sign-key %s is protected by a passphrase, which nobody can type on a switch: remove it with ssh-keygen -p -N '' -f FILE, or %s", file, how)
	case err != nil:
		// ssh's message says what it could not parse, never the content.
		return nil, fail.New(fail.Usage, "option sign-key %s is not an OpenSSH private key (%v): %s", file, err, how)
	case key.PublicKey().Type() != ssh.KeyAlgoED25519:
		return nil, fail.New(fail.Usage, "option sign-key %s is a %s key, not ed25519: %s", file, key.PublicKey().Type(), how)
	}
	return &Signer{key: key}, nil
}

// AuthorizedKey is the public key as an allowed-signers or authorized_keys
// line has it: "ssh-ed25519 AAAA...", without a newline.
func (s *Signer) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.key.PublicKey())))
}

// Sign returns the armored signature of message in namespace, as
// `ssh-keygen -Y sign -n NAMESPACE` prints it: "-----BEGIN SSH SIGNATURE-----",
// base64 in lines of 70, "-----END SSH SIGNATURE-----", each line ending in
// a newline.
func (s *Signer) Sign(namespace string, message []byte) (string, error) {
	h := sha512.Sum512(message)
	// What is signed: the magic, then the fields that bind the signature to
	// its namespace and hash algorithm, then the message's hash.
	signed := append([]byte(magic), ssh.Marshal(struct {
		Namespace, Reserved, Hash string
		Digest                    []byte
	}{namespace, "", hashAlg, h[:]})...)
	sig, err := s.key.Sign(nil, signed) // ed25519 signs deterministically
	if err != nil {
		return "", err
	}
	blob := append([]byte(magic), ssh.Marshal(struct {
		Version   uint32
		PublicKey []byte
		Namespace string
		Reserved  string
		Hash      string
		Signature []byte
	}{1, s.key.PublicKey().Marshal(), namespace, "", hashAlg, ssh.Marshal(sig)})...)
	enc := base64.StdEncoding.EncodeToString(blob)
	var b strings.Builder
	b.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(enc) > 70 {
		b.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	b.WriteString(enc + "\n-----END SSH SIGNATURE-----\n")
	return b.String(), nil
}

const (
	magic   = "SSHSIG"
	hashAlg = "sha512"
)
