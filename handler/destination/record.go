package destination

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Names of the files stored beside a snapshot NAME (or NAME.age) by WithRecords.
const (
	RecordSuffix    = ".rec.json" // the record's canonical JSON (snapshot.Canonical)
	SignatureSuffix = ".sig"      // an SSH signature of it, namespace RecordNamespace
)

// RecordNamespace is the SSH signature namespace of records: ssh-keygen -Y
// verify -n cfgsnap. It differs from git's, so a record's signature is never
// taken for a commit's, nor the other way round.
const RecordNamespace = "cfgsnap"

// A Signer signs a message in an SSH signature namespace, in the armored
// format of ssh-keygen -Y sign (package sshsig).
type Signer interface {
	Sign(namespace string, message []byte) (string, error)
}

// IsRecordName reports whether name is a file WithRecords stores beside a
// snapshot, which is not a snapshot itself (retention counts it with its own).
func IsRecordName(name string) bool {
	return strings.HasSuffix(name, RecordSuffix) || strings.HasSuffix(name, SignatureSuffix)
}

// WithRecords stores beside each snapshot NAME its record NAME.rec.json, the
// exact bytes whose sha256 the switch's next record holds in prev, and, with
// a signer, NAME.sig, their SSH signature. d saves the snapshot (perhaps
// encrypting it); plain, which is d or one it wraps, saves the record files
// as they are: with encryption they stay readable, since a record holds
// names, hashes and who committed, never configuration, and whoever checks
// the chain must not need a private key. It is for destinations that keep
// each snapshot as a file of its own (file, sftp, scp, s3).
//
// The record files are saved after the snapshot, so a record never names a
// snapshot that is not there. A record spooled before the chain existed (no
// seq) gets none.
func WithRecords(d, plain Destination, signer Signer) Destination {
	return &recording{Destination: d, plain: plain, signer: signer}
}

type recording struct {
	Destination
	plain  Destination
	signer Signer // nil: no signature
}

// Unwrap returns the destination inside, for its optional interfaces.
func (r *recording) Unwrap() Destination { return r.Destination }

// Save saves the snapshot, then its record and signature.
func (r *recording) Save(ctx context.Context, rec snapshot.Record, data io.Reader) error {
	if err := r.Destination.Save(ctx, rec, data); err != nil || rec.Seq == 0 {
		return err
	}
	b, err := snapshot.Canonical(rec)
	if err != nil {
		return fail.As(fail.Internal, fmt.Errorf("%s: encoding the record of %s: %w", r, rec.Name, err))
	}
	if err := r.saveFile(ctx, rec, RecordSuffix, b); err != nil {
		return err
	}
	if r.signer == nil {
		return nil
	}
	sig, err := r.signer.Sign(RecordNamespace, b)
	if err != nil {
		return fail.As(fail.Internal, fmt.Errorf("%s: signing the record of %s: %w", r, rec.Name, err))
	}
	return r.saveFile(ctx, rec, SignatureSuffix, []byte(sig))
}

// saveFile saves b as rec.Name with suffix added, through plain.
func (r *recording) saveFile(ctx context.Context, rec snapshot.Record, suffix string, b []byte) error {
	f := snapshot.Record{Host: rec.Host, Name: rec.Name + suffix, Size: int64(len(b)), Taken: rec.Taken}
	return r.plain.Save(ctx, f, bytes.NewReader(b))
}
