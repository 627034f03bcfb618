package git_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/destination/git"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

func TestIsSCPLike(t *testing.T) {
	for s, want := range map[string]bool{
		"git@github.com:org/configs.git":    true,
		"git@10.0.0.5:/srv/git/configs.git": true,
		"git@[2001:db8::5]:configs.git":     true,
		"backup@host:~/configs.git":         true,
		"host:configs.git":                  false, // needs the user, or it would take file:/x
		"file:/var/backups":                 false,
		"git+ssh://git@host/configs.git":    false,
		"https://host/configs.git":          false,
		"./a@b:c":                           false,
		"git@host":                          false,
		"":                                  false,
	} {
		if got := git.IsSCPLike(s); got != want {
			t.Errorf("IsSCPLike(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestClaims(t *testing.T) {
	for s, want := range map[string]bool{
		"git+ssh://git@host/configs.git":             true,
		"ssh://git@host/configs.git":                 true,
		"https://host/org/configs.git":               true,
		"https://host/org/configs.git/":              false, // a webhook, as target.Notifies has it
		"http://10.0.0.5:8080/configs.git":           true,
		"git+https://dev.azure.com/org/_git/configs": true,
		"https://host/webhook":                       false,
		"sftp://backup@host/srl":                     false,
		"git@github.com:org/configs.git":             true,
	} {
		u, err := parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := git.Claims(u); got != want {
			t.Errorf("Claims(%s) = %v, want %v", s, got, want)
		}
	}
}

// New takes every form, shows it as written, and refuses what cannot work
// with a usage error before anything connects.
func TestNew(t *testing.T) {
	for _, s := range []string{
		"git+ssh://git@10.0.0.5/srv/git/configs.git",
		"git+ssh://git@10.0.0.5:2222/~/configs.git",
		"ssh://git@[2001:db8::5]:2222/configs.git",
		"git@github.com:org/configs.git",
		"https://github.com/org/configs.git",
		"https://token-user@gitlab.example/group/configs.git",
		"git+https://dev.azure.com/org/_git/configs",
		"http://10.0.0.5:8080/configs.git",
	} {
		u, err := parse(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := git.New(u, option.New(), nil, nil)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if d.String() != s {
			t.Errorf("%s: String() = %q", s, d.String())
		}
	}

	bad := map[string]string{
		"https://user:hunter2@host/configs.git": "password",
		"git+ssh://git:hunter2@host/c.git":      "password",
		"git+ssh://git@host/":                   "names no repository",
		"git+ssh://git@host/~/":                 "names no repository",
		"https://host/configs.git?x=1":          "no ?query",
		"git+ssh:///configs.git":                "names no host",
		"git+ssh://git@host:99999/c.git":        "port",
		"git@:configs.git":                      "host",
		"git@host:":                             "names no repository",
	}
	for s, part := range bad {
		u, err := parse(s)
		if err != nil {
			continue // refused before New, which is as good
		}
		_, err = git.New(u, option.New(), nil, nil)
		if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), part) {
			t.Errorf("%s: got %v (kind %d), want a Usage error about %q", s, err, fail.KindOf(err), part)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the password: %v", s, err)
		}
	}

	u, _ := url.Parse("https://host/configs.git")
	for name, set := range map[string]func(c *option.Config){
		"branch":            func(c *option.Config) { c.Branch = "main..x" },
		"git-path":          func(c *option.Config) { c.GitPath = "{host}/../x" },
		"git-path ":         func(c *option.Config) { c.GitPath = "/{host}.json" },
		"git-path  ":        func(c *option.Config) { c.GitPath = ".git/{host}" },
		"git-path   ":       func(c *option.Config) { c.GitPath = "{user}.json" },
		"author-email":      func(c *option.Config) { c.AuthorEmail = "{user}>@x" },
		"ca-file":           func(c *option.Config) { c.CAFile = "/nonexistent/ca.pem" },
		"git-password-file": func(c *option.Config) { c.GitPasswordFile = "/nonexistent/token" },
	} {
		c := option.New()
		set(c)
		_, err := git.New(u, c, nil, nil)
		if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: got %v (kind %d), want a Usage error naming the option", name, err, fail.KindOf(err))
		}
	}
}
