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
	"slices"
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
	keys := SRLinux()
	before := map[string]leaf{}
	if err := keys.Leaves(old, func(p string, h uint64) { before[p] = leaf{hash: h} }); err != nil {
		return nil, fmt.Errorf("previous configuration: %w", err)
	}
	// The new configuration is checked off against the old as it is read, so
	// only one of them is ever held as paths.
	c := &snapshot.Changes{}
	var named firstPaths
	err := keys.Leaves(new, func(p string, h uint64) {
		l, ok := before[p]
		switch {
		case l.seen:
			return // a path read twice: only entries named by a guess can repeat one
		case !ok:
			c.Added++
			named.add('+', p)
		case l.hash != h:
			c.Changed++
			named.add('~', p)
		}
		before[p] = leaf{hash: h, seen: true}
	})
	if err != nil {
		return nil, fmt.Errorf("new configuration: %w", err)
	}
	for p, l := range before {
		if !l.seen {
			c.Removed++
			named.add('-', p)
		}
	}
	c.Paths = named
	return c, nil
}

// leaf is a path's value, hashed, and whether the new configuration has it.
type leaf struct {
	hash uint64
	seen bool
}

// firstPaths holds the MaxPaths first changes by path, each marked "+", "-" or
// "~", in order: a summary never holds more, however much changed.
type firstPaths []string

func (f *firstPaths) add(mark byte, p string) {
	if len(*f) == MaxPaths && p > (*f)[MaxPaths-1][1:] {
		return
	}
	i := sort.Search(len(*f), func(i int) bool { return (*f)[i][1:] > p })
	*f = slices.Insert(*f, i, string(mark)+p)
	if len(*f) > MaxPaths {
		*f = (*f)[:MaxPaths]
	}
}
