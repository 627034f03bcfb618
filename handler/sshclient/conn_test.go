package sshclient_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/sshclient"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"golang.org/x/crypto/ssh"
)

func TestParseTarget(t *testing.T) {
	u, _ := url.Parse("scp://backup@10.0.0.5:2222/~/srl")
	tg, err := sshclient.ParseTarget(u, "scp", sshclient.Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if tg.URL != "scp://backup@10.0.0.5:2222/~/srl" || tg.String() != tg.URL || tg.Root != "srl" ||
		tg.Config.User != "backup" || tg.Config.Addr != "10.0.0.5:2222" || tg.Config.Timeout != time.Second {
		t.Errorf("got %+v", tg)
	}

	for raw, part := range map[string]string{
		"sftp://backup@10.0.0.5/srl":        "not an scp:// URL",
		"scp://backup@10.0.0.5/srl?x=1":     "takes no ?query",
		"scp://backup@10.0.0.5/srl#x":       "takes no ?query",
		"scp://backup:hunter2@10.0.0.5/srl": "password",
		"scp://backup@10.0.0.5/~/../etc":    "climbs out",
	} {
		u, _ := url.Parse(raw)
		_, err := sshclient.ParseTarget(u, "scp", sshclient.Config{})
		wantErr(t, err, fail.Usage, part)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// newConn returns a Conn[int] to s whose start numbers the connections it starts
// on, and counts the dials and stops.
func newConn(t *testing.T, s *sshd.Server, grace time.Duration) (c *sshclient.Conn[int], dials, stops *atomic.Int32) {
	t.Helper()
	u, _ := url.Parse(s.URL("sftp", "/srl"))
	base := config(s)
	dials, stops = countDials(&base), &atomic.Int32{}
	tg, err := sshclient.ParseTarget(u, "sftp", base)
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	start := func(_ context.Context, client *ssh.Client) (int, error) {
		started++
		return started, nil
	}
	c = sshclient.NewConn(tg, grace, start, func(int) { stops.Add(1) })
	t.Cleanup(func() { c.Close() })
	return c, dials, stops
}

// saveOver saves over c, and checks that the connection serves and is the
// want-th that c started.
func saveOver(t *testing.T, c *sshclient.Conn[int], want int) {
	t.Helper()
	if err := c.Save(t.Context(), "x.json", func(client *ssh.Client, n int) error {
		run(t, client)
		if n != want {
			t.Errorf("save over connection %d, want %d", n, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A Conn dials on the first Save, keeps the connection while Saves succeed, and
// drops it when one fails: the next Save starts afresh.
func TestConnReuseAndDrop(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c, dials, stops := newConn(t, s, time.Second)
	if n := dials.Load(); n != 0 {
		t.Fatalf("NewConn dialled %d times", n)
	}
	for range 3 {
		saveOver(t, c, 1)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("3 saves dialled %d times, want 1", n)
	}

	err := c.Save(t.Context(), "x.json", func(*ssh.Client, int) error { return errors.New("disk full") })
	wantErr(t, err, fail.Deliver, c.String()+": saving x.json: disk full")
	if n := stops.Load(); n != 1 {
		t.Errorf("stop ran %d times after a failed save, want 1", n)
	}
	saveOver(t, c, 2)
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2: a failed save drops the connection", n)
	}
}

// An error from start fails the Save with the target named, keeping start's kind,
// and leaves no connection behind.
func TestConnStartFails(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	u, _ := url.Parse(s.URL("sftp", "/srl"))
	base := config(s)
	dials := countDials(&base)
	tg, err := sshclient.ParseTarget(u, "sftp", base)
	if err != nil {
		t.Fatal(err)
	}
	var clients []*ssh.Client
	c := sshclient.NewConn(tg, time.Second, func(_ context.Context, client *ssh.Client) (struct{}, error) {
		clients = append(clients, client)
		return struct{}{}, errors.New("no subsystem")
	}, nil)
	for range 2 {
		err := c.Save(t.Context(), "x.json", func(*ssh.Client, struct{}) error {
			t.Fatal("save ran without a started connection")
			return nil
		})
		wantErr(t, err, fail.Deliver, tg.URL+": no subsystem")
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2", n)
	}
	for _, client := range clients {
		if _, err := client.NewSession(); err == nil {
			t.Error("the connection start refused is still open")
		}
	}
}

// When ctx ends during a Save, the save keeps its connection for grace, to clean
// up; one still running then has its connection cut, so Save cannot hang.
func TestConnCancelGrace(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	c, _, _ := newConn(t, s, 300*time.Millisecond)

	ctx, cancel := context.WithCancel(t.Context())
	err := c.Save(ctx, "x.json", func(client *ssh.Client, _ int) error {
		cancel()
		// Within grace the connection still serves the clean-up.
		run(t, client)
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Deliver {
		t.Fatalf("got %v (kind %d), want a Deliver error wrapping context.Canceled", err, fail.KindOf(err))
	}

	// The clock starts when ctx ends, after the connection is up: a slow
	// handshake on a loaded machine must not count as the grace.
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	var cancelled time.Time
	done := make(chan error, 1)
	go func() {
		done <- c.Save(ctx, "x.json", func(client *ssh.Client, _ int) error {
			cancelled = time.Now()
			cancel()
			// A server that never answers: only cutting the connection ends this.
			client.Wait()
			return errors.New("connection lost")
		})
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Save hangs although its context ended")
	}
	if took := time.Since(cancelled); took < 300*time.Millisecond {
		t.Errorf("connection cut %v after ctx ended, before the grace of 300ms had passed", took)
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "connection lost") || fail.KindOf(err) != fail.Deliver {
		t.Fatalf("got %v (kind %d), want a Deliver error with the save's reason and the cancellation", err, fail.KindOf(err))
	}

	// Both failed saves dropped their connection: the next Save connects afresh.
	saveOver(t, c, 3)
	// Save refuses to start once ctx has ended.
	err = c.Save(ctx, "x.json", func(*ssh.Client, int) error {
		t.Fatal("save ran after its context ended")
		return nil
	})
	if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Deliver {
		t.Fatalf("got %v (kind %d), want a Deliver error wrapping the cancellation", err, fail.KindOf(err))
	}
}
