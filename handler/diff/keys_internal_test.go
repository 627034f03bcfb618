package diff

import (
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The embedded table is the shared fixture, byte for byte: a later copy of
// Nokia's keys lands in both or the test says which to update.
func TestEmbeddedTableIsTheFixture(t *testing.T) {
	want := string(testenv.ReadFixture(t, "list-keys.tsv"))
	if listKeysTSV != want {
		t.Error("handler/diff/listkeys.tsv differs from ../shared/fixtures/srlinux/list-keys.tsv: copy the fixture over it")
	}
	lines := 0
	for l := range strings.Lines(want) {
		if !strings.HasPrefix(l, "#") {
			lines++
		}
	}
	if got := len(srlinux().lists); got != lines {
		t.Errorf("the embedded table parses to %d lists, want one per line: %d", got, lines)
	}
}
