package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Canonical is the record as it is chained and signed: its JSON without
// Stored, which grows as the snapshot is delivered and so cannot be part of
// what proves it. The same record always gives the same bytes; the next
// record's Prev is the sha256 of exactly these bytes, wherever they land.
func Canonical(rec Record) ([]byte, error) {
	rec.Stored = nil
	return json.Marshal(rec)
}

// Link is the hash a record's successor holds in Prev: the lower-case hex
// sha256 of the record's canonical bytes.
func Link(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}
