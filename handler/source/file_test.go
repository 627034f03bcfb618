package source

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

func openFile(t *testing.T, source, srcli string) Source {
	t.Helper()
	c := option.New()
	c.Source = source
	c.SRCLI = srcli
	src, err := Open(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFileIsStreamedAsIs(t *testing.T) {
	t.Parallel()
	const name = "srl-config-srlcontroller-test.json"
	want := fixture(t, name)
	path := writeFile(t, "checkpoint-0.json", want)
	for _, source := range []string{"file:" + path, "file://" + path} {
		var got bytes.Buffer
		if err := openFile(t, source, "/nonexistent/sr_cli").WriteConfig(context.Background(), &got); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: snapshot differs from the file: got %d bytes, want %d", source, got.Len(), len(want))
		}
	}
}

// Without sr_cli a file names no user: no commits, and no error.
func TestFileWithoutSRCLIHasNoCommits(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "config.json", fixture(t, "srl-config-dcf-leaf11.json"))
	got, err := openFile(t, "file:"+path, t.TempDir()+"/sr_cli").Commits(context.Background())
	if err != nil || got != nil {
		t.Errorf("Commits = %v, %v; want nil, nil", got, err)
	}
}

func TestFileCommitsComeFromSRCLI(t *testing.T) {
	t.Parallel()
	want := testCommits()
	out := writeFile(t, "commits.json", compact(t, map[string]any{"commit": commitList(want, false, true, "")}))
	bin := standInSRCLI(t, map[string]string{cliCommits: out})
	path := writeFile(t, "config.json", fixture(t, "srl-config-dcf-leaf11.json"))
	got, err := openFile(t, "file:"+path, bin).Commits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sameCommits(t, got, want)
}

func TestFileThatIsNoConfiguration(t *testing.T) {
	t.Parallel()
	full := fixture(t, "srl-config-dcf-leaf11.json")
	for name, tc := range map[string]struct {
		path string
		want string
	}{
		"half-written checkpoint": {writeFile(t, "checkpoint-0.json", full[:len(full)/2]), "is not a JSON configuration"},
		"flat config":             {writeFile(t, "leaf1.cfg", fixture(t, "srl-flat-dcf2023-leaf1.cfg")), "is not a JSON configuration"},
		"missing":                 {t.TempDir() + "/checkpoint-0.json", "does not exist"},
	} {
		err := openFile(t, "file:"+tc.path, "/nonexistent/sr_cli").WriteConfig(context.Background(), &bytes.Buffer{})
		if fail.KindOf(err) != fail.Source || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: WriteConfig = %v, want a Source error naming the file and saying it %s", name, err, tc.want)
		}
	}
}
