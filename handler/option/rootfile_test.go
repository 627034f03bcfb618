package option

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Root's own options file is read when no --options is given, and only when
// it is root's: otherwise whoever wrote it would choose what root runs.
func TestRootFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand a file to another user") // testenv imports this package's users; see TestSetEvent for CI
	}
	dir := t.TempDir()
	apply := func(args ...string) (*Config, error) {
		fs := flag.NewFlagSet("handle", flag.ContinueOnError)
		f := AddFlags(fs)
		f.rootFile = filepath.Join(dir, "options.json")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c := New()
		return c, f.Apply(c)
	}
	if c, err := apply(); err != nil || c.SRCLI != "/usr/bin/sr_cli" {
		t.Fatalf("no root file: %v, sr-cli %s", err, c.SRCLI)
	}
	root := filepath.Join(dir, "options.json")
	os.WriteFile(root, []byte(`{"sr-cli": "/opt/srl/bin/sr_cli", "jsonrpc-url": "https://10.0.0.1/jsonrpc"}`), 0o644)
	if c, err := apply(); err != nil || c.SRCLI != "/opt/srl/bin/sr_cli" || c.JSONRPCURL != "https://10.0.0.1/jsonrpc" {
		t.Errorf("root's file: %v, %+v", err, c)
	}
	if c, err := apply("--sr-cli", "/usr/bin/sr_cli"); err != nil || c.SRCLI != "/usr/bin/sr_cli" {
		t.Errorf("a flag overrides root's file: %v, sr-cli %s", err, c.SRCLI)
	}
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{}`), 0o644)
	if c, err := apply("--options", other); err != nil || c.SRCLI != "/usr/bin/sr_cli" {
		t.Errorf("--options replaces root's file: %v, sr-cli %s", err, c.SRCLI)
	}
	os.Chown(root, 65534, 65534)
	if _, err := apply(); err == nil || !strings.Contains(err.Error(), "not root's own") {
		t.Errorf("a root file owned by another user: %v; want it refused", err)
	}
}
