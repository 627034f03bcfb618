package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// sha is what a verifier computes over a record file as it landed.
func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkLink asserts that next follows prev: the next sequence number, and
// prev's canonical bytes hashed in next's Prev, and that Canonical is the
// record's own JSON (the bytes a verifier parses).
func checkLink(t *testing.T, prev, next Entry) {
	t.Helper()
	if next.Record.Seq != prev.Record.Seq+1 || next.Record.Prev != sha(prev.Canonical) || next.Record.ChainRestarted {
		t.Errorf("%s after %s: seq %d prev %q restarted %v; want seq %d prev %s",
			next.Record.Name, prev.Record.Name, next.Record.Seq, next.Record.Prev, next.Record.ChainRestarted, prev.Record.Seq+1, sha(prev.Canonical))
	}
	var r snapshot.Record
	if err := json.Unmarshal(next.Canonical, &r); err != nil || r.Prev != next.Record.Prev || r.Seq != next.Record.Seq || r.SHA256 != next.Record.SHA256 {
		t.Errorf("canonical bytes of %s: %s (%v); want the record with its seq, prev and sha256", next.Record.Name, next.Canonical, err)
	}
}

func TestChainSurvivesDeliveryAndReopening(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	a := commit(t, s, "a", "config one", "file:///a")
	if a.Record.Seq != 1 || a.Record.Prev != "" || !a.Record.ChainRestarted {
		t.Errorf("first record: seq %d prev %q restarted %v; want seq 1, no prev, chain_restarted", a.Record.Seq, a.Record.Prev, a.Record.ChainRestarted)
	}
	// Delivery adds to Stored; the chained bytes must not change with it.
	if err := s.Delivered(a, "file:///a", "/backups/a"); err != nil {
		t.Fatal(err)
	}
	b := commit(t, s, "b", "config two", "file:///a", "sftp://b")
	checkLink(t, a, b)
	if err := s.Delivered(b, "file:///a", "/backups/b"); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, s); len(got) != 1 || string(got[0].Canonical) != string(b.Canonical) {
		t.Fatalf("pending after a delivery: %+v; want b with its canonical bytes unchanged", got)
	}
	s.Delivered(b, "sftp://b", "")
	// A reboot: a new process opens the spool, nothing of a or b left in it.
	s2, _ := openSpool(t, dir, 10, 1<<20)
	c := commit(t, s2, "c", "config three", "file:///a")
	checkLink(t, b, c)
}

func TestChainRestartsWhenLost(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	a := commit(t, s, "a", "config one", "file:///a")
	s.Delivered(a, "file:///a", "")
	if err := os.Remove(filepath.Join(dir, "chain")); err != nil {
		t.Fatal(err)
	}
	b := commit(t, s, "b", "config two", "file:///a")
	if b.Record.Seq != 1 || b.Record.Prev != "" || !b.Record.ChainRestarted {
		t.Errorf("after the chain was lost: seq %d prev %q restarted %v; want seq 1, no prev, chain_restarted", b.Record.Seq, b.Record.Prev, b.Record.ChainRestarted)
	}
	c := commit(t, s, "c", "config three", "file:///a")
	checkLink(t, b, c)
}

// A kill after an entry's .meta but before the chain file: the entry still
// spooled is the head, so the chain neither forks nor restarts.
func TestChainHeadFromSpooledEntry(t *testing.T) {
	dir := t.TempDir()
	s, _ := openSpool(t, dir, 10, 1<<20)
	a := commit(t, s, "a", "config one", "file:///a")
	b := commit(t, s, "b", "config two", "file:///a")
	old, _ := json.Marshal(chainHead{Seq: a.Record.Seq, Hash: sha(a.Canonical)})
	if err := os.WriteFile(filepath.Join(dir, "chain"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, _ := openSpool(t, dir, 10, 1<<20)
	c := commit(t, s2, "c", "config three", "file:///a")
	checkLink(t, b, c)
	os.Remove(filepath.Join(dir, "chain")) // also when there is no chain file at all
	d := commit(t, s2, "d", "config four", "file:///a")
	checkLink(t, c, d)
}

// A damaged or unreadable chain file costs no snapshot: the chain restarts,
// openly, and goes on from the entry still spooled.
func TestChainRestartsWhenDamaged(t *testing.T) {
	for name, damage := range map[string]func(p string) error{
		"cut short": func(p string) error { return os.WriteFile(p, []byte(`{"seq":3,"ha`), 0o600) },
		"unreadable": func(p string) error { // a folder: reading fails, and so does replacing it
			os.Remove(p)
			return os.Mkdir(p, 0o700)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, logs := openSpool(t, dir, 10, 1<<20)
			a := commit(t, s, "a", "config one", "file:///a")
			s.Delivered(a, "file:///a", "")
			if err := damage(filepath.Join(dir, "chain")); err != nil {
				t.Fatal(err)
			}
			b := commit(t, s, "b", "config two", "file:///a")
			if b.Record.Seq != 1 || b.Record.Prev != "" || !b.Record.ChainRestarted {
				t.Errorf("after the chain file was damaged: seq %d prev %q restarted %v; want seq 1, no prev, chain_restarted", b.Record.Seq, b.Record.Prev, b.Record.ChainRestarted)
			}
			if !strings.Contains(logs.String(), "chain of records restarts") {
				t.Errorf("nothing logged about the damaged chain file:\n%s", logs.String())
			}
			c := commit(t, s, "c", "config three", "file:///a")
			checkLink(t, b, c)
		})
	}
}
