package git_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/destination/git"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// The suite's names become paths in the repository (git-path {name}), and
// stored is the branch's tip as the git CLI reads it from the bare repository.
func TestConformanceHTTP(t *testing.T) {
	root := t.TempDir()
	s := httpServer(t, root, httpOptions{})
	n := 0
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		n++
		r := newRepo(t, root, fmt.Sprintf("r%d.git", n))
		c := options(nil)
		c.GitPath = "{name}"
		d := newDest(t, s.URL+"/"+filepath.Base(r.dir), c, (&dialer{}).dial, t.Logf)
		return d, func() map[string][]byte { r.fsck(); return r.files("main") }
	})
}

func TestConformanceSSH(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		r := newRepo(t, t.TempDir(), "configs.git")
		c := options(s)
		c.GitPath = "{name}"
		d := newDest(t, s.URL("git+ssh", r.dir), c, (&dialer{}).dial, t.Logf)
		return d, func() map[string][]byte { r.fsck(); return r.files("main") }
	})
}

// peer is one of the two servers, for tests that hold over both.
type peer struct {
	name string
	// open returns a target for a fresh empty repository, and the options that
	// reach it.
	open func(t *testing.T) (target string, c *option.Config, r *repo)
}

func peers(t *testing.T) []peer {
	return []peer{
		{"http", func(t *testing.T) (string, *option.Config, *repo) {
			root := t.TempDir()
			s := httpServer(t, root, httpOptions{})
			r := newRepo(t, root, "configs.git")
			return s.URL + "/configs.git", options(nil), r
		}},
		{"ssh", func(t *testing.T) (string, *option.Config, *repo) {
			s := sshd.New(t, sshd.Options{})
			r := newRepo(t, t.TempDir(), "configs.git")
			return s.URL("git+ssh", r.dir), options(s), r
		}},
	}
}

var (
	lastChange = time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC)
	started    = time.Date(2025, 9, 20, 11, 2, 7, 0, time.UTC)
)

// record is what the worker hands over for a commit on leaf1.
func record(config []byte) snapshot.Record {
	sum := sha256.Sum256(config)
	return snapshot.Record{
		Host:       "leaf1",
		LastChange: lastChange,
		User:       "alice",
		Comment:    "enable e1-1",
		Commits: []snapshot.Commit{
			{ID: 41, Username: "bob", Comment: "add vlan 10", Status: "complete", Started: started.Add(-time.Minute)},
			{ID: 42, Username: "alice", Comment: "enable e1-1", Status: "complete", Started: started},
		},
		Name:   "leaf1/leaf1_20250920T110208.456Z_alice.json",
		Size:   int64(len(config)),
		SHA256: hex.EncodeToString(sum[:]),
	}
}

func save(t *testing.T, d *git.Destination, rec snapshot.Record, config []byte) {
	t.Helper()
	if err := d.Save(t.Context(), rec, bytes.NewReader(config)); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// A commit tells who changed the switch, when, why and what, and the file's
// history is the switch's: git log and git show on it say so.
func TestCommitContent(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, r := p.open(t)
			d := newDest(t, target, c, (&dialer{}).dial, t.Logf)
			v1 := testenv.ReadFixture(t, "srl-config-dcf-leaf11.json")
			save(t, d, record(v1), v1)

			v2 := bytes.Replace(v1, []byte(`"admin-state": "enable"`), []byte(`"admin-state": "disable"`), 1)
			if bytes.Equal(v1, v2) {
				t.Fatal("the fixture has no admin-state to change")
			}
			rec := record(v2)
			rec.LastChange = lastChange.Add(time.Hour)
			save(t, d, rec, v2)

			if got := r.files("main"); len(got) != 1 || !bytes.Equal(got["leaf1.json"], v2) {
				t.Fatalf("branch main holds %d files, want leaf1.json (the default git-path {host}.json) with the snapshot", len(got))
			}
			if n := r.count("main"); n != 2 {
				t.Fatalf("%d commits, want 2", n)
			}
			meta := strings.TrimSpace(r.git("log", "-1", "--format=%an|%ae|%aI|%cn|%ce|%cI", "main"))
			want := "alice|alice@leaf1|2025-09-20T12:02:08+00:00|cfgsnap|cfgsnap@leaf1|2025-09-20T12:02:08+00:00"
			if meta != want {
				t.Errorf("author and committer:\n got %s\nwant %s", meta, want)
			}
			msg := r.git("log", "-1", "--format=%B", "main")
			sum := sha256.Sum256(v2)
			for _, part := range []string{
				"leaf1: commit 42 by alice: enable e1-1\n\n",
				"Last change: 2025-09-20T12:02:08.456Z\n",
				"Commits (2):\n  41 by bob at 2025-09-20T11:01:07.000Z: add vlan 10\n  42 by alice at 2025-09-20T11:02:07.000Z: enable e1-1\n",
				"SHA-256: " + hex.EncodeToString(sum[:]) + "\n",
				"Changes: 0 added, 0 removed, 1 changed\n  ~/",
				"/admin-state\n",
			} {
				if !strings.Contains(msg, part) {
					t.Errorf("message lacks %q:\n%s", part, msg)
				}
			}
			// git itself reads the trailers: everyone else whose change it holds.
			if got := r.git("log", "-1", "--format=%(trailers:key=Co-authored-by,valueonly)", "main"); strings.TrimSpace(got) != "bob <bob@leaf1>" {
				t.Errorf("Co-authored-by trailers %q, want bob's alone (alice is the author)", got)
			}
			first := r.git("log", "--format=%B", "--reverse", "main")
			if !strings.Contains(first, "Changes: first snapshot of this file on branch main") {
				t.Errorf("first commit does not say it is the first:\n%s", first)
			}
			// The file's history reads as the switch's.
			if got := r.git("log", "--format=%an %s", "--", "leaf1.json"); strings.Count(got, "alice leaf1: commit 42") != 2 {
				t.Errorf("git log leaf1.json:\n%s", got)
			}
			if diff := r.git("show", "--format=", "main"); !strings.Contains(diff, `-`) || !strings.Contains(diff, `+`) || !strings.Contains(diff, `"admin-state": "disable"`) {
				t.Errorf("git show has no diff of the change:\n%.500s", diff)
			}
			r.fsck()
		})
	}
}

func TestManualSnapshotMessage(t *testing.T) {
	target, c, r := peers(t)[0].open(t)
	d := newDest(t, target, c, nil, t.Logf)
	config := []byte("{}\n")
	taken := time.Date(2025, 9, 21, 8, 0, 0, 0, time.UTC)
	rec := snapshot.Record{Host: "leaf1", User: "carol", Manual: true, Comment: "before\nupgrade\x00", Taken: taken, Name: "x.json", Size: 3}
	save(t, d, rec, config)
	msg := r.git("log", "-1", "--format=%B", "main")
	if !strings.HasPrefix(msg, "leaf1: manual snapshot by carol: before upgrade\n\nTaken: 2025-09-21T08:00:00.000Z\n") {
		t.Errorf("message:\n%s", msg)
	}
	if got := strings.TrimSpace(r.git("log", "-1", "--format=%aI %cI", "main")); got != "2025-09-21T08:00:00+00:00 2025-09-21T08:00:00+00:00" {
		t.Errorf("dates %s, want when it was taken", got)
	}
}

// A manual snapshot is authored by who took it; the switch users whose commits
// it holds are co-authors, each once. An unsettled one says what it may also
// hold, without crediting it.
func TestCoAuthorsAndUnsettled(t *testing.T) {
	target, c, r := peers(t)[0].open(t)
	d := newDest(t, target, c, nil, t.Logf)
	rec := record([]byte("{}\n"))
	rec.Manual, rec.User, rec.Comment = true, "carol", "before upgrade"
	rec.Commits = append(rec.Commits, snapshot.Commit{ID: 43, Username: "bob", Status: "complete", Started: started.Add(time.Second)})
	rec.Unsettled = true
	rec.Possibly = []snapshot.Commit{{ID: 44, Username: "dave", Status: "complete", Started: started.Add(2 * time.Second), Comment: "mtu"}}
	save(t, d, rec, []byte("{}\n"))
	if got := strings.TrimSpace(r.git("log", "-1", "--format=%an <%ae>", "main")); got != "carol <carol@leaf1>" {
		t.Errorf("author %q, want carol, who took the snapshot", got)
	}
	trailers := strings.Fields(r.git("log", "-1", "--format=%(trailers:key=Co-authored-by,valueonly,separator=%x20)", "main"))
	if strings.Join(trailers, " ") != "bob <bob@leaf1> alice <alice@leaf1>" {
		t.Errorf("co-authors %q, want bob and alice once each, and not dave", trailers)
	}
	msg := r.git("log", "-1", "--format=%B", "main")
	for _, part := range []string{
		"Commits (3):\n  41 by bob at 2025-09-20T11:01:07.000Z: add vlan 10\n  42 by alice at 2025-09-20T11:02:07.000Z: enable e1-1\n  43 by bob at 2025-09-20T11:02:08.000Z\n",
		"Unsettled: the switch kept committing while it was read; it may also hold:\n  44 by dave at 2025-09-20T11:02:09.000Z: mtu\n",
	} {
		if !strings.Contains(msg, part) {
			t.Errorf("message lacks %q:\n%s", part, msg)
		}
	}
	r.fsck()
}

// The configuration of a reboot or a reload is the one the branch has: no
// commit, over both servers.
func TestUnchangedMakesNoCommit(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, r := p.open(t)
			var l testenv.Logs
			d := newDest(t, target, c, nil, l.Logf)
			config := testenv.ReadFixture(t, "srl-config-srlcontroller-test.json")
			save(t, d, record(config), config)
			head := r.git("rev-parse", "main")
			reboot := record(config)
			reboot.LastChange = lastChange.Add(24 * time.Hour)
			reboot.Commits = nil
			save(t, d, reboot, config)
			if got := r.git("rev-parse", "main"); got != head || r.count("main") != 1 {
				t.Fatalf("an identical snapshot moved main from %s to %s", head, got)
			}
			if !strings.Contains(l.String(), "leaf1.json is unchanged on branch main: no commit") {
				t.Errorf("log does not say why there is no commit:\n%s", l.String())
			}
		})
	}
}

// A repository with no commits, or without the branch, gets the branch as a
// new root commit.
func TestEmptyRemote(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, r := p.open(t)
			d := newDest(t, target, c, nil, t.Logf)
			save(t, d, record([]byte("{}\n")), []byte("{}\n"))
			if got := r.git("log", "--format=%P|%s", "main"); got != "|leaf1: commit 42 by alice: enable e1-1\n" {
				t.Fatalf("log of main: %q, want one root commit", got)
			}
			r.fsck()

			// Another branch exists: the configs branch starts on its own.
			other := newDest(t, target, withBranch(c, "configs/leaf1"), nil, t.Logf)
			save(t, other, record([]byte("[]\n")), []byte("[]\n"))
			if got := r.git("log", "--format=%P", "configs/leaf1"); got != "\n" {
				t.Fatalf("configs/leaf1 has parents %q, want a root commit", got)
			}
			if got := r.files("configs/leaf1"); len(got) != 1 || string(got["leaf1.json"]) != "[]\n" {
				t.Fatalf("configs/leaf1 holds %v", got)
			}
			r.fsck()
		})
	}
}

func withBranch(c *option.Config, branch string) *option.Config {
	cc := *c
	cc.Branch = branch
	return &cc
}

// Two switches push to one branch, and each one's push finds the branch moved
// by the other: before it sends (the advertisement shows the new tip), and after
// (the server refuses the update, which names the old tip). Both land, one on
// the other, and the repository refuses non-fast-forward updates, so none was
// forced.
func TestConcurrentPushersInterleave(t *testing.T) {
	for _, when := range []string{"GET /info/refs?service=git-receive-pack", "POST /git-receive-pack"} {
		t.Run(when, func(t *testing.T) {
			root := t.TempDir()
			r := newRepo(t, root, "configs.git")
			sb := httpServer(t, root, httpOptions{})
			b := newDest(t, sb.URL+"/configs.git", options(nil), nil, t.Logf)
			cfgB := []byte(`{"leaf2": 1}`)
			recB := record(cfgB)
			recB.Host, recB.User = "leaf2", "bob"
			// The branch has a history already, as it usually has.
			cfg3 := []byte(`{"leaf3": 1}`)
			rec3 := record(cfg3)
			rec3.Host = "leaf3"
			save(t, b, rec3, cfg3)

			var once sync.Once
			var bErr error
			sa := httpServer(t, root, httpOptions{Wrap: func(w http.ResponseWriter, req *http.Request, next http.Handler) {
				// The first push of a only: leaf2 gets there first.
				if req.Method+" "+strings.TrimPrefix(req.URL.RequestURI(), "/configs.git") == when {
					once.Do(func() { bErr = b.Save(context.Background(), recB, bytes.NewReader(cfgB)) })
				}
				next.ServeHTTP(w, req)
			}})
			var l testenv.Logs
			a := newDest(t, sa.URL+"/configs.git", options(nil), nil, l.Logf)
			defer func() { t.Log(l.String()) }()
			cfgA := []byte(`{"leaf1": 1}`)
			save(t, a, record(cfgA), cfgA)
			if bErr != nil {
				t.Fatalf("leaf2's save: %v", bErr)
			}
			if !strings.Contains(l.String(), "pushing leaf1.json to branch main: ") || !strings.Contains(l.String(), "fetching the branch again (try 2 of 10)") {
				t.Errorf("leaf1 did not meet the moved branch:\n%s", l.String())
			}
			got := r.files("main")
			if string(got["leaf1.json"]) != string(cfgA) || string(got["leaf2.json"]) != string(cfgB) || len(got) != 3 {
				t.Fatalf("main holds %v", got)
			}
			if subjects := r.git("log", "--format=%s", "main"); subjects != "leaf1: commit 42 by alice: enable e1-1\nleaf2: commit 42 by bob: enable e1-1\nleaf3: commit 42 by alice: enable e1-1\n" {
				t.Fatalf("history of main:\n%s", subjects)
			}
			r.fsck()
		})
	}
}

// Two switches saving at the same time, over SSH, with no choreography: every
// snapshot lands, none is lost to the other's push.
func TestConcurrentPushersRace(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	r := newRepo(t, t.TempDir(), "configs.git")
	const saves = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*saves)
	for _, host := range []string{"leaf1", "leaf2"} {
		d := newDest(t, s.URL("git+ssh", r.dir), options(s), nil, t.Logf)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range saves {
				config := fmt.Appendf(nil, `{"host": %q, "i": %d}`, host, i)
				rec := record(config)
				rec.Host = host
				rec.Commits[1].ID = int64(100 + i)
				if err := d.Save(context.Background(), rec, bytes.NewReader(config)); err != nil {
					errs <- fmt.Errorf("%s save %d: %w", host, i, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := r.count("main"); n != 2*saves {
		t.Errorf("%d commits on main, want %d", n, 2*saves)
	}
	got := r.files("main")
	for _, host := range []string{"leaf1", "leaf2"} {
		if want := fmt.Sprintf(`{"host": %q, "i": %d}`, host, saves-1); string(got[host+".json"]) != want {
			t.Errorf("%s.json holds %q, want %q", host, got[host+".json"], want)
		}
		if n := strings.Count(r.git("log", "--format=%s", "main", "--", host+".json"), "\n"); n != saves {
			t.Errorf("git log %s.json shows %d commits, want %d", host, n, saves)
		}
	}
	r.fsck()
}

func TestHostKeyRefused(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	r := newRepo(t, t.TempDir(), "configs.git")
	c := options(s)
	c.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(c.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDest(t, s.URL("git+ssh", r.dir), c, nil, t.Logf)
	err := d.Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
	t.Log(err)
	if fail.KindOf(err) != fail.Auth || !strings.Contains(err.Error(), s.Fingerprint()) || !strings.Contains(err.Error(), "ssh-keyscan") {
		t.Fatalf("got %v (kind %d), want a Trust error with the fingerprint and the fix", err, fail.KindOf(err))
	}
	if r.has("main") {
		t.Fatal("the refused server got a commit")
	}

	// A pinned key replaces known_hosts; a wrong pin is refused too.
	c.HostKey = s.Fingerprint()
	save(t, newDest(t, s.URL("git+ssh", r.dir), c, nil, t.Logf), record([]byte("{}")), []byte("{}"))
	c.HostKey = "SHA256:" + strings.Repeat("A", 43)
	err = newDest(t, s.URL("git+ssh", r.dir), c, nil, t.Logf).Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
	if fail.KindOf(err) != fail.Auth {
		t.Fatalf("wrong pin: got %v (kind %d), want a Trust error", err, fail.KindOf(err))
	}
}

// A server with an ECDSA key beside the ed25519 one that known_hosts lists:
// the client must ask for the listed type (HostKeyAlgorithms), as for SFTP.
func TestSeveralHostKeyTypes(t *testing.T) {
	s := sshd.New(t, sshd.Options{ECDSAHostKey: true})
	r := newRepo(t, t.TempDir(), "configs.git")
	save(t, newDest(t, s.URL("git+ssh", r.dir), options(s), nil, t.Logf), record([]byte("{}")), []byte("{}"))
}

func TestInsecureSkipHostKeyWarns(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	r := newRepo(t, t.TempDir(), "configs.git")
	c := options(s)
	c.KnownHosts = filepath.Join(t.TempDir(), "missing")
	c.InsecureSkipHostKey = true
	var l testenv.Logs
	save(t, newDest(t, s.URL("git+ssh", r.dir), c, nil, l.Logf), record([]byte("{}")), []byte("{}"))
	if !strings.Contains(l.String(), "NOT verified") || !strings.Contains(l.String(), s.Fingerprint()) {
		t.Fatalf("no warning with the fingerprint:\n%s", l.String())
	}
}

func TestUnreachable(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		root := t.TempDir()
		s := httpServer(t, root, httpOptions{})
		newRepo(t, root, "configs.git")
		d := newDest(t, s.URL+"/configs.git", options(nil), nil, t.Logf)
		s.Close()
		err := d.Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
		t.Log(err)
		if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "cannot reach "+s.Listener.Addr().String()) {
			t.Fatalf("got %v (kind %d), want a Deliver error naming the server", err, fail.KindOf(err))
		}
	})
	t.Run("ssh", func(t *testing.T) {
		s := sshd.New(t, sshd.Options{})
		r := newRepo(t, t.TempDir(), "configs.git")
		d := newDest(t, s.URL("git+ssh", r.dir), options(s), nil, t.Logf)
		save(t, d, record([]byte("{}")), []byte("{}"))
		s.Stop()
		err := d.Save(t.Context(), record([]byte("[]")), strings.NewReader("[]"))
		t.Log(err)
		if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), s.Addr()) {
			t.Fatalf("got %v (kind %d), want a Deliver error naming the server", err, fail.KindOf(err))
		}
		// The kept connection is dead; the next try dials and says so.
		err = d.Save(t.Context(), record([]byte("[]")), strings.NewReader("[]"))
		if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "cannot connect to SSH server "+s.Addr()) {
			t.Fatalf("got %v (kind %d), want a Deliver error naming the server", err, fail.KindOf(err))
		}
		// The same destination delivers once the server is back.
		s.Start()
		save(t, d, record([]byte("[]")), []byte("[]"))
		if r.count("main") != 2 {
			t.Fatalf("%d commits, want 2", r.count("main"))
		}
	})
	t.Run("no repository", func(t *testing.T) {
		for _, p := range peers(t) {
			t.Run(p.name, func(t *testing.T) {
				target, c, _ := p.open(t)
				target = strings.Replace(target, "configs.git", "missing.git", 1)
				err := newDest(t, target, c, nil, t.Logf).Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
				t.Log(err)
				if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "missing.git") || !strings.Contains(err.Error(), "create") {
					t.Fatalf("got %v (kind %d), want a Deliver error that says to create the repository", err, fail.KindOf(err))
				}
			})
		}
	})
}

// Every connection goes through the dial it is given, which in cfgsnap dials
// inside the management namespace.
func TestDialIsUsed(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, _ := p.open(t)
			var d dialer
			dest := newDest(t, target, c, d.dial, t.Logf)
			for i := range 3 {
				config := fmt.Appendf(nil, "[%d]", i)
				save(t, dest, record(config), config)
			}
			// One connection serves them all: SSH keeps it, HTTP keeps it alive.
			if n := d.n.Load(); n != 1 {
				t.Errorf("3 saves made %d connections through dial, want 1", n)
			}
			broken := func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("namespace srbase-mgmt: network is unreachable")
			}
			err := newDest(t, target, c, broken, t.Logf).Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
			t.Log(err)
			if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "srbase-mgmt") {
				t.Fatalf("got %v (kind %d), want the dialer's Deliver error", err, fail.KindOf(err))
			}
		})
	}
}

func TestPassword(t *testing.T) {
	const user, password = "ci", "s3cr3t-t0ken"
	root := t.TempDir()
	r := newRepo(t, root, "configs.git")
	s := httpServer(t, root, httpOptions{User: user, Password: password})
	target := strings.Replace(s.URL, "://", "://"+user+"@", 1) + "/configs.git"
	attempt := func(c *option.Config) error {
		return newDest(t, target, c, nil, t.Logf).Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
	}
	noSecret := func(err error) {
		t.Helper()
		if err != nil && (strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "wrong-one")) {
			t.Errorf("error shows a password: %v", err)
		}
	}
	t.Setenv("CFGSNAP_GIT_PASSWORD", "")

	err := attempt(options(nil))
	t.Log(err)
	if fail.KindOf(err) != fail.Auth || !strings.Contains(err.Error(), "asks for a password") || !strings.Contains(err.Error(), "git-password-file") {
		t.Fatalf("no password: got %v (kind %d)", err, fail.KindOf(err))
	}

	c := options(nil)
	c.GitPasswordFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(c.GitPasswordFile, []byte("wrong-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = attempt(c)
	noSecret(err)
	t.Log(err)
	if fail.KindOf(err) != fail.Auth || !strings.Contains(err.Error(), "refused user ci") {
		t.Fatalf("wrong password: got %v (kind %d), want a Trust error naming the user", err, fail.KindOf(err))
	}
	if r.has("main") {
		t.Fatal("a refused push landed")
	}

	if err := os.WriteFile(c.GitPasswordFile, []byte(password+"\n# comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := attempt(c); err != nil {
		t.Fatalf("right password in the file: %v", err)
	}

	t.Setenv("CFGSNAP_GIT_PASSWORD", password)
	if err := newDest(t, target, options(nil), nil, t.Logf).Save(t.Context(), record([]byte("[]")), strings.NewReader("[]")); err != nil {
		t.Fatalf("right password in $CFGSNAP_GIT_PASSWORD: %v", err)
	}
	if r.count("main") != 2 {
		t.Fatalf("%d commits, want 2", r.count("main"))
	}

	// Plain http:// with a password is allowed for labs, with a warning.
	var l testenv.Logs
	newDest(t, target, options(nil), nil, l.Logf)
	if !strings.Contains(l.String(), "unencrypted") || strings.Contains(l.String(), password) {
		t.Errorf("warning: %q", l.String())
	}
}

func TestHTTPS(t *testing.T) {
	root := t.TempDir()
	r := newRepo(t, root, "configs.git")
	s := httpServer(t, root, httpOptions{TLS: true})
	err := newDest(t, s.URL+"/configs.git", options(nil), nil, t.Logf).Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
	t.Log(err)
	if fail.KindOf(err) != fail.Auth || !strings.Contains(err.Error(), "ca-file") {
		t.Fatalf("unknown CA: got %v (kind %d), want a Trust error that points to ca-file", err, fail.KindOf(err))
	}
	c := options(nil)
	c.CAFile = caFile(t, s)
	var d dialer
	save(t, newDest(t, "git+"+s.URL+"/configs.git", c, d.dial, t.Logf), record([]byte("{}")), []byte("{}"))
	if r.count("main") != 1 || d.n.Load() == 0 {
		t.Fatalf("%d commits, %d dials", r.count("main"), d.n.Load())
	}
}

// A git-path whose folder is a file in the repository is a usage error, not a
// retry: nothing is overwritten.
func TestGitPathConflict(t *testing.T) {
	target, c, r := peers(t)[0].open(t)
	save(t, newDest(t, target, c, nil, t.Logf), record([]byte("{}")), []byte("{}"))
	c.GitPath = "{host}.json/{host}.json"
	err := newDest(t, target, c, nil, t.Logf).Save(t.Context(), record([]byte("[]")), strings.NewReader("[]"))
	t.Log(err)
	if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "git-path") {
		t.Fatalf("got %v (kind %d), want a Usage error about git-path", err, fail.KindOf(err))
	}
	if r.count("main") != 1 {
		t.Fatal("a conflicting path made a commit")
	}
}

// A push the server refuses for a reason of its own (a hook) is reported after
// one more look, not retried until the tries run out.
func TestRefusedByHook(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			target, c, r := p.open(t)
			hook := filepath.Join(r.dir, "hooks", "pre-receive")
			if err := os.WriteFile(hook, []byte("#!/bin/sh\necho 'branch main is frozen' >&2\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			d := newDest(t, target, c, nil, func(string, ...any) { calls.Add(1) })
			err := d.Save(t.Context(), record([]byte("{}")), strings.NewReader("{}"))
			t.Log(err)
			if fail.KindOf(err) != fail.Deliver || !strings.Contains(err.Error(), "refused the push") || !strings.Contains(err.Error(), "branch main is frozen") {
				t.Fatalf("got %v (kind %d), want a Deliver error with the hook's reason", err, fail.KindOf(err))
			}
			if n := calls.Load(); n > 1 {
				t.Errorf("%d log lines: the refused push was retried", n)
			}
		})
	}
}
