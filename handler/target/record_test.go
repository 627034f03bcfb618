package target_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/spool"
	"github.com/cfgsnap/cfgsnap/handler/sshsig"
	"github.com/cfgsnap/cfgsnap/handler/target"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestSignedRecords: a file target with option sign-key stores beside each
// snapshot NAME its record NAME.rec.json and NAME.sig. The real ssh-keygen -Y
// verify, with the switch's key in an allowed-signers file, accepts each
// record and refuses it changed; each record's prev is the sha256 of the
// previous .rec.json as it landed; and retention (keep 2) removes a
// snapshot's record and signature with it, counting neither as a snapshot.
// Over file:// and to a real OpenSSH sftp-server.
func TestSignedRecords(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		root := t.TempDir()
		signedRecords(t, "file://"+root, root, nil)
	})
	t.Run("sftp", func(t *testing.T) {
		s := sshd.New(t, sshd.Options{})
		root := filepath.Join(t.TempDir(), "backups")
		signedRecords(t, s.URL("sftp", root), root, map[string]string{"identity": s.ClientKey(), "known-hosts": s.KnownHosts()})
	})
}

func signedRecords(t *testing.T, tg, root string, opts map[string]string) {
	keygen := testenv.NeedCommand(t, "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "sign.key")
	if out, err := exec(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "leaf1@cfgsnap", "-f", key); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	signer, err := sshsig.Load(key)
	if err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(dir, "allowed_signers")
	os.WriteFile(allowed, []byte("leaf1@cfgsnap "+signer.AuthorizedKey()+"\n"), 0o600)

	cfg := option.New()
	if opts == nil {
		opts = map[string]string{}
	}
	opts["sign-key"], opts["keep"] = key, "2"
	for name, v := range opts {
		if err := cfg.Set(name, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := target.Open(tg, target.Env{Config: cfg, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The records are chained as the worker chains them: by the spool.
	sp, err := spool.Open(filepath.Join(dir, "spool"), 10, 1<<20, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for ago := 3; ago > 0; ago-- {
		at := time.Now().Add(-time.Duration(ago) * time.Hour).In(time.FixedZone("CEST", 2*3600))
		rec := snapshot.Record{Host: "leaf1", User: "alice", LastChange: at, Taken: at.Add(time.Second),
			Commits: []snapshot.Commit{{ID: 7, Username: "alice", Comment: "vlan <10> & \"x\"", Started: at}},
			Changes: &snapshot.Changes{Changed: 1, Paths: []string{"~/interface[name=ethernet-1/1]/description"}}}
		rec.Name, _ = snapshot.Name(cfg.Name, rec)
		data := []byte(`{"system":{"name":{"host-name":"leaf1"}},"n":` + string(rune('0'+ago)) + `}`)
		w, err := sp.Create()
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		e, err := w.Commit(rec, []string{tg, "sftp://elsewhere/srl"})
		if err != nil {
			t.Fatal(err)
		}
		// The worker delivers the record as the spool reads it back, after
		// another target's delivery added to its stored list.
		if err := sp.Delivered(e, "sftp://elsewhere/srl", "sftp://elsewhere/srl/"+rec.Name); err != nil {
			t.Fatal(err)
		}
		es, err := sp.Pending()
		if err != nil || len(es) == 0 || es[len(es)-1].ID != e.ID || len(es[len(es)-1].Record.Stored) != 1 {
			t.Fatalf("pending: %+v, %v; want %s last, with a stored location", es, err, e.ID)
		}
		if err := d.Save(t.Context(), es[len(es)-1].Record, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		landed, _ := os.ReadFile(filepath.Join(root, rec.Name+".rec.json"))
		if !bytes.Equal(landed, e.Canonical) {
			t.Errorf("%s.rec.json holds %s; want the record as chained: %s", rec.Name, landed, e.Canonical)
		}
		names = append(names, rec.Name)
	}

	verify := func(name string, record []byte) error {
		cmd := osexec.Command(keygen, "-Y", "verify", "-f", allowed, "-I", "leaf1@cfgsnap", "-n", "cfgsnap", "-s", filepath.Join(root, name+".sig"))
		cmd.Stdin = bytes.NewReader(record)
		out, err := cmd.CombinedOutput()
		t.Logf("ssh-keygen -Y verify %s.sig: %s", name, bytes.TrimSpace(out))
		return err
	}
	var prev []byte
	for _, name := range names[1:] {
		b, err := os.ReadFile(filepath.Join(root, name+".rec.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(name, b); err != nil {
			t.Errorf("ssh-keygen refused the record of %s: %v", name, err)
		}
		changed := bytes.Replace(b, []byte(`"user":"alice"`), []byte(`"user":"mallory"`), 1)
		if bytes.Equal(changed, b) || verify(name, changed) == nil {
			t.Errorf("ssh-keygen accepted a changed record of %s", name)
		}
		var rec snapshot.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if prev != nil {
			sum := sha256.Sum256(prev)
			if rec.Prev != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: prev %q, want the sha256 of the previous .rec.json as landed, %x", name, rec.Prev, sum)
			}
		}
		if len(rec.Stored) > 0 {
			t.Errorf("%s.rec.json holds stored %q: it changes as the snapshot is delivered, so cannot be signed", name, rec.Stored)
		}
		prev = b
	}

	var got []string
	for name := range desttest.ReadTree(t, root) {
		got = append(got, name)
	}
	slices.Sort(got)
	var want []string
	for _, n := range names[1:] {
		want = append(want, n, n+".rec.json", n+".sig")
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the target holds %q; want the newest two snapshots (keep 2), each with its record and signature", got)
	}
}
