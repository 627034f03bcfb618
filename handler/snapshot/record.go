package snapshot

import (
	"fmt"
	"strings"
	"time"
)

// Record is the metadata that travels with a snapshot: it is stored next to the
// spooled file, sent in reports, and holds the values that Name turns into a
// file name. Field values are stored as received; only Name sanitises them.
type Record struct {
	Host       string    `json:"host"`
	LastChange time.Time `json:"last_change,omitzero"` // system configuration last-change after its newest commit
	User       string    `json:"user"`                 // who made the change (newest commit's username)
	Comment    string    `json:"comment,omitempty"`    // commit comment, or the comment of a manual snapshot
	Commits    []Commit  `json:"commits,omitempty"`    // every commit whose change it holds since the previous snapshot, oldest first
	// Unsettled marks a snapshot whose read never settled: the switch kept
	// committing while it was read, so it holds Commits and perhaps some of
	// Possibly, and is named for the newest commit that completed before the read.
	Unsettled bool      `json:"unsettled,omitempty"`
	Possibly  []Commit  `json:"possibly_included,omitempty"` // commits that ran or completed during an unsettled read
	Manual    bool      `json:"manual"`                      // taken on request rather than by an event
	Taken     time.Time `json:"taken"`                       // when cfgsnap read the configuration
	Name      string    `json:"name"`                        // file name below each target, from Name
	Size      int64     `json:"size"`                        // bytes of the configuration
	SHA256    string    `json:"sha256"`                      // lower-case hex digest of the configuration
	Changes   *Changes  `json:"changes,omitempty"`           // what changed since this switch's previous snapshot; nil: unknown
	Stored    []string  `json:"stored,omitempty"`            // where the snapshot already is, for notifications
	// Redacted marks a snapshot whose secrets option redact replaced with
	// markers (package redact) before it was spooled: Size and SHA256 are of
	// the redacted file, which is not the switch's configuration. A restore
	// must refuse it: loading it would set every redacted password and key to
	// its marker. RedactedValues counts the values replaced.
	Redacted       bool `json:"redacted,omitempty"`
	RedactedValues int  `json:"redacted_values,omitempty"`
	// The chain (see Canonical): Seq numbers this switch's records from the
	// chain's start, and Prev is the sha256 (hex) of the previous record's
	// canonical JSON, empty where a chain starts, which ChainRestarted marks:
	// the spool knew no previous record (a new or a lost spool).
	Seq            int64  `json:"seq,omitempty"`
	Prev           string `json:"prev,omitempty"`
	ChainRestarted bool   `json:"chain_restarted,omitempty"`
}

// Changes counts what changed between two snapshots of one switch, by leaf path
// of the configuration (a list entry's path names its keys), so a reader sees who
// changed what without opening the diff.
type Changes struct {
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
	// Paths names the first few: "+" added, "-" removed, "~" changed.
	Paths []string `json:"paths,omitempty"`
}

// None reports whether nothing changed.
func (c *Changes) None() bool { return c != nil && c.Added == 0 && c.Removed == 0 && c.Changed == 0 }

// String is one line: "2 added, 1 removed, 3 changed: +/interface[name=e1-1]/description ...".
func (c *Changes) String() string {
	if c == nil {
		return "changes unknown"
	}
	s := fmt.Sprintf("%d added, %d removed, %d changed", c.Added, c.Removed, c.Changed)
	if len(c.Paths) > 0 {
		s += ": " + strings.Join(c.Paths, " ")
	}
	return s
}

// timestampLayout has no colons (not allowed in every file system, and a drive
// separator to some tools) and sorts as text in time order for years 0 to 9999.
const timestampLayout = "20060102T150405.000Z"

// Timestamp formats t in UTC as a sortable, file-system safe string that keeps
// SR Linux's milliseconds, e.g. 20250920T110208.456Z, so that two commits in the
// same second still get different names.
func Timestamp(t time.Time) string {
	return t.UTC().Format(timestampLayout)
}
