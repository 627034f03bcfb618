package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Leaves reads an SR Linux configuration as JSON and calls leaf with the path
// and a hash of the value of each of its leaves (a leaf-list and an empty
// presence container count as one leaf each). Paths read as in SR Linux's CLI,
// without module prefixes, list entries named by Name:
// /acl/acl-filter[name=cpm][type=ipv4]/entry[sequence-id=10]/description.
// The hash is FNV-1a over the value's type and text: equal values hash equal,
// whatever the layout or member order, so two configurations compare by hash
// without holding any value. The "_preamble" of saved files is left out: its
// timestamp changes on every save, not the configuration.
func (k *Keys) Leaves(r io.Reader, leaf func(path string, sum uint64)) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("not a JSON object")
	}
	delete(top, "_preamble")
	w := walker{k, leaf}
	w.walk("", "", top)
	return nil
}

type walker struct {
	keys *Keys
	leaf func(string, uint64)
}

// walk visits v at instance path and schema path, the latter with neither keys
// nor module prefixes, as the table's.
func (w walker) walk(path, schema string, v any) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 && path != "" { // an empty configuration is no leaf
			w.leaf(path, hash(v)) // a presence container, e.g. an empty "{}" that enables something
		}
		for k, child := range v {
			name := local(k)
			switch child.(type) {
			case map[string]any, []any:
				w.walk(path+"/"+name, schema+"/"+name, child)
			default:
				w.leaf(path+"/"+name, hash(child))
			}
		}
	case []any:
		if !isList(v) {
			w.leaf(path, hash(v)) // a leaf-list: one value
			return
		}
		vs := w.keys.lists[schema]
		for i, e := range v {
			e := e.(map[string]any)
			w.walk(path+name(vs, e, i), schema, e)
		}
	default:
		w.leaf(path, hash(v))
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

// local drops a YANG module prefix: srl_nokia-interfaces:interface -> interface.
func local(k string) string {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		return k[i+1:]
	}
	return k
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hash is FNV-1a of a type letter and the value's text, so the string "true"
// and the boolean true differ. Scalars, nearly every leaf, are hashed in place;
// the rest (leaf-lists, empty containers) as JSON, whose objects have sorted
// members.
func hash(v any) uint64 {
	switch v := v.(type) {
	case string:
		return fnv1a('s', v)
	case json.Number:
		return fnv1a('n', string(v))
	case bool:
		if v {
			return fnv1a('b', "true")
		}
		return fnv1a('b', "false")
	case nil:
		return fnv1a('z', "")
	}
	b, _ := json.Marshal(v) // values decoded from JSON always encode
	return fnv1a('j', string(b))
}

func fnv1a(kind byte, s string) uint64 {
	h := uint64(fnvOffset)
	h = (h ^ uint64(kind)) * fnvPrime
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}
