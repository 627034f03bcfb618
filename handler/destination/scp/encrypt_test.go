package scp_test

import (
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
)

// TestEncrypted: with option encrypt-to, an scp:// target stores NAME.age on
// a real OpenSSH server, which the real age CLI decrypts.
func TestEncrypted(t *testing.T) {
	target.RunEncrypted(t, sshd.New(t, sshd.Options{}))
}
