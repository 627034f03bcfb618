package spool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// An Entry is an undelivered snapshot.
type Entry struct {
	ID      string // sorts in the order of Commit
	Record  snapshot.Record
	Targets []string // not yet delivered to
	// Canonical is the record's canonical JSON (snapshot.Canonical) as it was
	// chained at Commit: the bytes that land beside the snapshot and whose
	// sha256 the next record's Prev holds. Empty for entries spooled before
	// the chain existed.
	Canonical []byte
}

// meta is the content of ID.meta.
type meta struct {
	Record    snapshot.Record `json:"record"`
	Targets   []string        `json:"targets"`
	Canonical []byte          `json:"canonical,omitempty"` // exact bytes: Record's JSON may change as Stored grows
}

func contentPath(dir, id string) string { return filepath.Join(dir, snapsDir, id+".json") }
func metaPath(dir, id string) string    { return filepath.Join(dir, snapsDir, id+".meta") }

// isEntryID reports whether id has the form Commit gives: the sequence alone.
func isEntryID(id string) bool {
	_, ok := parseSeq(id)
	return ok && len(id) == seqDigits
}

// A Writer receives one snapshot as it is read from the source. It is an
// io.Writer that hashes and counts what it writes to a temporary file in the
// spool; Commit makes it an entry, Abort throws it away.
type Writer struct {
	s    *Spool
	f    *os.File
	hash hash.Hash
	n    int64
	err  error  // the first write error: a snapshot missing bytes is never committed
	done func() // releases write.lock; nil once committed or aborted
}

// Create starts a snapshot. Call it with the worker lock held, and call
// Commit or Abort on the Writer.
func (s *Spool) Create() (*Writer, error) {
	done, err := s.writing()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, snapsDir)
	f, err := createTemp(dir, tmpPrefix+"snapshot-")
	if err != nil {
		done()
		return nil, osErr(err, "creating a snapshot in %s", dir)
	}
	return &Writer{s: s, f: f, hash: sha256.New(), done: done}, nil
}

// Write writes p to the snapshot. It fails, and Commit then fails, when the
// snapshot alone would exceed the spool's byte bound.
func (w *Writer) Write(p []byte) (int, error) {
	switch {
	case w.done == nil:
		return 0, fail.New(fail.Internal, "spool: write to a snapshot already committed or aborted")
	case w.err != nil:
		return 0, w.err
	case w.n+int64(len(p)) > w.s.maxBytes:
		w.err = fail.New(fail.Usage, "spool: the configuration is larger than spool-max-bytes (%d bytes); raise spool-max-bytes", w.s.maxBytes)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.hash.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		w.err = osErr(err, "writing the snapshot")
		return n, w.err
	}
	return n, nil
}

// Reset drops what was written so far, so that the snapshot can be read again
// from the start: a read that the switch's commits overtook is not kept.
func (w *Writer) Reset() error {
	if w.done == nil {
		return fail.New(fail.Internal, "spool: reset of a snapshot already committed or aborted")
	}
	if err := w.f.Truncate(0); err != nil {
		return osErr(err, "starting the snapshot again")
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return osErr(err, "starting the snapshot again")
	}
	w.hash.Reset()
	w.n, w.err = 0, nil
	return nil
}

// Path returns the file the snapshot is being written to, until Commit or Abort.
func (w *Writer) Path() string { return w.f.Name() }

// Reopen opens what was written so far for reading, e.g. to find the host
// name before the snapshot is named. The caller closes it.
func (w *Writer) Reopen() (*os.File, error) {
	if w.done == nil {
		return nil, fail.New(fail.Internal, "spool: reopening a snapshot already committed or aborted")
	}
	f, err := openFile(w.f.Name(), os.O_RDONLY, 0)
	if err != nil {
		return nil, osErr(err, "reopening the snapshot")
	}
	return f, nil
}

// Abort discards the snapshot. It does nothing after Commit or a previous
// Abort, so it can be deferred.
func (w *Writer) Abort() {
	if w.done == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
	w.done()
	w.done = nil
}

// Commit makes the snapshot an entry to be delivered to each of targets. It
// sets rec.Size and rec.SHA256 from what was written, makes the content and
// then the metadata durable, and then drops the oldest entries beyond the
// spool's bounds, logging each. The Writer is finished either way.
func (w *Writer) Commit(rec snapshot.Record, targets []string) (Entry, error) {
	if w.done == nil {
		return Entry{}, fail.New(fail.Internal, "spool: commit of a snapshot already committed or aborted")
	}
	defer w.Abort() // on failure; after success there is nothing left to abort
	if w.err != nil {
		return Entry{}, w.err
	}
	var uniq []string
	for _, t := range targets {
		if !slices.Contains(uniq, t) {
			uniq = append(uniq, t)
		}
	}
	if len(uniq) == 0 {
		return Entry{}, fail.New(fail.Usage, "spool: no target to deliver the snapshot to; set option target")
	}
	rec.Size = w.n
	rec.SHA256 = hex.EncodeToString(w.hash.Sum(nil))
	if err := w.f.Sync(); err != nil {
		return Entry{}, osErr(err, "writing the snapshot")
	}
	if err := w.f.Close(); err != nil {
		return Entry{}, osErr(err, "writing the snapshot")
	}

	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	canonical, err := s.link(&rec)
	if err != nil {
		return Entry{}, err
	}
	m, err := json.Marshal(meta{Record: rec, Targets: uniq, Canonical: canonical})
	if err != nil {
		return Entry{}, fail.New(fail.Internal, "spool: encoding the snapshot's record: %w", err)
	}
	dir := filepath.Join(s.dir, snapsDir)
	names, err := readNames(dir)
	if err != nil {
		return Entry{}, err
	}
	seq := s.nextSeq(names, s.lastID)
	id := formatSeq(seq)
	// Content first: an entry exists once its .meta does, and must have content then.
	if err := os.Rename(w.f.Name(), contentPath(s.dir, id)); err != nil {
		return Entry{}, osErr(err, "spooling the snapshot")
	}
	if err := syncDir(dir); err != nil {
		os.Remove(contentPath(s.dir, id))
		return Entry{}, err
	}
	if err := writeAtomic(dir, id+".meta", m, 0o600); err != nil {
		os.Remove(contentPath(s.dir, id))
		return Entry{}, err
	}
	s.lastID = seq
	e := Entry{ID: id, Record: rec, Targets: uniq, Canonical: canonical}

	// The snapshot is safe now. Housekeeping that fails is logged, not
	// returned: Open redoes it, and the caller must not retry the snapshot.
	// A head not written is found again in the entry (see head), unless
	// enforceBounds drops it first: the chain then restarts, openly.
	if err := s.setHead(rec.Seq, canonical); err != nil {
		s.logf("spool: snapshot %s spooled, but: %v", id, err)
	}
	entries, err := s.list()
	if err == nil {
		entries, err = s.enforceBounds(entries)
	}
	if err == nil {
		err = s.writePending(len(entries))
	}
	if err != nil {
		s.logf("spool: snapshot %s spooled, but: %v", id, err)
	}
	w.done() // only now: recover must not see the drops and the pending count half done
	w.done = nil
	return e, nil
}

// Pending returns the undelivered snapshots, oldest first.
func (s *Spool) Pending() ([]Entry, error) {
	return s.list()
}

// Open opens the content of an entry for reading. The caller closes it.
func (s *Spool) Open(e Entry) (*os.File, error) {
	if !isEntryID(e.ID) {
		return nil, fail.New(fail.Internal, "spool: %q is not an entry of this spool; pass entries as Pending returned them", e.ID)
	}
	f, err := openFile(contentPath(s.dir, e.ID), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail.New(fail.Internal, "spool: snapshot %s is no longer spooled (delivered or dropped meanwhile)", e.ID)
	}
	if err != nil {
		return nil, osErr(err, "opening snapshot %s", e.ID)
	}
	return f, nil
}

// Delivered records that e reached target, at location (where a reader finds
// it, added to the record's Stored for the notifications still to come): the
// target is removed from the entry, and the entry from the spool once no target
// remains. Call it with the worker lock held. Delivering to a target twice, or
// an entry no longer spooled, is not an error.
func (s *Spool) Delivered(e Entry, target, location string) error {
	if !isEntryID(e.ID) {
		return fail.New(fail.Internal, "spool: %q is not an entry of this spool; pass entries as Pending returned them", e.ID)
	}
	done, err := s.writing()
	if err != nil {
		return err
	}
	defer done()
	s.mu.Lock()
	defer s.mu.Unlock()
	// The file, not e, says what is left: e may be older than another delivery.
	m, err := readMeta(s.dir, e.ID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	i := slices.Index(m.Targets, target)
	if i < 0 {
		return nil
	}
	m.Targets = slices.Delete(m.Targets, i, i+1)
	if location != "" {
		m.Record.Stored = append(m.Record.Stored, location)
	}
	if len(m.Targets) == 0 {
		if err := s.removeEntry(e.ID); err != nil {
			return err
		}
	} else {
		b, err := json.Marshal(m)
		if err != nil {
			return fail.New(fail.Internal, "spool: encoding the snapshot's record: %w", err)
		}
		if err := writeAtomic(filepath.Join(s.dir, snapsDir), e.ID+".meta", b, 0o600); err != nil {
			return err
		}
	}
	entries, err := s.list()
	if err != nil {
		return err
	}
	return s.writePending(len(entries))
}

// readMeta reads the .meta of entry id.
func readMeta(dir, id string) (meta, error) {
	var m meta
	b, err := readFile(metaPath(dir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	if err != nil {
		return m, osErr(err, "reading snapshot %s", id)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fail.New(fail.Internal, "spool: snapshot %s: %s is damaged (%v); remove it and its .json", id, metaPath(dir, id), err)
	}
	return m, nil
}

// list reads the entries, oldest first. A damaged entry is logged and left
// out, so that it does not hold up the others.
func (s *Spool) list() ([]Entry, error) {
	names, err := readNames(filepath.Join(s.dir, snapsDir))
	if err != nil {
		return nil, err
	}
	var entries []Entry
	for _, name := range names { // in name order, which is ID order
		id, ok := strings.CutSuffix(name, ".meta")
		if !ok || !isEntryID(id) {
			continue
		}
		m, err := readMeta(s.dir, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // delivered meanwhile
		}
		if err != nil {
			s.logf("%v", err)
			continue
		}
		entries = append(entries, Entry{ID: id, Record: m.Record, Targets: m.Targets, Canonical: m.Canonical})
	}
	return entries, nil
}

// enforceBounds drops the oldest entries until at most maxCount remain and
// their sizes add up to at most maxBytes, logs each drop, and returns the
// entries kept. The newest entry always fits: Write refuses to grow a
// snapshot beyond maxBytes.
func (s *Spool) enforceBounds(entries []Entry) ([]Entry, error) {
	var total int64
	for _, e := range entries {
		total += e.Record.Size
	}
	for len(entries) > 0 && (len(entries) > s.maxCount || total > s.maxBytes) {
		e := entries[0]
		if err := s.removeEntry(e.ID); err != nil {
			return nil, err
		}
		s.logf("spool: dropped snapshot %s (id %s, %d bytes) to keep at most %d snapshots and %d bytes (spool-max-count, spool-max-bytes); it never reached %s",
			e.Record.Name, e.ID, e.Record.Size, s.maxCount, s.maxBytes, strings.Join(e.Targets, ", "))
		total -= e.Record.Size
		entries = entries[1:]
	}
	return entries, nil
}

// removeEntry removes the .meta first, so that the entry is gone at once; a
// configuration left behind by a kill is an orphan that recover removes.
func (s *Spool) removeEntry(id string) error {
	if err := remove(metaPath(s.dir, id)); err != nil {
		return err
	}
	if err := remove(contentPath(s.dir, id)); err != nil {
		return err
	}
	return syncDir(filepath.Join(s.dir, snapsDir))
}

// removeOrphans removes configurations without a .meta (a kill between the
// two renames of Commit, or between the two removals of removeEntry) and
// .meta files without a configuration (which no code path leaves, but which
// could never be delivered). Called by recover, when no write is in progress.
func (s *Spool) removeOrphans() error {
	dir := filepath.Join(s.dir, snapsDir)
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	removed := false
	for _, n := range names {
		if id, ok := strings.CutSuffix(n, ".json"); ok && isEntryID(id) && !have[id+".meta"] {
			if err := remove(filepath.Join(dir, n)); err != nil {
				return err
			}
			removed = true
		}
		if id, ok := strings.CutSuffix(n, ".meta"); ok && isEntryID(id) && !have[id+".json"] {
			m, _ := readMeta(s.dir, id)
			if err := remove(filepath.Join(dir, n)); err != nil {
				return err
			}
			s.logf("spool: dropped snapshot %s (id %s): its configuration file was missing; it never reached %s",
				m.Record.Name, id, strings.Join(m.Targets, ", "))
			removed = true
		}
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

// writePending publishes the number of undelivered snapshots for the
// event-handler script, world-readable. An unchanged file is left alone: Open
// calls this on every event, inside the run-script window, and a rewrite
// costs two syncs.
func (s *Spool) writePending(n int) error {
	want := strconv.Itoa(n) + "\n"
	p := filepath.Join(s.dir, pendingFile)
	// A file that openFile refuses, a link say, is replaced, never followed.
	if f, err := openFile(p, os.O_RDONLY, 0); err == nil {
		fi, err := f.Stat()
		b := make([]byte, len(want)+1)
		n, _ := io.ReadFull(f, b)
		f.Close()
		if err == nil && fi.Mode() == 0o644 && string(b[:n]) == want {
			return nil
		}
	}
	return writeAtomic(s.dir, pendingFile, []byte(want), 0o644)
}

// String describes the spool for logs.
func (s *Spool) String() string {
	return fmt.Sprintf("spool %s (at most %d snapshots, %d bytes)", s.dir, s.maxCount, s.maxBytes)
}

// previousFile holds the last configuration captured, for the next capture's
// change summary. It is a hard link to the entry's content, so keeping it costs
// no copy, and it outlives the entry's delivery.
const previousFile = "previous.json"

// KeepAsPrevious makes e's configuration the one the next capture is compared with.
func (s *Spool) KeepAsPrevious(e Entry) error {
	done, err := s.writing() // a concurrent Open must not take tmp for a leftover
	if err != nil {
		return err
	}
	defer done()
	// A fresh name that link(2) creates or fails on, like CreateTemp's;
	// recover removes it if we die here.
	tmp := filepath.Join(s.dir, fmt.Sprintf("%s%s-%016x", tmpPrefix, previousFile, rand.Uint64()))
	if err := os.Link(contentPath(s.dir, e.ID), tmp); err != nil {
		return osErr(err, "keeping the snapshot for the next comparison")
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, previousFile)); err != nil {
		os.Remove(tmp)
		return osErr(err, "keeping the snapshot for the next comparison")
	}
	return syncDir(s.dir)
}

// Previous opens the last configuration captured; fs.ErrNotExist before the first.
func (s *Spool) Previous() (*os.File, error) {
	return openFile(filepath.Join(s.dir, previousFile), os.O_RDONLY, 0)
}
