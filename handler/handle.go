package handler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"github.com/cfgsnap/cfgsnap/handler/event"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/redact"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/spool"
	"github.com/cfgsnap/cfgsnap/handler/sshsig"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// Handle validates raw (the event-handler input), applies its options over c,
// queues it and starts a worker. It returns the one line for the instance's state.
func Handle(ctx context.Context, raw []byte, c *option.Config, env Env) (string, error) {
	ev, err := event.Parse(raw)
	if err != nil {
		return "", err
	}
	if err := c.SetEvent(ev.Options); err != nil {
		return "", fail.New(fail.Usage, "event options: %w", err)
	}
	if err := checkTargets(c); err != nil {
		return "", err
	}
	s, err := openSpool(c, env)
	if err != nil {
		return "", err
	}
	if err := s.AddJob(raw); err != nil {
		return "", fail.As(fail.Permission, fmt.Errorf("queueing the event in %s: %w", c.SpoolDir, err))
	}
	previous, _ := s.Status()
	if previous == "" {
		previous = "none"
	}
	start := env.Worker
	if start == nil {
		start = StartWorker
	}
	started := "worker started"
	if err := start(c, env.Flags); err != nil {
		// The job is safe in the spool; the next event or retry starts a worker.
		started = "worker not started (" + err.Error() + "); the event stays queued"
	}
	return fmt.Sprintf("cfgsnap: queued last-change %s, %s; last run: %s",
		ev.LastChange.Format("2006-01-02T15:04:05.000Z"), started, previous), nil
}

func checkTargets(c *option.Config) error {
	if len(c.Targets) == 0 {
		return fail.New(fail.Usage, "no target: set one, e.g. options object target value sftp://backup@10.0.0.5/srl (or --target by hand)")
	}
	for _, t := range c.Targets {
		if _, err := target.Parse(t); err != nil {
			return err
		}
	}
	// A name template that cannot work, or a retention it cannot support, is
	// refused before anything is queued, not at every capture; so are
	// recipients to encrypt to that age cannot use, redaction without a
	// usable key, and a signing key cfgsnap cannot sign with.
	if _, err := snapshot.Name(c.Name, snapshot.Record{}); err != nil {
		return err
	}
	if err := target.Retention(c).Check(); err != nil {
		return err
	}
	if _, err := redact.FromOptions(c); err != nil {
		return err
	}
	if _, err := sshsig.FromOptions(c); err != nil {
		return err
	}
	return target.CheckEncryption(c)
}

func openSpool(c *option.Config, env Env) (*spool.Spool, error) {
	s, err := spool.Open(c.SpoolDir, c.SpoolMaxCount, c.SpoolMaxBytes, env.logf)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fail.New(fail.Permission, "%v: run cfgsnap as root (the script's sudo option) or set spool-dir", err)
	}
	return s, err
}

// StartWorker starts `cfgsnap work` detached: in its own session, so the event
// handler neither waits for it nor kills it with the script, and with no stdio
// of the script's, so run-script's pipes close as soon as Handle returns.
// Its log goes to the spool's WorkerLog.
func StartWorker(c *option.Config, flags []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := spool.OpenLog(c.SpoolDir)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := append([]string{"work"}, flags...)
	// The worker must find this spool, bounded as the event said, before it reads
	// any event.
	args = append(args, "--spool-dir", c.SpoolDir,
		"--spool-max-count", fmt.Sprint(c.SpoolMaxCount),
		"--spool-max-bytes", fmt.Sprint(c.SpoolMaxBytes))
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
