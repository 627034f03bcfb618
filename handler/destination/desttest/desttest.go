// Package desttest is the conformance suite every Destination passes against its
// real server: what a user relies on — the bytes arrive exactly, folders are made,
// a failed or cancelled save leaves nothing behind, and nothing lands outside the root.
//
// A destination's own test calls Run with a function that starts from an empty
// root on the real server and can read that root back from the server's side.
package desttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// NewFunc returns a destination whose root is a fresh, empty folder on the real
// server, and stored, which lists every file under that root as the server sees it
// (not through the destination): slash-separated relative name -> content,
// hidden and temporary files included.
type NewFunc func(t *testing.T) (d destination.Destination, stored func() map[string][]byte)

// Run runs the suite. Each case gets its own destination.
func Run(t *testing.T, newDest NewFunc) {
	cases := []struct {
		name string
		fn   func(t *testing.T, d destination.Destination, stored func() map[string][]byte)
	}{
		{"SaveExactBytes", saveExactBytes},
		{"SaveCreatesFolders", saveCreatesFolders},
		{"SaveReplaces", saveReplaces},
		{"SaveEmpty", saveEmpty},
		{"SaveLarge", saveLarge},
		{"SaveManyOnOneDestination", saveMany},
		{"FailingReaderLeavesNothing", failingReader},
		{"ShortReaderLeavesNothing", shortReader},
		{"CancelledLeavesNothing", cancelled},
		{"FailedSaveKeepsOldContent", failedSaveKeepsOld},
		{"StringHasNoSecret", stringNamesTarget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, stored := newDest(t)
			t.Cleanup(func() { d.Close() })
			c.fn(t, d, stored)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// save stores data under name and fails the test on error.
func save(t *testing.T, d destination.Destination, name string, data []byte) {
	t.Helper()
	if err := d.Save(ctx(t), snapshot.Record{Name: name, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatalf("Save(%q, %d bytes): %v", name, len(data), err)
	}
}

// wantFiles checks that the root holds exactly the given files, byte for byte.
func wantFiles(t *testing.T, stored func() map[string][]byte, want map[string][]byte) {
	t.Helper()
	got := stored()
	for name, data := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not on the server; the server has %v", name, names(got))
		case !bytes.Equal(g, data):
			t.Errorf("%s: server holds %d bytes that differ from the %d saved", name, len(g), len(data))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file on the server: %s (%d bytes)", name, len(got[name]))
		}
	}
}

func names(m map[string][]byte) []string {
	var s []string
	for n := range m {
		s = append(s, n)
	}
	sort.Strings(s)
	return s
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var config = []byte("{\n  \"system\": {\n    \"name\": {\n      \"host-name\": \"leaf1\"\n    }\n  }\n}\n")

func saveExactBytes(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	name := "leaf1_20250920T110208.456Z_admin.json"
	save(t, d, name, config)
	wantFiles(t, stored, map[string][]byte{name: config})
}

func saveCreatesFolders(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	a, b := "leaf1/2025/leaf1_20250920T110208.456Z_admin.json", "leaf1/2025/leaf1_20250920T110301.000Z_bob+ops@corp.json"
	save(t, d, a, config)
	save(t, d, b, config[:10])
	wantFiles(t, stored, map[string][]byte{a: config, b: config[:10]})
}

func saveReplaces(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	name := "leaf1/leaf1.json"
	save(t, d, name, random(t, 3000))
	save(t, d, name, config)
	wantFiles(t, stored, map[string][]byte{name: config})
}

func saveEmpty(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	save(t, d, "empty.json", nil)
	wantFiles(t, stored, map[string][]byte{"empty.json": {}})
}

func saveLarge(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	data := random(t, 5<<20+123)
	save(t, d, "big/big.json", data)
	wantFiles(t, stored, map[string][]byte{"big/big.json": data})
}

// saveMany delivers a backlog over one destination, as a flush of the spool does.
func saveMany(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	want := map[string][]byte{}
	for i := range 20 {
		name := fmt.Sprintf("leaf1/leaf1_20250920T1102%02d.000Z_admin.json", i)
		data := random(t, 100+i*37)
		save(t, d, name, data)
		want[name] = data
	}
	wantFiles(t, stored, want)
}

var errBroken = errors.New("source broke")

// brokenReader yields n bytes, then fails: a spool file that cannot be read, or a
// source that dies mid-way.
type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errBroken
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func failingReader(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	err := d.Save(ctx(t), snapshot.Record{Name: "leaf1/partial.json", Size: 1 << 20}, &brokenReader{n: 200 << 10})
	if err == nil {
		t.Fatal("Save succeeded although its reader failed")
	}
	wantFiles(t, stored, map[string][]byte{})
	// The destination stays usable after a failure.
	save(t, d, "leaf1/after.json", config)
	wantFiles(t, stored, map[string][]byte{"leaf1/after.json": config})
}

func shortReader(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	err := d.Save(ctx(t), snapshot.Record{Name: "short.json", Size: int64(len(config)) + 100}, bytes.NewReader(config))
	if err == nil {
		t.Fatal("Save succeeded with fewer bytes than its size")
	}
	wantFiles(t, stored, map[string][]byte{})
}

// stallingReader yields some bytes, then blocks until its context is done: a
// delivery that hangs and is cancelled by the run's deadline.
type stallingReader struct {
	ctx  context.Context
	sent bool
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, bytes.Repeat([]byte("y"), 4096)), nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func cancelled(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- d.Save(c, snapshot.Record{Name: "stalled.json", Size: 1 << 20}, &stallingReader{ctx: c})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Save succeeded although it was cancelled")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Save did not return after its context was cancelled")
	}
	wantFiles(t, stored, map[string][]byte{})
}

func failedSaveKeepsOld(t *testing.T, d destination.Destination, stored func() map[string][]byte) {
	name := "leaf1/leaf1.json"
	save(t, d, name, config)
	if err := d.Save(ctx(t), snapshot.Record{Name: name, Size: 1 << 20}, &brokenReader{n: 64 << 10}); err == nil {
		t.Fatal("Save succeeded although its reader failed")
	}
	wantFiles(t, stored, map[string][]byte{name: config})
}

func stringNamesTarget(t *testing.T, d destination.Destination, _ func() map[string][]byte) {
	s := d.String()
	if s == "" {
		t.Fatal("String() is empty; reports need to say where a snapshot went")
	}
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			t.Errorf("String() %q carries a password", s)
		}
	}
}
