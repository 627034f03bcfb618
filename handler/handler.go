// Package handler runs cfgsnap's pipeline, which flows one way:
//
//	event -> capture -> spool -> deliver -> report
//
// Handle is what the event-handler script calls: it validates the event, queues it
// durably in the spool and starts a detached worker, returning at once because
// run-script blocks the instance and is killed after about 10 s. Work is that
// worker: one at a time (the spool's lock), it captures what the queued events
// announce (the configuration and exactly the commits it holds), spools it, and
// delivers everything pending. Snapshot and Flush are the same steps run by hand.
//
// The files follow the data:
//
//	handle.go   the event: checked, queued, a worker started
//	work.go     the runs (Work, Flush, Snapshot) over the queued events
//	capture.go  the configuration and its commits, read from the switch into the spool
//	deliver.go  every pending snapshot to every target it still lacks
//	report.go   the run's one line
//	network.go  the management namespace every connection goes through
//
// A run (the type) carries what every step needs: the spool, the options in
// force, the network and the process's Env.
package handler

import (
	"log"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/spool"
)

// Env is what the pipeline needs from the process running it.
type Env struct {
	// Logf receives progress and warnings: the worker's log file, or stderr with --debug.
	Logf func(format string, args ...any)
	// Now is the clock; tests may fix it.
	Now func() time.Time
	// Flags are the command-line flags Handle was given, handed on to the worker.
	Flags []string
	// Worker starts the detached worker for Handle; nil means StartWorker.
	Worker func(c *option.Config, flags []string) error

	isWorker bool // Logf writes to the spool's worker.log already
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// audit records line, one per snapshot captured, in the spool's worker.log:
// whoever captured it, the worker or a run by hand. A log that cannot be
// written loses the line, never the snapshot.
func (e Env) audit(spoolDir, line string) {
	e.logf("%s", line)
	if e.isWorker {
		return
	}
	f, err := spool.OpenLog(spoolDir)
	if err != nil {
		e.logf("writing %s: %v", WorkerLog, err)
		return
	}
	defer f.Close()
	log.New(f, "", log.LstdFlags|log.LUTC).Print(line)
}

// WorkerLog is the worker's log file in the spool folder (spool.OpenLog).
const WorkerLog = spool.WorkerLog

// run is one pass of the pipeline over a spool: what every step needs.
type run struct {
	spool *spool.Spool
	c     *option.Config // the options in force: the flags, then the newest event's over them
	net   *network       // opened once per run, with the first options that need it
	env   Env
}

// network opens the management namespace with the options in force, once.
func (r *run) network() *network {
	if r.net == nil {
		r.net = openNet(r.c)
	}
	return r.net
}

func (r *run) close() { r.net.close() }
