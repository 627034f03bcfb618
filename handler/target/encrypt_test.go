package target_test

import (
	"bytes"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/target"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// TestEncryptionCheck: what handle checks before queuing when encrypt-to is
// set. Targets that store files encrypt; a webhook carries only the record;
// a git repository, a webhook that would carry the configuration, and a kind
// that says nothing about encryption are refused in one line that says why
// and what to do; so are recipients age cannot use. Without encrypt-to,
// everything goes as before.
func TestEncryptionCheck(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	key := id.Recipient().String()
	r := target.NewRegistry(append(target.Kinds(), tmpKind())...)
	for _, c := range []struct {
		targets    []string
		encryptTo  []string
		includeCfg bool
		refused    string // "" when accepted
	}{
		{[]string{"file:///srv/srl", "sftp://backup@10.0.0.5/srl", "scp://backup@10.0.0.5/srl", "s3://netops/srl", "https://hooks.example.net/cfgsnap"}, []string{key}, false, ""},
		{[]string{"git@git.example.net:netops/configs.git", "https://hooks.example.net/cfgsnap", "tmp:///srv"}, nil, true, ""},
		{[]string{"file:///srv/srl", "git@git.example.net:netops/configs.git"}, []string{key}, false, "diffs and blame"},
		{[]string{"https://git.example.net/netops/configs.git"}, []string{key}, false, "drop the git target"},
		{[]string{"file:///srv/srl", "https://hooks.example.net/cfgsnap"}, []string{key}, true, "drop webhook-include-config"},
		{[]string{"tmp:///srv"}, []string{key}, false, "tmp targets cannot store encrypted snapshots"},
		{[]string{"file:///srv/srl"}, []string{"age1notakey"}, false, "not an age recipient"},
		{[]string{"file:///srv/srl"}, []string{key, "/nonexistent/team.recipients"}, false, "does not exist"},
	} {
		cfg := option.New()
		cfg.Targets, cfg.EncryptTo, cfg.WebhookIncludeConfig = c.targets, c.encryptTo, c.includeCfg
		err := r.CheckEncryption(cfg)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%v, encrypt-to %v: %v", c.targets, c.encryptTo, err)
		case c.refused != "" && (fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%v, encrypt-to %v, include-config %v: %v; want one usage line saying %q", c.targets, c.encryptTo, c.includeCfg, err, c.refused)
		}
		// Open refuses the same target, for a worker whose options changed
		// since (Open of the others may fail for want of keys: it is not
		// this test's concern).
		if c.refused == "" {
			continue
		}
		refused := false
		for _, tg := range c.targets {
			d, err := r.Open(tg, target.Env{Config: cfg, Logf: t.Logf})
			if err == nil {
				d.Close()
			}
			refused = refused || err != nil && strings.Contains(err.Error(), c.refused)
		}
		if !refused {
			t.Errorf("%v, encrypt-to %v: Open takes every target; want one refused: %s", c.targets, c.encryptTo, c.refused)
		}
	}
}

// TestOpenEncrypts: a file target opened with encrypt-to and keep stores
// each snapshot as NAME.age, which the real age CLI decrypts; its Location
// and log say NAME.age; and retention keeps the newest of them, leaving the
// snapshot stored in the clear before encryption was turned on for the user
// to delete.
func TestOpenEncrypts(t *testing.T) {
	ageCLI := testenv.NeedCommand(t, "age")
	keyFile := filepath.Join(t.TempDir(), "alice.agekey")
	if out, err := exec(testenv.NeedCommand(t, "age-keygen"), "-o", keyFile); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	pub, err := exec("age-keygen", "-y", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	recipients := filepath.Join(t.TempDir(), "team.recipients")
	if err := os.WriteFile(recipients, []byte("# netops\n"+pub), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cfg := option.New()
	for name, v := range map[string]string{"encrypt-to": recipients, "keep": "2"} {
		if err := cfg.Set(name, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	var l testenv.Logs
	d, err := target.Open("file://"+root, target.Env{Config: cfg, Logf: l.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	snap := func(ago time.Duration) (snapshot.Record, []byte) {
		rec := snapshot.Record{Host: "leaf1", User: "alice", LastChange: time.Now().Add(-ago)}
		rec.Name, _ = snapshot.Name(cfg.Name, rec)
		data := []byte(`{"system":{"name":{"host-name":"leaf1"}},"at":"` + rec.LastChange.String() + `"}`)
		rec.Size = int64(len(data))
		return rec, data
	}
	inClear, _ := snap(4 * time.Hour) // stored before encrypt-to was set
	if err := os.MkdirAll(filepath.Join(root, "leaf1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, inClear.Name), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	var saved []string
	for _, ago := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Hour} {
		rec, data := snap(ago)
		if err := d.Save(t.Context(), rec, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		loc := destination.Location(d, rec)
		if loc != "file://"+root+"/"+rec.Name+".age" {
			t.Errorf("Location = %s, want the .age file", loc)
		}
		out, err := exec(ageCLI, "-d", "-i", keyFile, filepath.Join(root, rec.Name+".age"))
		if err != nil || out != string(data) {
			t.Errorf("age -d %s: %v: %q, want %q", rec.Name, err, out, data)
		}
		saved = append(saved, rec.Name+".age")
	}
	var got []string
	for name := range desttest.ReadTree(t, root) {
		got = append(got, name)
	}
	slices.Sort(got)
	if want := []string{inClear.Name, saved[1], saved[2]}; !slices.Equal(got, want) {
		t.Errorf("the target holds %q; want %q: the newest two encrypted, and the one in the clear left alone", got, want)
	}
	log := l.String()
	if !strings.Contains(log, "saved "+saved[2]+" (") || !strings.Contains(log, "retention removed "+saved[0]+" (") {
		t.Errorf("the log does not name the .age files:\n%s", log)
	}
}

// exec runs a command and returns its standard output.
func exec(name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := osexec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}
