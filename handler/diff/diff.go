// Package diff summarises what changed between two configurations of one
// switch: the leaf paths added, removed and changed, counted and the first few
// named, so a commit message or a notification says what changed without the
// whole diff.
package diff

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// MaxPaths is how many paths a summary names; the counts cover them all.
const MaxPaths = 10

// Compare summarises the change from old to new, both SR Linux configurations
// as JSON. Paths read as in SR Linux's CLI, without module prefixes:
// /interface[name=ethernet-1/1]/description. The "_preamble" of saved files is
// left out: its timestamp changes on every save, not the configuration.
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
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object")
	}
	delete(top, "_preamble")
	out := map[string]uint64{}
	walk("", top, out)
	return out, nil
}

func walk(path string, v any, out map[string]uint64) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			out[path] = hash(v) // a presence container, e.g. an empty "{}" that enables something
		}
		for k, child := range v {
			walk(path+"/"+local(k), child, out)
		}
	case []any:
		if !isList(v) {
			out[path] = hash(v) // a leaf-list: one value
			return
		}
		for i, e := range v {
			walk(path+key(e.(map[string]any), i), e, out)
		}
	default:
		out[path] = hash(v)
	}
}

// isList tells a YANG list (entries are objects) from a leaf-list.
func isList(a []any) bool {
	for _, e := range a {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return len(a) > 0
}

// key names a list entry by its key, as SR Linux does. JSON keeps no schema,
// so the key is guessed from SR Linux's naming: "name" for most lists, else a
// member named like a key (sequence-id, index, prefix, address, ...), else the
// first scalar member by name; an entry with none is named by its position.
func key(e map[string]any, i int) string {
	var scalars []string
	for k, v := range e {
		switch v.(type) {
		case string, json.Number, bool:
			scalars = append(scalars, k)
		}
	}
	if len(scalars) == 0 {
		return fmt.Sprintf("[%d]", i)
	}
	sort.Slice(scalars, func(a, b int) bool {
		ra, rb := keyRank(local(scalars[a])), keyRank(local(scalars[b]))
		if ra != rb {
			return ra < rb
		}
		return scalars[a] < scalars[b]
	})
	return fmt.Sprintf("[%s=%v]", local(scalars[0]), e[scalars[0]])
}

func keyRank(k string) int {
	switch {
	case k == "name":
		return 0
	case k == "id" || k == "index" || strings.HasSuffix(k, "-id") || strings.HasSuffix(k, "-index"):
		return 1
	case k == "prefix" || k == "address" || strings.HasSuffix(k, "-address") || strings.HasSuffix(k, "-prefix") || strings.HasSuffix(k, "-name"):
		return 2
	}
	return 3
}

// local drops a YANG module prefix: srl_nokia-interfaces:interface -> interface.
func local(k string) string {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		return k[i+1:]
	}
	return k
}

func hash(v any) uint64 {
	h := fnv.New64a()
	b, _ := json.Marshal(v) // values decoded from JSON always encode
	h.Write(b)
	return h.Sum64()
}
