package s3

import (
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
)

// TestEncrypted: with option encrypt-to, an s3:// target stores the object
// NAME.age on a real S3 server (versitygw), which the real age CLI decrypts.
// The server checks each upload's SHA-256, so it must get the ciphertext's,
// not the record's: in a trailer under TLS, by chunk signatures without.
func TestEncrypted(t *testing.T)    { encrypted(t, false) }
func TestEncryptedTLS(t *testing.T) { encrypted(t, true) }

func encrypted(t *testing.T, secure bool) {
	g := sharedGateway(t, secure)
	desttest.RunEncrypted(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		d, b := fresh(t, g)
		return d, func() map[string][]byte { return g.stored(t, b, prefix) }
	})
}
