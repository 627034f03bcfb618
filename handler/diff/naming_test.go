package diff_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// fixtureKeys reads list-keys.tsv on its own, so that the paths the tests
// expect come from the table, not from the naming under test.
func fixtureKeys(t *testing.T) map[string][][]string {
	t.Helper()
	releases := regexp.MustCompile(`\([^)]*\)`)
	keys := map[string][][]string{}
	for line := range strings.Lines(string(testenv.ReadFixture(t, "list-keys.tsv"))) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		for _, v := range strings.Split(cols[1], "|") {
			keys[cols[0]] = append(keys[cols[0]], strings.Fields(releases.ReplaceAllString(v, "")))
		}
	}
	return keys
}

// entryName is how the table names entry e of the list at schema: the variant
// whose leaves e all has, the longest if several, each as [leaf=value].
func entryName(t *testing.T, table map[string][][]string, schema string, e map[string]any) (string, []string) {
	t.Helper()
	vs, ok := table[schema]
	if !ok {
		t.Fatalf("list %s is not in list-keys.tsv", schema)
	}
	var keys []string
	for _, v := range vs {
		if len(v) > len(keys) && !slices.ContainsFunc(v, func(k string) bool { _, ok := e[k]; return !ok }) {
			keys = v
		}
	}
	if keys == nil {
		t.Fatalf("an entry of %s has none of the key variants %q: %v", schema, vs, e)
	}
	esc := strings.NewReplacer(`\`, `\\`, `]`, `\]`)
	name := ""
	for _, k := range keys {
		name += "[" + k + "=" + esc.Replace(fmt.Sprint(e[k])) + "]"
	}
	return name, keys
}

// entry is one list entry of a configuration, with the leaves below it that
// are no key of any list, where a test can change it.
type entry struct {
	path   string
	m      map[string]any
	leaves []leafAt
}

type leafAt struct {
	holder map[string]any
	member string
	path   string
}

// entries lists every list entry of doc, its leaves its own before those of
// its containers and nested lists.
func entries(t *testing.T, table map[string][][]string, doc map[string]any) []*entry {
	t.Helper()
	var all []*entry
	var walk func(v map[string]any, path, schema string, keys []string, owners []*entry)
	walk = func(v map[string]any, path, schema string, keys []string, owners []*entry) {
		members := slices.Sorted(maps.Keys(v))
		for _, m := range members {
			switch v[m].(type) {
			case string, json.Number, bool:
				if !slices.Contains(keys, m) {
					for _, o := range owners {
						o.leaves = append(o.leaves, leafAt{v, m, path + "/" + local(m)})
					}
				}
			}
		}
		for _, m := range members {
			p, s := path+"/"+local(m), schema+"/"+local(m)
			switch c := v[m].(type) {
			case map[string]any:
				walk(c, p, s, nil, owners)
			case []any:
				if len(c) == 0 {
					continue
				}
				if _, ok := c[0].(map[string]any); !ok {
					continue // a leaf-list
				}
				for _, e := range c {
					e := e.(map[string]any)
					name, keys := entryName(t, table, s, e)
					en := &entry{path: p + name, m: e}
					all = append(all, en)
					walk(e, p+name, s, keys, append(slices.Clip(owners), en))
				}
			}
		}
	}
	delete(doc, "_preamble")
	walk(doc, "", "", nil, nil)
	return all
}

func local(k string) string { return k[strings.LastIndexByte(k, ':')+1:] }

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every entry of both real configurations, one leaf changed, is reported as
// that one leaf, at the path the YANG keys give it. An entry with no leaf but
// its keys gets one added instead.
func TestEveryListEntryOfTheRealConfigs(t *testing.T) {
	table := fixtureKeys(t)
	for file, want := range map[string]int{"srl-config-dcf-leaf11.json": 208, "srl-config-srlcontroller-test.json": 111} {
		t.Run(file, func(t *testing.T) {
			orig := testenv.ReadFixture(t, file)
			doc := decode(t, orig)
			all := entries(t, table, doc)
			if len(all) != want {
				t.Fatalf("found %d list entries, want %d", len(all), want)
			}
			for _, e := range all {
				var wantPath string
				var undo func()
				if len(e.leaves) == 0 {
					e.m["probe"] = "added"
					wantPath, undo = "+"+e.path+"/probe", func() { delete(e.m, "probe") }
				} else {
					l := e.leaves[0]
					old := l.holder[l.member]
					l.holder[l.member] = changed(t, old)
					wantPath, undo = "~"+l.path, func() { l.holder[l.member] = old }
				}
				c, err := diff.Compare(bytes.NewReader(orig), bytes.NewReader(marshal(t, doc)))
				undo()
				if err != nil {
					t.Fatal(err)
				}
				if c.Added+c.Removed+c.Changed != 1 || !slices.Equal(c.Paths, []string{wantPath}) {
					t.Errorf("%s: want only %s", c, wantPath)
				}
			}
		})
	}
}

// changed returns another value of the same JSON type.
func changed(t *testing.T, v any) any {
	switch v := v.(type) {
	case string:
		return v + "~"
	case json.Number:
		return v + "1"
	case bool:
		return !v
	}
	t.Fatalf("%v is no scalar", v)
	return nil
}

// leaf11's two control-plane filters are both named cpm, one of type ipv4 and
// one of type ipv6: a change in one is a change of that one.
func TestCPMFiltersOfBothTypes(t *testing.T) {
	orig := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
	for _, typ := range []string{"ipv4", "ipv6"} {
		doc := decode(t, orig)
		var entry10 map[string]any
		for _, f := range doc["srl_nokia-acl:acl"].(map[string]any)["acl-filter"].([]any) {
			if f := f.(map[string]any); f["name"] == "cpm" && f["type"] == typ {
				entry10 = f["entry"].([]any)[0].(map[string]any)
			}
		}
		if entry10["sequence-id"] != json.Number("10") {
			t.Fatalf("leaf11 has no entry 10 in its %s filter cpm", typ)
		}
		entry10["description"] = "changed"
		c, err := diff.Compare(bytes.NewReader(orig), bytes.NewReader(marshal(t, doc)))
		if err != nil {
			t.Fatal(err)
		}
		want := "~/acl/acl-filter[name=cpm][type=" + typ + "]/entry[sequence-id=10]/description"
		if c.Changed != 1 || c.Added+c.Removed != 0 || !slices.Equal(c.Paths, []string{want}) {
			t.Errorf("%s: want only %s", c, want)
		}
	}
}

func allLeaves(t *testing.T, keys *diff.Keys, config []byte) []string {
	t.Helper()
	var paths []string
	if err := keys.Leaves(bytes.NewReader(config), func(p string, _ uint64) { paths = append(paths, p) }); err != nil {
		t.Fatal(err)
	}
	return paths
}

// Entries that differ only in a second key never share a path: in the real
// configurations no two leaves do, and filters of one name and three types
// stay three.
func TestSecondKeyKeepsEntriesApart(t *testing.T) {
	for _, file := range []string{"srl-config-dcf-leaf11.json", "srl-config-srlcontroller-test.json"} {
		paths := allLeaves(t, diff.SRLinux(), testenv.ReadFixture(t, file))
		seen := map[string]bool{}
		for _, p := range paths {
			if seen[p] {
				t.Errorf("%s: two leaves at %s", file, p)
			}
			seen[p] = true
		}
	}

	filter := func(typ string) string {
		return `{"name":"f","type":"` + typ + `","entry":[{"sequence-id":10,"action":{"accept":{}}}]}`
	}
	three := `{"acl":{"acl-filter":[` + filter("ipv4") + `,` + filter("ipv6") + `,` + filter("mac") + `]}}`
	two := `{"acl":{"acl-filter":[` + filter("ipv4") + `,` + filter("mac") + `]}}`
	a, r, c, paths := compare(t, three, two)
	want := []string{
		"-/acl/acl-filter[name=f][type=ipv6]/entry[sequence-id=10]/action/accept",
		"-/acl/acl-filter[name=f][type=ipv6]/entry[sequence-id=10]/sequence-id",
		"-/acl/acl-filter[name=f][type=ipv6]/name",
		"-/acl/acl-filter[name=f][type=ipv6]/type",
	}
	if a != 0 || r != 4 || c != 0 || !slices.Equal(paths, want) {
		t.Errorf("%d added, %d removed, %d changed %q; want only\n%q", a, r, c, paths, want)
	}
}

// Password hashes, TLS keys and SNMP communities show in a summary as the
// path of what changed, never as its value, in a list (users, keyed by
// username) or not.
func TestSecretsAppearInNoPath(t *testing.T) {
	orig := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
	plant := func(v string, users ...string) []byte {
		doc := decode(t, orig)
		system := doc["srl_nokia-system:system"].(map[string]any)
		var list []any
		for _, u := range users {
			list = append(list, map[string]any{"username": u, "password": "$y$j9T$planted" + u + v, "role": []any{"ops"}})
		}
		system["srl_nokia-aaa:aaa"].(map[string]any)["authentication"].(map[string]any)["user"] = list
		system["srl_nokia-tls:tls"].(map[string]any)["server-profile"].([]any)[0].(map[string]any)["key"] = "-----BEGIN PRIVATE KEY-----\nplanted" + v
		group := system["srl_nokia-system-snmp:snmp"].(map[string]any)["access-group"].([]any)[0].(map[string]any)
		group["community-entry"].([]any)[0].(map[string]any)["community"] = "planted-community" + v
		return marshal(t, doc)
	}
	old, new := plant("1", "alice"), plant("2", "alice", "bob")
	c, err := diff.Compare(bytes.NewReader(old), bytes.NewReader(new))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"~/system/aaa/authentication/user[username=alice]/password",
		"+/system/aaa/authentication/user[username=bob]/password",
		"+/system/aaa/authentication/user[username=bob]/role",
		"+/system/aaa/authentication/user[username=bob]/username",
		"~/system/snmp/access-group[name=SNMPv2-RO-Community]/community-entry[name=RO-Community]/community",
		"~/system/tls/server-profile[name=clab-profile]/key",
	}
	if c.Added != 3 || c.Removed != 0 || c.Changed != 3 || !slices.Equal(c.Paths, want) {
		t.Errorf("%s\nwant 3 added, 3 changed:\n%q", c, want)
	}
	// The real configuration's own secrets too: admin-user's hash, the TLS key, the community.
	secrets := []string{"planted", "$y$", "$aes", "PRIVATE KEY"}
	paths := append(allLeaves(t, diff.SRLinux(), old), allLeaves(t, diff.SRLinux(), new)...)
	paths = append(paths, allLeaves(t, diff.SRLinux(), orig)...)
	for _, p := range append(paths, c.String()) {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				t.Errorf("a secret (%q) is in %s", s, p)
			}
		}
	}
}

// A list the table does not know is named by a member that looks like a key
// and not like a secret, else by position.
func TestUnknownListsFallBackWithoutSecrets(t *testing.T) {
	vault := `{"vendor-x:vault":{"store":[
		{"password":"pw-0","auth-key":"ak-0","private-key":"pk-0","snmp-community":"co-0","psk":"ps-0","token":"to-0","key-hash":"kh-0","admin-state":"enable"},
		{"name":"box","password":"pw-1","admin-state":"enable"},
		{"key-id":"ki-2","credential-id":"ci-2","peer-address":"10.0.0.2","admin-state":"enable"},
		{"sequence-id":30,"local-name":"ln-3","admin-state":"enable"}]}}`
	paths := allLeaves(t, diff.SRLinux(), []byte(vault))
	for _, want := range []string{
		"/vault/store[0]/admin-state",
		"/vault/store[name=box]/admin-state",
		"/vault/store[peer-address=10.0.0.2]/admin-state",
		"/vault/store[sequence-id=30]/admin-state",
	} {
		if !slices.Contains(paths, want) {
			t.Errorf("no %s in %q", want, paths)
		}
	}
	for _, p := range paths {
		if regexp.MustCompile(`(pw|ak|pk|co|ps|to|kh|ki|ci)-\d`).MatchString(p) {
			t.Errorf("a secret member names an entry: %s", p)
		}
	}
}

func TestSecret(t *testing.T) {
	for _, name := range []string{"password", "hashed-password", "passphrase", "secret", "shared-secret",
		"key", "private-key", "auth-key", "authentication-key", "authkey", "pre-shared-key", "psk",
		"community", "snmp-community", "token", "hash", "private", "srl_nokia-tls:key", "Password"} {
		if !diff.Secret(name) {
			t.Errorf("%s does not look secret", name)
		}
	}
	for _, name := range []string{"name", "keychain", "sequence-id", "description", "interface-name", "username", "index", "type"} {
		if diff.Secret(name) {
			t.Errorf("%s looks secret", name)
		}
	}
}

// No SR Linux list from 22.11 to 25.3 is keyed by a leaf that looks secret.
// Should one come, its entries are named as unknown lists' are.
func TestSecretKeyLeavesNeverNameEntries(t *testing.T) {
	for schema, variants := range fixtureKeys(t) {
		for _, v := range variants {
			for _, k := range v {
				if diff.Secret(k) {
					t.Errorf("%s is keyed by %s, which looks secret", schema, k)
				}
			}
		}
	}
	keys, err := diff.ParseKeys(strings.NewReader("# a table with secret keys\n/vault/peer\tname psk\t25.3.1\n/vault/token\ttoken\t25.3.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	paths := allLeaves(t, keys, []byte(`{"vault":{"peer":[{"name":"a","psk":"s3cret","mtu":1}],"token":[{"token":"t0ken","mtu":1}]}}`))
	slices.Sort(paths)
	want := []string{"/vault/peer[name=a]/mtu", "/vault/peer[name=a]/name", "/vault/peer[name=a]/psk",
		"/vault/token[0]/mtu", "/vault/token[0]/token"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths\n%q\nwant\n%q", paths, want)
	}
}

// A key value cannot end its brackets early and forge another path: "]" and
// "\" are escaped with a backslash, as in gNMI paths.
func TestKeyValuesEscaped(t *testing.T) {
	paths := allLeaves(t, diff.SRLinux(), []byte(`{
		"interface":[{"name":"a]b\\c","mtu":1},{"name":"x][name=y","mtu":1}],
		"vendor-x:thing":[{"name":"q]","mtu":1}]}`))
	for _, want := range []string{`/interface[name=a\]b\\c]/mtu`, `/interface[name=x\][name=y]/mtu`, `/thing[name=q\]]/mtu`} {
		if !slices.Contains(paths, want) {
			t.Errorf("no %s in %q", want, paths)
		}
	}
}

// Lists whose keys changed between releases are named by the keys their
// entries carry, the most when several fit; key members may carry a prefix.
func TestKeysOfEachRelease(t *testing.T) {
	route := func(more string) string {
		return `{"network-instance":[{"name":"default","route-table":{"ipv4-unicast":{"route":[
			{"ipv4-prefix":"10.0.0.0/8","route-type":"static","route-owner":"o","id":0` + more + `,"metric":1}]}}}]}`
	}
	for config, want := range map[string]string{
		route(""): "/network-instance[name=default]/route-table/ipv4-unicast/route[ipv4-prefix=10.0.0.0/8][route-type=static][route-owner=o][id=0]/metric",
		route(`,"origin-network-instance":"blue"`): "/network-instance[name=default]/route-table/ipv4-unicast/route" +
			"[ipv4-prefix=10.0.0.0/8][route-type=static][route-owner=o][id=0][origin-network-instance=blue]/metric",
		`{"oam":{"ethcfm":{"domain":[{"id":"d1","metric":1}]}}}`:                             "/oam/ethcfm/domain[id=d1]/metric",
		`{"oam":{"ethcfm":{"domain":[{"domain-id":"d2","metric":1}]}}}`:                      "/oam/ethcfm/domain[domain-id=d2]/metric",
		`{"system":{"sync":{"ptp":{"instance":[{"instance-number":1,"metric":1}]}}}}`:        "/system/sync/ptp/instance[instance-number=1]/metric",
		`{"system":{"sync":{"ptp":{"instance":[{"instance-index":2,"metric":1}]}}}}`:         "/system/sync/ptp/instance[instance-index=2]/metric",
		`{"srl_nokia-interfaces:interface":[{"srl_nokia-interfaces:name":"e1","metric":1}]}`: "/interface[name=e1]/metric",
	} {
		if paths := allLeaves(t, diff.SRLinux(), []byte(config)); !slices.Contains(paths, want) {
			t.Errorf("no %s in %q", want, paths)
		}
	}
	for schema, want := range map[string][][]string{
		"/acl/acl-filter":           {{"name", "type"}},
		"/system/sync/ptp/instance": {{"instance-index"}, {"instance-number"}},
		"/network-instance/route-table/ipv4-unicast/route": {
			{"ipv4-prefix", "route-type", "route-owner", "id", "origin-network-instance"},
			{"ipv4-prefix", "route-type", "route-owner", "id"}},
	} {
		if got, ok := diff.SRLinux().Lookup(schema); !ok || !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("Lookup(%s) = %q, %v; want %q", schema, got, ok, want)
		}
	}
	if _, ok := diff.SRLinux().Lookup("/vault"); ok {
		t.Error("Lookup knows a list SR Linux does not have")
	}
}

func TestParseKeysRefusesMalformedLines(t *testing.T) {
	for _, table := range []string{"/acl/acl-filter name type\n", "acl\tname\n", "/acl/acl-filter\t\t24.3.3\n", "/x\tname (22.11) | (23.3)\n"} {
		if _, err := diff.ParseKeys(strings.NewReader(table)); err == nil {
			t.Errorf("%q parsed", table)
		}
	}
}
