package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// The commands given to sr_cli, each as one argument after -d, the way Nokia's own
// tooling calls it (srl-labs/containerlab, nodes/srl/version.go: sr_cli -d "info
// from state /system information version | grep version"). No shell is involved:
// "|" is the SR Linux CLI's output modifier ("| as json", learn.srlinux.dev), and
// "*" its list wildcard (learn-srlinux, docs/blog/posts/2023/cli-ranges.md).
const (
	cliConfig  = "info from running / | as json"
	cliCommits = "info from state /system configuration commit * | as json"
)

// maxCommitList bounds what we read of the commit list. SR Linux keeps a bounded
// history of commits of a few hundred bytes each; anything this large is not one.
const maxCommitList = 16 << 20

// srCLI reads through the SR Linux CLI, which needs no credentials: it runs as the
// event handler's user, on the box.
type srCLI struct {
	bin string
}

// WriteConfig streams sr_cli's output to w unchanged, checking on the way that it is
// one JSON object.
func (s *srCLI) WriteConfig(ctx context.Context, w io.Writer) error {
	var writeErr, badJSON error
	err := s.run(ctx, cliConfig, func(stdout io.Reader) {
		writeErr, badJSON = copyJSON(w, stdout)
	})
	switch {
	case err != nil:
		return err
	case writeErr != nil:
		return writeErr
	case badJSON != nil:
		return fail.New(fail.Source, "%s -d %q printed no JSON configuration (%v): run it on the switch to see what it says", s.bin, cliConfig, badJSON)
	}
	return nil
}

// Commits runs sr_cli for the "system configuration commit" state list.
func (s *srCLI) Commits(ctx context.Context) ([]snapshot.Commit, error) {
	var out []byte
	var readErr error
	err := s.run(ctx, cliCommits, func(stdout io.Reader) {
		out, readErr = io.ReadAll(io.LimitReader(stdout, maxCommitList+1))
	})
	if err != nil {
		return nil, err
	}
	if readErr != nil {
		return nil, fail.New(fail.Source, "reading the output of %s: %v", s.bin, readErr)
	}
	if len(out) > maxCommitList {
		return nil, fail.New(fail.Source, "%s -d %q printed more than %d MiB: run it on the switch to see why", s.bin, cliCommits, maxCommitList>>20)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil // an empty list may print nothing at all
	}
	commits, err := parseCommits(out)
	if err != nil {
		return nil, fail.New(fail.Source, "%s -d %q printed no commit list (%v; it begins %q): run it on the switch to see why", s.bin, cliCommits, err, firstLine(out))
	}
	return commits, nil
}

// run starts sr_cli with command, hands its stdout to consume, and reports how it
// ended. stdout is drained after consume returns, so that sr_cli never blocks on a
// full pipe.
func (s *srCLI) run(ctx context.Context, command string, consume func(stdout io.Reader)) error {
	cmd := exec.CommandContext(ctx, s.bin, "-d", command)
	// If sr_cli leaves a child holding its pipes, Wait still returns soon after the
	// kill that follows ctx's end.
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = srCLIEnv(os.Environ())
	stderr := &headBuffer{n: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fail.New(fail.Internal, "running %s: %v", s.bin, err)
	}
	if err := cmd.Start(); err != nil {
		switch {
		case ctx.Err() != nil:
			return s.timeout(ctx, command)
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, exec.ErrNotFound):
			return fail.New(fail.Source, "sr_cli not found at %s: set option sr-cli to its path, or use source jsonrpc", s.bin)
		case errors.Is(err, fs.ErrPermission):
			return fail.New(fail.Source, "%s is not executable by this user: set option sr-cli to the real sr_cli, or use source jsonrpc", s.bin)
		}
		return fail.New(fail.Source, "starting %s: %v: check option sr-cli", s.bin, err)
	}
	consume(stdout)
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return s.timeout(ctx, command)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		msg := firstLine(stderr.buf)
		if msg == "" {
			msg = "it printed no error message"
		}
		return fail.New(fail.Source, "%s -d %q failed (%v): %s: run it on the switch to see the whole message", s.bin, command, exit.ProcessState, msg)
	}
	return fail.New(fail.Source, "running %s -d %q: %v", s.bin, command, err)
}

// srCLIVars are the variables sr_cli gets from our environment, besides LC_*: where
// programs are (PATH), the user it runs as and their CLI settings (HOME, USER,
// LOGNAME), and how to print text and times (LANG, LC_*, TERM, TZ). An allow-list,
// not a deny-list: our environment holds secrets (CFGSNAP_JSONRPC_PASSWORD,
// CFGSNAP_GIT_PASSWORD, CFGSNAP_WEBHOOK_SECRET, AWS_*, an SSH agent's socket) and
// whatever else the event handler or a shell left there, and sr_cli needs none of
// it: it reads the switch as the user it runs as, without credentials.
var srCLIVars = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ"}

// srCLIEnv is the part of environ that sr_cli may see.
func srCLIEnv(environ []string) []string {
	env := []string{} // not nil: a nil cmd.Env would pass on all of ours
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(srCLIVars, name) || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *srCLI) timeout(ctx context.Context, command string) error {
	return fail.New(fail.Source, "%s -d %q did not finish in time (%v): check that the switch's management server is up, or raise the deadline", s.bin, command, context.Cause(ctx))
}

// available reports whether the sr_cli executable is there to be run.
func (s *srCLI) available() bool {
	_, err := exec.LookPath(s.bin)
	return err == nil
}
