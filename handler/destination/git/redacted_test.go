package git_test

import (
	"strings"
	"testing"
)

// A redacted snapshot says so in its commit message: the file in the
// repository is not one to restore.
func TestRedactedMessage(t *testing.T) {
	target, c, r := peers(t)[0].open(t)
	d := newDest(t, target, c, nil, t.Logf)
	config := []byte(`{"system":{"tls":{"server-profile":[{"name":"p","key":"$cfgsnap-redacted$hmac-sha256:00"}]}}}` + "\n")
	rec := record(config)
	rec.Redacted, rec.RedactedValues = true, 1
	save(t, d, rec, config)
	msg := r.git("log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, "\nRedacted values: 1, replaced by keyed hashes (option redact); not restorable as it is\n") {
		t.Errorf("message does not say the snapshot is redacted:\n%s", msg)
	}
}
