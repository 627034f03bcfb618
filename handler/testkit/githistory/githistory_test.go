package githistory_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/githistory"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func TestBuild(t *testing.T) {
	testenv.NeedCommand(t, "git")
	dir := filepath.Join(t.TempDir(), "h.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	base := []byte("{\n  \"comment\": \"\",\n  \"x\": 1\n}\n")
	githistory.Build(t, dir, base, 3, 10)

	if n := githistory.Count(t, dir, "main"); n != 10 {
		t.Errorf("Count = %d, want 10", n)
	}
	// Commit 9 is the last to change leaf0.json, commit 8 leaf2.json.
	for file, want := range map[string][]byte{
		"leaf0.json": githistory.Variant(base, 0, 9),
		"leaf2.json": githistory.Variant(base, 2, 8),
	} {
		got, err := exec.Command("git", "--git-dir="+dir, "cat-file", "blob", "main:"+file).Output()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("main:%s = %q (%v), want %q", file, got, err, want)
		}
	}
	if bytes.Equal(githistory.Variant(base, 0, 9), base) {
		t.Error("Variant left the configuration as it was")
	}
}
