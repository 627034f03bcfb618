package diff_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func compare(t *testing.T, old, new string) (added, removed, changed int, paths []string) {
	t.Helper()
	c, err := diff.Compare(strings.NewReader(old), strings.NewReader(new))
	if err != nil {
		t.Fatal(err)
	}
	return c.Added, c.Removed, c.Changed, c.Paths
}

func TestWhatAnEngineerChanged(t *testing.T) {
	old := `{"_preamble":{"header":{"created":"2024-09-12T21:46:13.869Z"}},
	 "srl_nokia-interfaces:interface":[{"name":"ethernet-1/1","admin-state":"enable","description":"to spine1"},
	                                   {"name":"ethernet-1/2","admin-state":"enable"}],
	 "srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":"leaf1"}}}`
	new := `{"_preamble":{"header":{"created":"2025-01-01T00:00:00.000Z"}},
	 "srl_nokia-interfaces:interface":[{"name":"ethernet-1/1","admin-state":"disable","description":"to spine1"},
	                                   {"name":"ethernet-1/3","admin-state":"enable","mtu":9000}],
	 "srl_nokia-system:system":{"srl_nokia-system-name:name":{"host-name":"leaf1"}}}`
	a, r, c, paths := compare(t, old, new)
	if a != 3 || r != 2 || c != 1 {
		t.Errorf("added %d removed %d changed %d, want 3 2 1 (preamble ignored)", a, r, c)
	}
	want := []string{
		"~/interface[name=ethernet-1/1]/admin-state",
		"-/interface[name=ethernet-1/2]/admin-state",
		"-/interface[name=ethernet-1/2]/name",
		"+/interface[name=ethernet-1/3]/admin-state",
		"+/interface[name=ethernet-1/3]/mtu",
		"+/interface[name=ethernet-1/3]/name",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("paths\n%q\nwant\n%q", paths, want)
	}
}

func TestUnchangedAndReordered(t *testing.T) {
	cfg := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
	var doc map[string]any
	json.Unmarshal(cfg, &doc)
	reindented, _ := json.MarshalIndent(doc, "", "    ") // same configuration, other layout and key order
	c, err := diff.Compare(bytes.NewReader(cfg), bytes.NewReader(reindented))
	if err != nil {
		t.Fatal(err)
	}
	if !c.None() {
		t.Errorf("same configuration reported as %s", c)
	}
}

func TestLeafListsAndKeys(t *testing.T) {
	a, r, c, paths := compare(t,
		`{"acl":{"entry":[{"sequence-id":10,"action":"accept"}]},"ntp":{"server":["1.1.1.1","2.2.2.2"]}}`,
		`{"acl":{"entry":[{"sequence-id":10,"action":"drop"}]},"ntp":{"server":["2.2.2.2","1.1.1.1"]}}`)
	if a != 0 || r != 0 || c != 2 {
		t.Errorf("%d %d %d %q: want the action and the (ordered) leaf-list changed", a, r, c, paths)
	}
	if !slices.Contains(paths, "~/acl/entry[sequence-id=10]/action") {
		t.Errorf("a list the table does not know is keyed by a member named like a key: %q", paths)
	}
}

func TestNamesAtMostMaxPaths(t *testing.T) {
	var b strings.Builder
	var all []string
	b.WriteString(`{"interface":[`)
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		name := "e" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		b.WriteString(`{"name":"` + name + `"}`)
		all = append(all, "+/interface[name="+name+"]/name")
	}
	b.WriteString(`]}`)
	a, _, _, paths := compare(t, `{}`, b.String())
	slices.Sort(all)
	if a != 50 || !slices.Equal(paths, all[:diff.MaxPaths]) {
		t.Errorf("added %d, named %q: want 50 counted, the first %d by path named", a, paths, diff.MaxPaths)
	}
}

func TestNotJSON(t *testing.T) {
	if _, err := diff.Compare(strings.NewReader(`set / system name host-name leaf1`), strings.NewReader(`{}`)); err == nil {
		t.Error("a flat configuration was compared")
	}
}
