package diff_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// bigPair returns a configuration of about size bytes, leaf11's interfaces
// copied under new names so that every entry is its own (as on a switch with
// many ports and subinterfaces), and the same with one description changed.
func bigPair(b *testing.B, size int) (old, new []byte) {
	b.Helper()
	var doc map[string]any
	if err := json.Unmarshal(testenv.ReadFixture(b, "srl-config-dcf-leaf11.json"), &doc); err != nil {
		b.Fatal(err)
	}
	real := doc["srl_nokia-interfaces:interface"].([]any)
	one, _ := json.Marshal(real)
	var ifs []any
	for n := 0; len(ifs) == 0 || len(one)*len(ifs)/len(real) < size; n++ {
		for _, e := range real {
			c := map[string]any{}
			for k, v := range e.(map[string]any) {
				c[k] = v
			}
			c["name"] = fmt.Sprintf("%s-%d", c["name"], n)
			ifs = append(ifs, c)
		}
	}
	doc["srl_nokia-interfaces:interface"] = ifs
	ifs[len(ifs)/2].(map[string]any)["description"] = "before"
	old, _ = json.Marshal(doc)
	ifs[len(ifs)/2].(map[string]any)["description"] = "after"
	new, _ = json.Marshal(doc)
	return old, new
}

// BenchmarkCompare16MiB is Compare on the largest configuration the worker
// summarises on the switch.
func BenchmarkCompare16MiB(b *testing.B) {
	old, new := bigPair(b, 16<<20)
	b.SetBytes(int64(len(old) + len(new)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := diff.Compare(bytes.NewReader(old), bytes.NewReader(new))
		if err != nil {
			b.Fatal(err)
		}
		if c.Changed != 1 {
			b.Fatalf("%s: want 1 changed", c)
		}
	}
}
