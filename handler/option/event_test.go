package option_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The event's options are the switch's configuration users' to write; cfgsnap
// runs as root. Whatever would let them choose what root runs, reads or writes
// is refused from the event, and taken from root (flags, an options file).
func TestSetEventRootChoosesWhatRootRuns(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	spool := filepath.Join(root, "cfgsnap") // a spool cfgsnap made: its folders, and keys root put there
	testenv.MkdirAs(t, spool, 0o755, 0)
	testenv.MkdirAs(t, filepath.Join(spool, "jobs"), 0o700, 0)
	testenv.MkdirAs(t, filepath.Join(spool, "snapshots"), 0o700, 0)
	system := filepath.Join(root, "sudoers.d") // root's, but no spool: as /etc/sudoers.d
	testenv.MkdirAs(t, system, 0o755, 0)
	fileAs(t, filepath.Join(system, "admin"), 0o440, 0)
	key := fileAs(t, filepath.Join(spool, "id_ed25519"), 0o600, 0)
	srcli := fileAs(t, filepath.Join(root, "sr_cli"), 0o755, 0)
	theirs := filepath.Join(root, "x")
	testenv.MkdirAs(t, theirs, 0o755, testenv.Nobody)
	evil := fileAs(t, filepath.Join(theirs, "evil.sh"), 0o755, testenv.Nobody)
	plantedKey := fileAs(t, filepath.Join(theirs, "id"), 0o600, testenv.Nobody)
	victim := fileAs(t, filepath.Join(root, "shadow"), 0o600, 0)
	link := filepath.Join(spool, "link-to-victim")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		opts    map[string]any
		refused string // "" when the event may set it
	}{
		{map[string]any{"sr-cli": srcli, "spool-dir": spool, "identity": key, "known-hosts": filepath.Join(spool, "known_hosts")}, ""},
		{map[string]any{"spool-dir": filepath.Join(root, "new-spool"), "webhook-secret-file": filepath.Join(root, "new-spool", "secret")}, ""},
		{map[string]any{"source": "file:/etc/opt/srlinux/checkpoint/checkpoint-0.json"}, ""},
		{map[string]any{"source": "file:///etc/opt/srlinux/config.json", "jsonrpc-url": "http://127.0.0.1/jsonrpc"}, ""},
		{map[string]any{"jsonrpc-url": "https://[::1]:8443/jsonrpc"}, ""},
		// Recipients inline are the instance's; a file of them is a key file.
		{map[string]any{"spool-dir": spool, "encrypt-to": []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice", filepath.Join(spool, "team.recipients")}}, ""},
		// The reproductions: a program owned by another user, run as root...
		{map[string]any{"sr-cli": evil}, "owned by uid 65534"},
		{map[string]any{"sr-cli": "/tmp/x/../x/evil.sh"}, "absolute, clean"},
		{map[string]any{"binary": evil}, "BINARY at the top of cfgsnap.py"},
		// ...a spool someone else controls, or a relative one...
		{map[string]any{"spool-dir": theirs}, "owned by uid 65534"},
		{map[string]any{"spool-dir": "spool"}, "absolute"},
		{map[string]any{"spool-dir": system}, "only a spool cfgsnap made"},
		{map[string]any{"spool-dir": system, "git-password-file": filepath.Join(system, "admin")}, "only a spool cfgsnap made"},
		// ...any file root can read, shipped to the event's target...
		{map[string]any{"source": "file:" + victim}, "SR Linux's own configuration files"},
		{map[string]any{"source": "file:/etc/opt/srlinux/../../shadow"}, "SR Linux's own configuration files"},
		{map[string]any{"git-password-file": victim}, "only files in cfgsnap's folder"},
		{map[string]any{"s3-secret-key-file": filepath.Join(spool, "..", "shadow")}, "only files in cfgsnap's folder"},
		{map[string]any{"identity": []string{key, "~/.ssh/id_rsa"}}, "only files in cfgsnap's folder"},
		// ...or root's own key, to sign what the instance chooses.
		{map[string]any{"sign-key": "~/.ssh/id_ed25519"}, "only files in cfgsnap's folder"},
		{map[string]any{"spool-dir": spool, "sign-key": link}, "symbolic link"},
		{map[string]any{"spool-dir": spool, "ca-file": link}, "symbolic link"},
		{map[string]any{"spool-dir": spool, "encrypt-to": []string{victim, "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}}, "only files in cfgsnap's folder"},
		{map[string]any{"encrypt-to": "~/.ssh/authorized_keys"}, "only files in cfgsnap's folder"},
		{map[string]any{"spool-dir": spool, "encrypt-to": link}, "symbolic link"},
		{map[string]any{"spool-dir": theirs, "identity": plantedKey}, "owned by uid 65534"},
		// ...or the JSON-RPC password sent to a server of their choosing.
		{map[string]any{"jsonrpc-url": "https://attacker.example/jsonrpc"}, "only at this switch"},
	} {
		b, _ := json.Marshal(c.opts)
		err := option.New().SetEvent(gjson.ParseBytes(b))
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("event options %s: %v; want them accepted", b, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("event options %s: %v; want them refused: %s", b, err, c.refused)
		}
		// Root itself may choose anything: flags and options files are root's.
		if err := option.New().SetJSON(gjson.ParseBytes(b)); err != nil && !strings.Contains(string(b), `"spool-dir":"spool"`) {
			t.Errorf("the same options from root (SetJSON) %s: %v", b, err)
		}
	}
}

// fileAs writes a file owned by uid and returns its path.
func fileAs(t *testing.T, p string, mode os.FileMode, uid int) string {
	t.Helper()
	testenv.WriteFileAs(t, p, "x\n", mode, uid)
	return p
}
