// Package diff summarises what changed between two configurations of one
// switch: the leaf paths added, removed and changed, counted and the first few
// named, so a commit message or a notification says what changed without the
// whole diff.
//
// Summaries carry paths, never values: a changed password, TLS key or SNMP
// community shows as "~/system/tls/server-profile[name=p]/key", and values are
// held only as hashes. The only values in a path are list keys, as in SR
// Linux's own paths, and only keys that do not look secret.
//
// A path names each list entry by its real key leaves, from Nokia's YANG of
// releases 22.11 to 25.3 (listkeys.tsv, a copy of the shared fixture
// list-keys.tsv): /acl/acl-filter[name=cpm][type=ipv4]/entry[sequence-id=10]/description.
// Key values escape "]" and "\" with a backslash, as gNMI paths do. An entry
// of a list the table does not know is named by a member that looks like a key
// and not like a secret, else by its position (see Keys.Name). Keys and
// Keys.Leaves are that naming on their own, for commands that diff or blame.
package diff

import (
	"fmt"
	"io"
	"sort"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// MaxPaths is how many paths a summary names; the counts cover them all.
const MaxPaths = 10

// Compare summarises the change from old to new, both SR Linux configurations
// as JSON, with the paths of SRLinux().Leaves: as in SR Linux's CLI, without
// module prefixes, /interface[name=ethernet-1/1]/description. The "_preamble"
// of saved files is left out: its timestamp changes on every save, not the
// configuration.
func Compare(old, new io.Reader) (*snapshot.Changes, error) {
	before, err := leaves(old)
	if err != nil {
		return nil, fmt.Errorf("previous configuration: %w", err)
	}
	after, err := leaves(new)
	if err != nil {
		return nil, fmt.Errorf("new configuration: %w", err)
	}
	c := &snapshot.Changes{}
	var named []string
	for p, h := range after {
		switch old, ok := before[p]; {
		case !ok:
			c.Added++
			named = append(named, "+"+p)
		case old != h:
			c.Changed++
			named = append(named, "~"+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			c.Removed++
			named = append(named, "-"+p)
		}
	}
	sort.Slice(named, func(i, j int) bool { return named[i][1:] < named[j][1:] })
	if len(named) > MaxPaths {
		named = named[:MaxPaths]
	}
	c.Paths = named
	return c, nil
}

// leaves maps every leaf path of a configuration to a hash of its value: the
// hash keeps a large configuration's summary from holding every value twice.
func leaves(r io.Reader) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := SRLinux().Leaves(r, func(p string, h uint64) { out[p] = h })
	return out, err
}
