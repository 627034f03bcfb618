package diff

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// listKeysTSV is ../shared/fixtures/srlinux/list-keys.tsv, copied byte for
// byte (a test keeps them equal); its header says where it comes from.
//
//go:embed listkeys.tsv
var listKeysTSV string

// Keys knows which leaves name the entries of each configuration list: the
// keys of the list in YANG. Its paths are schema paths, local names without
// module prefixes or keys: /acl/acl-filter/entry.
type Keys struct {
	lists map[string][]variant
}

// variant is one set of key leaves, in YANG order, that a list had in some
// releases.
type variant struct {
	leaves []string
	secret bool // a key leaf looks secret: its value must not name the entry
}

// SRLinux returns the keys of every SR Linux configuration list, from Nokia's
// YANG of releases 22.11 to 25.3.
func SRLinux() *Keys { return srlinux() }

var srlinux = sync.OnceValue(func() *Keys {
	k, err := ParseKeys(strings.NewReader(listKeysTSV))
	if err != nil {
		panic("embedded listkeys.tsv: " + err.Error()) // a test parses it
	}
	return k
})

// ParseKeys reads a table in the format of listkeys.tsv: "#" comment lines,
// then one line per list: its schema path, a tab, its key leaves separated by
// spaces, and optionally a tab and more columns. Where the keys changed between
// releases the second column is "KEYS (releases) | KEYS (releases)".
func ParseKeys(r io.Reader) (*Keys, error) {
	k := &Keys{lists: map[string][]variant{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		path, cols, ok := strings.Cut(line, "\t")
		keys, _, _ := strings.Cut(cols, "\t")
		if !ok || !strings.HasPrefix(path, "/") || strings.TrimSpace(keys) == "" {
			return nil, fmt.Errorf("list keys line %d: want a schema path, a tab and key leaves: %q", n, line)
		}
		var vs []variant
		for v := range strings.SplitSeq(keys, "|") {
			if i := strings.IndexByte(v, '('); i >= 0 {
				v = v[:i] // the releases it held in
			}
			leaves := strings.Fields(v)
			if len(leaves) == 0 {
				return nil, fmt.Errorf("list keys line %d: a variant without key leaves: %q", n, line)
			}
			if !slices.ContainsFunc(vs, func(o variant) bool { return slices.Equal(o.leaves, leaves) }) {
				vs = append(vs, variant{leaves: leaves, secret: slices.ContainsFunc(leaves, Secret)})
			}
		}
		// Most keys first: a later release that added a key (route's
		// origin-network-instance) wins when its entries carry it.
		slices.SortStableFunc(vs, func(a, b variant) int { return len(b.leaves) - len(a.leaves) })
		k.lists[path] = vs
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return k, nil
}

// Lookup returns the key leaves of the list at schema path, one set per
// variant the releases had, the longest first; ok is false for a list the table
// does not know.
func (k *Keys) Lookup(schema string) (variants [][]string, ok bool) {
	vs, ok := k.lists[schema]
	for _, v := range vs {
		variants = append(variants, slices.Clone(v.leaves))
	}
	return variants, ok
}

// Name returns how entry e, the i-th of the list at schema path, reads in a
// path: all its key leaves in YANG order, "[name=cpm][type=ipv4]". Of a list's
// variants the longest whose leaves e all has is used. Values are escaped as in
// gNMI paths ("\]" and "\\"), so no value can end the brackets early.
//
// A list the table does not know, or whose keys e lacks, is named by a guess:
// the best of e's scalar members that looks like a key (name, then id, index,
// *-id, *-index, then prefix, address, *-prefix, *-address, *-name; ties by
// member name) and not like a secret (see Secret); failing that, by e's
// position: "[3]". A variant with a key leaf that looks secret is never used
// (SR Linux has none up to 25.3; a test checks), so its entries get the guess.
func (k *Keys) Name(schema string, e map[string]any, i int) string {
	return name(k.lists[schema], e, i)
}

// name is Name with the list's variants looked up, once for all its entries.
func name(vs []variant, e map[string]any, i int) string {
	for _, v := range vs {
		if v.secret || !hasAll(e, v.leaves) {
			continue
		}
		var b strings.Builder
		for _, l := range v.leaves {
			val, _ := member(e, l)
			writeKey(&b, l, val)
		}
		return b.String()
	}
	return guess(e, i)
}

func hasAll(e map[string]any, leaves []string) bool {
	for _, l := range leaves {
		if _, ok := member(e, l); !ok {
			return false
		}
	}
	return true
}

// member returns e's scalar member named leaf, with or without a module prefix.
func member(e map[string]any, leaf string) (any, bool) {
	v, ok := e[leaf]
	if !ok {
		for k, kv := range e {
			if local(k) == leaf {
				v, ok = kv, true
				break
			}
		}
	}
	return v, ok && scalar(v)
}

func scalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool, float64:
		return true
	}
	return false
}

func guess(e map[string]any, i int) string {
	best, rank := "", len(keyLike)
	for k, v := range e {
		name := local(k)
		r := slices.IndexFunc(keyLike, func(like func(string) bool) bool { return like(name) })
		if r < 0 || r > rank || !scalar(v) || Secret(name) || r == rank && k > best {
			continue
		}
		best, rank = k, r
	}
	if best == "" {
		return fmt.Sprintf("[%d]", i)
	}
	var b strings.Builder
	writeKey(&b, local(best), e[best])
	return b.String()
}

// keyLike ranks the member names that SR Linux uses as keys, best first.
var keyLike = []func(string) bool{
	func(k string) bool { return k == "name" },
	func(k string) bool {
		return k == "id" || k == "index" || strings.HasSuffix(k, "-id") || strings.HasSuffix(k, "-index")
	},
	func(k string) bool {
		return k == "prefix" || k == "address" || strings.HasSuffix(k, "-prefix") ||
			strings.HasSuffix(k, "-address") || strings.HasSuffix(k, "-name")
	},
}

var keyEscaper = strings.NewReplacer(`\`, `\\`, `]`, `\]`)

func writeKey(b *strings.Builder, leaf string, v any) {
	b.WriteByte('[')
	b.WriteString(leaf)
	b.WriteByte('=')
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	default:
		s = fmt.Sprint(v)
	}
	if strings.ContainsAny(s, `\]`) {
		s = keyEscaper.Replace(s)
	}
	b.WriteString(s)
	b.WriteByte(']')
}

// secretWords, anywhere in a member's name, mark its value as a secret or
// derived from one: "hashed-password", "snmp-community", "shared-secret".
var secretWords = []string{"password", "passwd", "passphrase", "secret", "community", "credential", "token", "private"}

// secretEnds mark it at the end of a word: "key", "auth-key", "authkey",
// "psk", "hash"; not "keychain".
var secretEnds = []string{"key", "psk", "hash"}

// Secret reports whether a member name looks like it holds a secret: it
// contains password, passwd, passphrase, secret, community, credential, token
// or private, or one of its words (split at "-" and "_") ends in key, psk or
// hash. The rule errs towards secret: a wrong guess only costs an entry its
// name (it is then named by position), a wrong miss would publish a secret.
// No entry is ever named by such a member.
func Secret(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	for w := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '-' || r == '_' }) {
		for _, end := range secretEnds {
			if strings.HasSuffix(w, end) {
				return true
			}
		}
	}
	return false
}
