package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// cli runs cfgsnap's command line in-process and returns what a user sees.
func cli(t *testing.T, args ...string) (stdout string, code fail.Kind, errLine string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, strings.NewReader(""), &out, &errb)
	if err != nil {
		errLine = oneLine(err.Error())
	}
	return out.String(), fail.KindOf(err), errLine
}

func hexEvent(s string) string { return hex.EncodeToString([]byte(s)) }

// eventWith is the hex of an event of lastChange with the instance options opts.
func eventWith(opts map[string]any) string {
	if opts == nil {
		opts = map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"paths": []json.RawMessage{json.RawMessage(lastChange)}, "options": opts})
	return hexEvent(string(b))
}

const lastChange = `{"path":"system configuration last-change","value":"2025-09-20T11:02:08.456Z"}`

// TestExitCodes checks each documented failure: its exit code, and one line that
// names the cause and the fix.
func TestExitCodes(t *testing.T) {
	spool := "--spool-dir=" + t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "running.json")
	os.WriteFile(cfgFile, []byte(`{"system":{"name":{"host-name":"leaf1"}}}`), 0o600)
	src := []string{"--source=file:" + cfgFile, "--sr-cli=/nonexistent", "--netns=none", spool}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command(testenv.NeedCommand(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}

	for _, c := range []struct {
		name string
		args []string
		code fail.Kind
		says string
	}{
		{"no command", nil, fail.Usage, "no command"},
		{"unknown command", []string{"backup"}, fail.Usage, `unknown command "backup"`},
		{"unknown flag", []string{"snapshot", "--tagret=x"}, fail.Usage, "tagret"},
		{"bad option value", []string{"snapshot", "--commit-wait=soon"}, fail.Usage, "want seconds"},
		{"not hex", []string{"handle", "7b22$(reboot)"}, fail.Event, "not the hex"},
		{"malformed event", []string{"handle", hexEvent(`{"paths":[`)}, fail.Event, "not valid JSON"},
		{"event without last-change", []string{"handle", hexEvent(`{"paths":[]}`)}, fail.Event, "last-change"},
		{"missing target", []string{"handle", spool, hexEvent(`{"paths":[` + lastChange + `]}`)}, fail.Usage, "no target"},
		{"unknown target", append([]string{"snapshot", "--target=rsync://h/x"}, src...), fail.Usage, "unknown scheme"},
		{"unreachable server", append([]string{"snapshot", "--target=sftp://u@127.0.0.1:1/x", "--identity=" + key}, src...), fail.Deliver, "stays spooled"},
		{"missing key", append([]string{"snapshot", "--target=sftp://u@127.0.0.1:1/x", "--identity=" + filepath.Join(t.TempDir(), "missing")}, src...), fail.Auth, "no SSH private key found"},
		{"unreadable source", []string{"snapshot", "--target=file:///tmp/x", "--source=file:/nonexistent", "--sr-cli=/nonexistent", "--netns=none", spool}, fail.Source, "/nonexistent"},
		{"unknown help topic", []string{"help", "colour"}, fail.Usage, `no option "colour"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, code, line := cli(t, c.args...)
			if code != c.code || !strings.Contains(line, c.says) {
				t.Errorf("exit %d %q, want exit %d saying %q", code, line, c.code, c.says)
			}
			if strings.Contains(line, "goroutine") || len(line) > 600 {
				t.Errorf("error is not one short line: %q", line)
			}
		})
	}
}

// TestHostKeyAndKeyErrors runs against a real sshd: a server whose key is not
// known, and a key file that is not a key, are refused with exit 6.
func TestHostKeyAndKeyErrors(t *testing.T) {
	srv := sshd.New(t, sshd.Options{})
	cfgFile := filepath.Join(t.TempDir(), "running.json")
	os.WriteFile(cfgFile, []byte(`{}`), 0o600)
	common := []string{"snapshot", "--target=" + srv.URL("sftp", "/tmp/x"), "--source=file:" + cfgFile,
		"--sr-cli=/nonexistent", "--netns=none", "--spool-dir=" + t.TempDir()}
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	notKey := filepath.Join(t.TempDir(), "id")
	os.WriteFile(notKey, []byte("hello"), 0o600)

	_, code, line := cli(t, append(common, "--identity="+srv.ClientKey(), "--known-hosts="+empty)...)
	if code != fail.Auth || !strings.Contains(line, "SHA256:") || !strings.Contains(line, "ssh-keyscan") {
		t.Errorf("unknown host key: exit %d %q", code, line)
	}
	_, code, line = cli(t, append(common, "--identity="+notKey, "--known-hosts="+srv.KnownHosts())...)
	if code != fail.Auth || !strings.Contains(line, notKey) {
		t.Errorf("unreadable key: exit %d %q", code, line)
	}
	out, code, line := cli(t, append(common, "--identity="+srv.ClientKey(), "--known-hosts="+srv.KnownHosts())...)
	// The snapshots refused above were spooled, and go out now too.
	if code != 0 || !strings.Contains(out, "captured") || !strings.HasSuffix(out, "; 0 pending\n") {
		t.Errorf("good keys: exit %d %q %q", code, out, line)
	}
}

func TestHelpListsEveryOption(t *testing.T) {
	out, code, _ := cli(t, "help")
	for _, o := range option.All() {
		if !strings.Contains(out, "--"+o.Name+" ") {
			t.Errorf("help does not list --%s", o.Name)
		}
	}
	if code != 0 || !strings.Contains(out, "Exit codes") {
		t.Errorf("help: exit %d", code)
	}
	out, _, _ = cli(t, "help", "known-hosts")
	if !strings.Contains(out, "~/.ssh/known_hosts") || !strings.Contains(out, "object known-hosts") {
		t.Errorf("help known-hosts: %q", out)
	}
}

// TestReadmeDocumentsEveryOption keeps the README's option table and exit codes
// in step with the code.
func TestReadmeDocumentsEveryOption(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range option.All() {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(o.Name) + "` \\|").Match(readme) {
			t.Errorf("README.md has no row for option %s", o.Name)
		}
	}
	for k := fail.Internal; k <= fail.Busy; k++ {
		if !regexp.MustCompile("(?m)^\\| " + string(rune('0'+k)) + " \\|").Match(readme) {
			t.Errorf("README.md does not document exit code %d", k)
		}
	}
}

// TestOptionsFile: an --options file uses the event handler's names and shapes,
// and flags override it.
func TestOptionsFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "running.json")
	os.WriteFile(cfgFile, []byte(`{"system":{"name":{"host-name":"leaf9"}}}`), 0o600)
	opts := filepath.Join(dir, "cfgsnap.json")
	os.WriteFile(opts, []byte(`{"target":["file://`+dir+`/a","file://`+dir+`/b"],"source":"file:`+cfgFile+`",
		"sr-cli":"/nonexistent","netns":"none","spool-dir":"`+dir+`/spool","name":"{host}.json"}`), 0o600)

	out, code, line := cli(t, "snapshot", "--options", opts, "--name", "{host}-{user}.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, line)
	}
	for _, folder := range []string{"a", "b"} {
		matches, _ := filepath.Glob(filepath.Join(dir, folder, "leaf9-root.json*"))
		if !slices.Equal(matches, []string{filepath.Join(dir, folder, "leaf9-root.json"), filepath.Join(dir, folder, "leaf9-root.json.rec.json")}) { // the snapshot and its record
			t.Errorf("%s: %v; the file's targets and the flag's name should both apply (%s)", folder, matches, out)
		}
	}
	_, code, line = cli(t, "snapshot", "--options", filepath.Join(dir, "running.json-missing"))
	if code != fail.Usage || !strings.Contains(line, "running.json-missing") {
		t.Errorf("missing options file: exit %d %q", code, line)
	}
	os.WriteFile(opts, []byte(`{"target": "file:///x",`), 0o600)
	if _, code, line = cli(t, "snapshot", "--options", opts); code != fail.Usage || !strings.Contains(line, "not valid JSON") {
		t.Errorf("broken options file: exit %d %q", code, line)
	}
}
