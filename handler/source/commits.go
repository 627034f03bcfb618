package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// parseCommits finds the "system configuration commit" list in a JSON document and
// returns it sorted by id, which is oldest first: SR Linux numbers commits upwards
// from 1, the boot commit. A document without the list means no commits: (nil, nil).
//
// No public sample of this list exists (fixtures/srlinux/README.md). The nearest
// evidence of sr_cli's "| as json" shape is lance0/rustbgpd,
// tests/interop/scripts/m119_bundle_oracle.py, which reads the saved output of
// sr_cli "info with-context from state network-instance default protocols bgp
// neighbor ... | as json" as {"network-instance":[{"protocols":{"bgp":{"neighbor":
// [{...}]}}}]}: the path from the root, no module prefixes, lists as arrays of
// objects, numeric leaves as JSON numbers. Whether the output without
// "with-context" starts at the root or at the list is not documented, so the
// parser accepts every shape the two sources can plausibly produce:
//   - the list at any depth, under "system" and "configuration" or not, and inside
//     JSON-RPC's result or not;
//   - keys with or without a YANG module prefix ("srl_nokia-configuration:commit");
//   - a bare list, or a single entry as an object;
//   - ids as JSON numbers or strings;
//   - dates (srl_nokia-common date-and-time-delta: RFC 3339) with or without the
//     " (2 seconds ago)" that the CLI shows for that type
//     (fixtures/srlinux/state-system-configuration-checkpoints.txt).
func parseCommits(doc []byte) ([]snapshot.Commit, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	entries := findCommitList(v)
	if len(entries) == 0 {
		return nil, nil
	}
	byID := make(map[int64]snapshot.Commit, len(entries))
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a commit list entry is %s, not an object", jsonKind(e))
		}
		c, err := parseCommit(m)
		if err != nil {
			return nil, err
		}
		byID[c.ID] = c
	}
	out := make([]snapshot.Commit, 0, len(byID))
	for _, c := range byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// findCommitList searches v breadth first, so that the shallowest "commit" wins.
func findCommitList(v any) []any {
	if l, ok := v.([]any); ok && looksLikeCommits(l) {
		return l
	}
	queue := []any{v}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		switch n := n.(type) {
		case map[string]any:
			keys := make([]string, 0, len(n))
			for k := range n {
				keys = append(keys, k)
			}
			sort.Strings(keys) // the same document always yields the same list
			for _, k := range keys {
				if localName(k) != "commit" {
					continue
				}
				switch c := n[k].(type) {
				case []any:
					return c
				case map[string]any:
					if _, ok := lookup(c, "id"); ok {
						return []any{c}
					}
				}
			}
			for _, k := range keys {
				queue = append(queue, n[k])
			}
		case []any:
			queue = append(queue, n...)
		}
	}
	return nil
}

func looksLikeCommits(l []any) bool {
	if len(l) == 0 {
		return false
	}
	m, ok := l[0].(map[string]any)
	if !ok {
		return false
	}
	_, id := lookup(m, "id")
	_, status := lookup(m, "status")
	return id && status
}

// localName strips a YANG module prefix: "srl_nokia-configuration:commit" -> "commit".
func localName(k string) string {
	return k[strings.LastIndexByte(k, ':')+1:]
}

// lookup finds key in m with or without a module prefix.
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if localName(k) == key {
			return v, true
		}
	}
	return nil, false
}

func parseCommit(m map[string]any) (snapshot.Commit, error) {
	var c snapshot.Commit
	idv, ok := lookup(m, "id")
	if !ok {
		return c, fmt.Errorf("a commit has no id")
	}
	id, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(idv)), 10, 64)
	if err != nil || id < 0 {
		return c, fmt.Errorf("a commit has id %v, not a whole number", idv)
	}
	c.ID = id
	str := func(key string) string {
		v, _ := lookup(m, key)
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	c.Type, c.Status = strings.TrimSpace(str("type")), strings.TrimSpace(str("status"))
	c.Name, c.Comment, c.Username = str("name"), str("comment"), str("username")
	if c.Started, err = parseDate(str("started")); err != nil {
		return c, fmt.Errorf("commit %d: started: %v", id, err)
	}
	if c.Ended, err = parseDate(str("ended")); err != nil {
		return c, fmt.Errorf("commit %d: ended: %v", id, err)
	}
	return c, nil
}

// parseDate reads a date-and-time-delta: RFC 3339, perhaps followed by the CLI's
// " (N seconds ago)". An empty value (ended, while the commit runs) is the zero time.
func parseDate(s string) (time.Time, error) {
	if i := strings.IndexByte(s, '('); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date", s)
	}
	return t.UTC(), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}
