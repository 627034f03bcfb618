// Package githistory gives a bare repository's branch a long history of
// switches' configurations in seconds, for benchmarks that ask whether a
// snapshot costs more as the history behind it grows.
package githistory

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// emptyComment is the placeholder Variant fills: SR Linux's config.json has
// one, in its _preamble.
var emptyComment = []byte(`"comment": ""`)

// Variant is base with switch sw and version in its first empty comment, so
// each is a new blob that differs from the one before by one line, as a
// commit's does.
func Variant(base []byte, sw, version int) []byte {
	return bytes.Replace(base, emptyComment, fmt.Appendf(nil, `"comment": "leaf%d v%d"`, sw, version), 1)
}

// Build gives the bare repository gitDir, whose branch main does not exist
// yet, n commits on main. Commit i changes switch i%switches's file,
// leafSW.json (what cfgsnap's default git-path names a switch called leafSW),
// to Variant(base, SW, i), so the tip's tree holds every switch's file. It
// uses git fast-import: seconds for 10,000 commits, where pushing them one by
// one would take hours.
func Build(t testing.TB, gitDir string, base []byte, switches, n int) {
	t.Helper()
	testenv.NeedCommand(t, "git")
	if !bytes.Contains(base, emptyComment) {
		t.Fatalf("githistory: the configuration has no %s to vary", emptyComment)
	}
	cmd := gitCommand("--git-dir="+gitDir, "fast-import", "--quiet")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(in, 1<<20)
	for i := range n {
		sw := i % switches
		msg := fmt.Sprintf("leaf%d: commit %d by admin", sw, i)
		content := Variant(base, sw, i)
		fmt.Fprintf(w, "commit refs/heads/main\nauthor admin <admin@leaf%d> %d +0000\ncommitter cfgsnap <cfgsnap@leaf%d> %d +0000\ndata %d\n%s\n",
			sw, 1_700_000_000+i, sw, 1_700_000_000+i, len(msg), msg)
		fmt.Fprintf(w, "M 100644 inline leaf%d.json\ndata %d\n", sw, len(content))
		w.Write(content)
		w.WriteString("\n")
	}
	// The write error, if any, is fast-import's to explain: Wait reports it.
	w.Flush()
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("git fast-import into %s: %v: %s", gitDir, err, stderr.String())
	}
	if got := Count(t, gitDir, "main"); got != n {
		t.Fatalf("githistory: %s has %d commits on main, want %d", gitDir, got, n)
	}
}

// Count is the number of commits on gitDir's branch.
func Count(t testing.TB, gitDir, branch string) int {
	t.Helper()
	out, err := gitCommand("--git-dir="+gitDir, "rev-list", "--count", "refs/heads/"+branch).CombinedOutput()
	if err != nil {
		t.Fatalf("git rev-list --count %s in %s: %v: %s", branch, gitDir, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("git rev-list --count %s in %s printed %q", branch, gitDir, out)
	}
	return n
}

// gitCommand keeps the machine's git configuration from changing the history.
func gitCommand(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	return cmd
}
