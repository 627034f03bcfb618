package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// MaxEventBytes bounds one job. Event-handler input is a few KiB (paths,
// options, persistent data); the bound keeps a broken caller from filling the
// switch's disk through the queue.
const MaxEventBytes = 1 << 20

// A Job is one event-handler input waiting to be captured.
type Job struct {
	ID    string // sorts in the order the jobs were added
	Event []byte
}

// seqDigits is the width of the decimal sequence that starts every ID, so that
// IDs sort as text in sequence order.
const seqDigits = 20

func formatSeq(n int64) string { return fmt.Sprintf("%0*d", seqDigits, n) }

// parseSeq returns the sequence that starts a spool file name.
func parseSeq(name string) (int64, bool) {
	if len(name) < seqDigits {
		return 0, false
	}
	for _, c := range []byte(name[:seqDigits]) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(name[:seqDigits], 10, 64)
	return n, err == nil
}

// nextSeq returns a sequence after every one in names and after last, and
// otherwise the current time in nanoseconds: IDs stay in order when the clock
// steps back (as it does when NTP corrects it after boot) and across
// processes, which all see the same files.
func (s *Spool) nextSeq(names []string, last int64) int64 {
	next := max(s.now().UnixNano(), last+1)
	for _, name := range names {
		if n, ok := parseSeq(name); ok {
			next = max(next, n+1)
		}
	}
	return next
}

// isJobID reports whether id has the form AddJob gives: SEQ-8 hex digits.
func isJobID(id string) bool {
	_, ok := parseSeq(id)
	if !ok || len(id) != seqDigits+9 || id[seqDigits] != '-' {
		return false
	}
	for _, c := range []byte(id[seqDigits+1:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// AddJob queues event durably: when it returns nil, the job survives a kill or
// a power cut. It runs inside the event handler's run-script window, so it
// does one small write and two syncs, and waits for no other cfgsnap.
func (s *Spool) AddJob(event []byte) error {
	if len(event) > MaxEventBytes {
		return fail.New(fail.Event, "spool: event of %d bytes is over the %d-byte limit of a job; check what the event-handler script passes", len(event), MaxEventBytes)
	}
	done, err := s.writing()
	if err != nil {
		return err
	}
	defer done()
	dir := filepath.Join(s.dir, jobsDir)
	f, err := createTemp(dir, tmpPrefix+"job-")
	if err != nil {
		return osErr(err, "queueing the event in %s", dir)
	}
	tmp := f.Name()
	err = func() error {
		if _, err := f.Write(event); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return osErr(err, "queueing the event in %s", dir)
	}
	// Name the job last, so that its sequence follows every job already there.
	names, err := readNames(dir)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	// Two processes may pick the same sequence; the random part keeps their
	// names apart, and their order does not matter.
	id := fmt.Sprintf("%s-%08x", formatSeq(s.nextSeq(names, 0)), rand.Uint32())
	if err := os.Rename(tmp, filepath.Join(dir, id+".json")); err != nil {
		os.Remove(tmp)
		return osErr(err, "queueing the event in %s", dir)
	}
	return syncDir(dir)
}

// Jobs returns the queued jobs, oldest first.
func (s *Spool) Jobs() ([]Job, error) {
	dir := filepath.Join(s.dir, jobsDir)
	names, err := readNames(dir)
	if err != nil {
		return nil, err
	}
	var jobs []Job
	for _, name := range names {
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || !isJobID(id) {
			continue // a temporary file, or not ours
		}
		b, err := readFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by the worker meanwhile
		}
		if err != nil {
			return nil, osErr(err, "reading job %s", id)
		}
		jobs = append(jobs, Job{ID: id, Event: b})
	}
	return jobs, nil
}

// RemoveJobs removes jobs once they are captured. Jobs already gone are not
// an error.
func (s *Spool) RemoveJobs(jobs []Job) error {
	if len(jobs) == 0 {
		return nil
	}
	dir := filepath.Join(s.dir, jobsDir)
	for _, j := range jobs {
		if !isJobID(j.ID) {
			return fail.New(fail.Internal, "spool: %q is not a job of this spool; pass jobs as Jobs returned them", j.ID)
		}
		if err := remove(filepath.Join(dir, j.ID+".json")); err != nil {
			return err
		}
	}
	return syncDir(dir)
}
