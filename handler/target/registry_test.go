package target_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// folder is a destination as README's "Adding a destination" adds one, in
// its fewest lines: tmp:///path keeps snapshots below a local folder.
type folder struct{ root string }

func (f folder) String() string { return "tmp://" + f.root }
func (f folder) Close() error   { return nil }

// Save reads the whole snapshot before it writes, to a temporary name that
// it renames into place, so a failed read leaves nothing behind.
func (f folder) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	var b bytes.Buffer
	if err := destination.Copy(ctx, &b, r, rec.Size); err != nil {
		return err
	}
	final := filepath.Join(f.root, filepath.FromSlash(rec.Name))
	tmp := filepath.Join(f.root, filepath.FromSlash(destination.TempName(rec.Name)))
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// tmpKind is what the destination's package would export as its Kind.
func tmpKind() destination.Kind {
	return destination.Kind{
		Name:    "tmp",
		Schemes: []string{"tmp"},
		Forms:   []string{"tmp:///path"},
		Check: func(u *url.URL) error {
			if u.Host != "" || !filepath.IsAbs(u.Path) {
				return fail.New(fail.Usage, "target %s: write tmp:///absolute/path", u.Redacted())
			}
			return nil
		},
		New: func(u *url.URL, _ destination.Env) (destination.Destination, error) {
			return folder{root: u.Path}, nil
		},
	}
}

// TestAddAKind: a new kind is one Kind added to the list. The registry then
// parses, checks, shows and opens its targets, and what it opens passes the
// conformance suite; the kinds already there are as they were.
func TestAddAKind(t *testing.T) {
	r := target.NewRegistry(append(target.Kinds(), tmpKind())...)
	_, err := r.Parse("ftp://10.0.0.1/x")
	if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "tmp:///path") || !strings.Contains(err.Error(), "sftp://user@host[:port]/path") {
		t.Errorf("unknown scheme: %v; want a usage error that lists tmp:///path with the others", err)
	}
	for raw, say := range map[string]string{
		"tmp://host/x":       "tmp:///absolute/path", // its own Check
		"tmp://u:hunter2@/x": "password",             // and what every kind gets
	} {
		if _, err := r.Parse(raw); fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), say) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v; want a usage error saying %q", raw, err, say)
		}
	}
	if _, err := target.Parse("tmp:///x"); err == nil {
		t.Error("the registry of cfgsnap's own kinds takes tmp:///x")
	}
	slack := option.New()
	slack.WebhookFormat = "slack"
	for _, raw := range []string{"sftp://backup@10.0.0.5/srl", "git@git.example.net:net/configs.git", "https://hooks.slack.com/services/T0/B0/XXXX", "tmp:///srv/srl"} {
		if r.Notifies(raw) != strings.HasPrefix(raw, "https://hooks") {
			t.Errorf("%s: Notifies = %v", raw, r.Notifies(raw))
		}
		if got := r.Display(raw, slack); got == "(bad target)" || strings.Contains(got, "XXXX") {
			t.Errorf("%s: Display = %q", raw, got)
		}
	}
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		root := filepath.Join(t.TempDir(), "srl")
		d, err := r.Open("tmp://"+root, target.Env{Config: option.New(), Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		return d, func() map[string][]byte { return desttest.ReadTree(t, root) }
	})
}

// TestSchemeTakenTwice: two kinds that list one scheme without telling their
// URLs apart are a mistake in the list, found when the registry is made.
func TestSchemeTakenTwice(t *testing.T) {
	clash := tmpKind()
	clash.Schemes = []string{"tmp", "sftp"}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "sftp") {
			t.Errorf("recovered %v; want a panic that names scheme sftp", p)
		}
	}()
	target.NewRegistry(append(target.Kinds(), clash)...)
}
