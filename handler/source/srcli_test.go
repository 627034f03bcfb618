package source

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func openSRCLI(t *testing.T, bin string) Source {
	t.Helper()
	c := option.New()
	c.Source = "sr_cli"
	c.SRCLI = bin
	src, err := Open(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSRCLIConfigIsSRCLIOutputByteForByte(t *testing.T) {
	t.Parallel()
	const name = "srl-config-dcf-leaf11.json"
	want := fixture(t, name)
	bin := standInSRCLI(t, map[string]string{cliConfig: testenv.Fixture(t, name)})
	var got bytes.Buffer
	if err := openSRCLI(t, bin).WriteConfig(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("snapshot differs from what sr_cli printed: got %d bytes, want %d", got.Len(), len(want))
	}
}

// Three shapes the commit list may plausibly take in sr_cli's JSON (no public
// sample exists): the path from the root, module-prefixed with string ids, and
// relative to the context with the CLI's "(N seconds ago)" and newest first.
func TestSRCLICommitListShapes(t *testing.T) {
	t.Parallel()
	want := testCommits()
	reversed := append(testCommits()[:0:0], want...)
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	shapes := map[string]any{
		"from root": map[string]any{"system": map[string]any{"configuration": map[string]any{
			"commit": commitList(want, false, false, "")}}},
		"module prefixes, string ids": map[string]any{"srl_nokia-system:system": map[string]any{"srl_nokia-configuration:configuration": map[string]any{
			"srl_nokia-configuration:commit": commitList(want, true, false, "srl_nokia-configuration:")}}},
		"relative, seconds ago, newest first": map[string]any{
			"commit": commitList(reversed, false, true, "")},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := writeFile(t, "commits.json", compact(t, shape))
			bin := standInSRCLI(t, map[string]string{cliCommits: out})
			got, err := openSRCLI(t, bin).Commits(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sameCommits(t, got, want)
		})
	}
}

func TestSRCLIEmptyCommitListIsNone(t *testing.T) {
	t.Parallel()
	for _, out := range []string{"{\n}\n", "\n", `{"system": {"configuration": {}}}`} {
		bin := standInSRCLI(t, map[string]string{cliCommits: writeFile(t, "empty.json", []byte(out))})
		got, err := openSRCLI(t, bin).Commits(context.Background())
		if err != nil || got != nil {
			t.Errorf("output %q: Commits = %v, %v; want nil, nil", out, got, err)
		}
	}
}

// The JSON-RPC password is ours alone: sr_cli does not inherit it.
func TestSRCLIDoesNotSeeThePassword(t *testing.T) {
	t.Setenv(PasswordEnv, testPassword)
	bin := filepath.Join(t.TempDir(), "sr_cli")
	script := "#!/bin/sh\nif [ -n \"${" + PasswordEnv + "+set}\" ]; then echo 'Error: the password is in my environment' >&2; exit 1; fi\necho '{}'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openSRCLI(t, bin).Commits(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestSRCLIFailureQuotesItsFirstErrorLine(t *testing.T) {
	t.Parallel()
	bin := standInSRCLI(t, map[string]string{cliConfig: "", cliCommits: ""})
	src := openSRCLI(t, bin)
	var out bytes.Buffer
	for name, err := range map[string]error{
		"config":  src.WriteConfig(context.Background(), &out),
		"commits": func() error { _, err := src.Commits(context.Background()); return err }(),
	} {
		if fail.KindOf(err) != fail.Source {
			t.Fatalf("%s: error %v has kind %d, want Source", name, err, fail.KindOf(err))
		}
		msg := err.Error()
		if !strings.Contains(msg, "Error: Could not connect to the management server") || strings.Contains(msg, "Traceback") || strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q should quote sr_cli's first stderr line only, on one line", name, msg)
		}
	}
}

// sr_cli may print an error instead of the configuration and still exit 0; that
// text must not pass for a snapshot.
func TestSRCLIOutputThatIsNotJSONFails(t *testing.T) {
	t.Parallel()
	for name, out := range map[string]string{
		"error text":  "Error: Path '/' is not valid in this context\n",
		"truncated":   `{"interface": [{"name": "ethernet-1/1"`,
		"empty":       "",
		"two objects": "{}\n{}\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin := standInSRCLI(t, map[string]string{cliConfig: writeFile(t, "out", []byte(out))})
			err := openSRCLI(t, bin).WriteConfig(context.Background(), &bytes.Buffer{})
			if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "printed no JSON configuration") {
				t.Errorf("WriteConfig = %v, want a Source error saying sr_cli printed no JSON", err)
			}
		})
	}
}

func TestSRCLIMissing(t *testing.T) {
	t.Parallel()
	err := openSRCLI(t, t.TempDir()+"/no/sr_cli").WriteConfig(context.Background(), &bytes.Buffer{})
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "sr_cli not found at") || !strings.Contains(err.Error(), "option sr-cli") {
		t.Errorf("WriteConfig = %v, want a Source error naming the path and option sr-cli", err)
	}
}

func TestSRCLIDeadline(t *testing.T) {
	t.Parallel()
	testenv.NeedCommand(t, "sleep")
	slow := filepath.Join(t.TempDir(), "sr_cli")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 10\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := openSRCLI(t, slow).Commits(ctx)
	if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), "did not finish in time") {
		t.Errorf("Commits = %v, want a Source error about the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Commits returned after %v; the deadline was 200ms", d)
	}
}
