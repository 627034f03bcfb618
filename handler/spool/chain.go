package spool

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// chainFile holds the head of this switch's chain of records: the newest
// record's sequence number and the sha256 of its canonical bytes.
const chainFile = "chain"

type chainHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// head is where the chain stands: the newer of the chain file and the newest
// chained entry still spooled, so that a kill between an entry's .meta and the
// chain file neither forks the chain nor loses its link. ok is false when
// neither exists: the chain starts anew. Call it with s.mu held.
func (s *Spool) head() (h chainHead, ok bool, err error) {
	p := filepath.Join(s.dir, chainFile)
	b, err := readFile(p)
	if err == nil {
		err = json.Unmarshal(b, &h)
		if err == nil && (h.Seq < 1 || len(h.Hash) != 64) {
			err = errors.New("no sequence number and hash")
		}
	}
	switch {
	case err == nil:
		ok = true
	case !errors.Is(err, fs.ErrNotExist):
		// A head that cannot be read or trusted must not cost the snapshot:
		// the chain restarts, and the record says so openly.
		s.logf("spool: %s is unusable (%v); the chain of records restarts", p, err)
		h = chainHead{}
	}
	entries, err := s.list()
	if err != nil {
		return h, false, err
	}
	for _, e := range entries {
		if e.Record.Seq > h.Seq && len(e.Canonical) > 0 {
			h, ok = chainHead{Seq: e.Record.Seq, Hash: snapshot.Link(e.Canonical)}, true
		}
	}
	return h, ok, nil
}

// link chains rec to the head and returns its canonical bytes. Call it with
// s.mu held.
func (s *Spool) link(rec *snapshot.Record) ([]byte, error) {
	h, ok, err := s.head()
	if err != nil {
		return nil, err
	}
	rec.Seq, rec.Prev, rec.ChainRestarted = h.Seq+1, h.Hash, !ok
	if !ok {
		rec.Seq, rec.Prev = 1, ""
	}
	b, err := snapshot.Canonical(*rec)
	if err != nil {
		return nil, fail.New(fail.Internal, "spool: encoding the snapshot's record: %w", err)
	}
	return b, nil
}

// setHead makes the record with canonical bytes b the chain's head.
func (s *Spool) setHead(seq int64, b []byte) error {
	j, err := json.Marshal(chainHead{Seq: seq, Hash: snapshot.Link(b)})
	if err != nil {
		return fail.New(fail.Internal, "spool: encoding the chain's head: %w", err)
	}
	return writeAtomic(s.dir, chainFile, append(j, '\n'), 0o600)
}
