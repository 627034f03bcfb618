package git

import (
	"net/url"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Forms lists the target forms this package takes, for help texts and the
// message that refuses an unknown scheme.
func Forms() []string {
	return []string{
		"git+ssh://user@host[:port]/path/repo.git",
		"user@host:path/repo.git",
		"https://host/path/repo.git",
	}
}

// Kind describes git targets to package target's registry: those Claims
// takes, https:// ones ending in .git among them (the others are webhooks),
// and the scp-like form, which Parse reads.
func Kind() destination.Kind {
	f := Forms()
	return destination.Kind{
		Name:    "git",
		Schemes: []string{"git+ssh", "ssh", "git+https", "git+http"},
		Forms:   []string{f[0] + " (git)", f[1] + " (git)", f[2] + " (git; git+https:// where the URL does not end in .git)"},
		Claims:  Claims,
		Parse: func(target string) (*url.URL, bool) {
			u, err := SCPURL(target)
			return u, err == nil
		},
		New: func(u *url.URL, env destination.Env) (destination.Destination, error) {
			return destination.Made(New(u, env.Config, env.Dial, env.Logf))
		},
		EncryptTo: EncryptTo,
	}
}

// EncryptTo refuses a git target while option encrypt-to is set. A git
// target is there for its history: git log -p and git blame show who changed
// what, line by line. An encrypted file shows none of it, is new random bytes
// at every commit (so the repository stores each snapshot whole, with no
// delta), and still tells everyone who can read the repository when and by
// whom the switch changed. Storing the plaintext instead would break what
// encrypt-to promises. So cfgsnap does neither, and says so before anything
// is queued.
func EncryptTo(u *url.URL, _ *option.Config) error {
	return fail.New(fail.Usage, "target %s: option encrypt-to does not apply to git, whose diffs and blame an encrypted file would defeat (and each commit would store it whole): drop the git target and send encrypted copies to an sftp, scp, s3 or file target, or drop encrypt-to and keep the repository private", u.Redacted())
}

// IsSCPLike reports whether target is git's scp-like form, user@host:path (as
// in git@github.com:org/configs.git), which url.Parse cannot read. The rule is
// git's own (a ':' before any '/', and no "://"), narrowed to forms that name
// the user: "host:path" alone would also match "file:/x" and other URLs without
// a "//", so a target without a user is written git+ssh://host/path instead.
func IsSCPLike(target string) bool {
	if strings.Contains(target, "://") {
		return false
	}
	host, _, ok := splitSCP(target)
	return ok && strings.Contains(host, "@")
}

// splitSCP splits "[user@]host:path" at the colon that ends the host, skipping
// one inside brackets ("git@[2001:db8::5]:repo.git").
func splitSCP(s string) (userHost, path string, ok bool) {
	from := 0
	if i := strings.IndexByte(s, '['); i >= 0 {
		j := strings.IndexByte(s, ']')
		if j < i {
			return "", "", false
		}
		from = j
	}
	i := strings.IndexByte(s[from:], ':')
	if i < 0 {
		return "", "", false
	}
	i += from
	if slash := strings.IndexByte(s, '/'); slash >= 0 && slash < i {
		return "", "", false // a local path such as ./a:b
	}
	return s[:i], s[i+1:], i > 0
}

// Claims reports whether u is a git target: git+ssh://, ssh://, git+https://,
// git+http://, an http(s):// URL whose path ends in .git (other https:// targets
// are webhooks), or an scp-like target as the parsing of target strings gives it
// (see SCPURL).
func Claims(u *url.URL) bool {
	switch u.Scheme {
	case "git+ssh", "ssh", "git+https", "git+http":
		return true
	case "https", "http":
		return strings.HasSuffix(u.Path, ".git")
	case "":
		return u.Opaque != "" && IsSCPLike(u.Opaque)
	}
	return false
}

// SCPURL is how an scp-like target travels as a *url.URL: the string as the
// user wrote it, in Opaque, with no scheme. No URL form of git sends the same
// relative path to the server (ssh://host/~/x sends "~/x", which hosting
// services refuse), so the form is kept rather than converted; its String and
// Redacted are then the target exactly as written.
func SCPURL(target string) (*url.URL, error) {
	if !IsSCPLike(target) {
		return nil, fail.New(fail.Usage, "target %q is not of the form user@host:path/repo.git", target)
	}
	return &url.URL{Opaque: target}, nil
}

// endpoint is a target taken apart.
type endpoint struct {
	// display is the target as messages show it: as the user wrote it, with no
	// password (there is none: targets with one are refused).
	display string

	ssh bool
	// For SSH: sshURL carries the user, host and port for sshclient (which names
	// it in its messages), and repo is the path exactly as git-upload-pack and
	// git-receive-pack get it.
	sshURL *url.URL
	repo   string

	// For HTTP(S): httpURL is the repository URL without credentials, and user
	// the name sent with the password.
	httpURL *url.URL
	user    string
}

// defaultHTTPUser is sent with the password when the target names no user:
// hosting services accept any name with a token.
const defaultHTTPUser = "cfgsnap"

func parseEndpoint(u *url.URL) (endpoint, error) {
	if u.Scheme == "" && u.Opaque != "" {
		return parseSCP(u.Opaque)
	}
	bad := func(format string, args ...any) error {
		return fail.New(fail.Usage, "target %s: "+format, append([]any{u.Redacted()}, args...)...)
	}
	if _, has := u.User.Password(); has {
		return endpoint{}, bad("a password in the URL would show wherever the target is shown; put it in the file option git-password-file names, or in $CFGSNAP_GIT_PASSWORD")
	}
	if u.Hostname() == "" {
		return endpoint{}, bad("names no host; write %s", strings.Join(Forms(), " or "))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, bad("a git target takes no ?query or #fragment; remove it")
	}
	if strings.ContainsFunc(u.Path, isControl) {
		return endpoint{}, bad("the path holds control characters")
	}
	if strings.Trim(u.Path, "/~") == "" {
		return endpoint{}, bad("names no repository; add its path, as in %s", Forms()[0])
	}
	e := endpoint{display: u.Redacted()}
	switch u.Scheme {
	case "git+ssh", "ssh":
		e.ssh = true
		e.sshURL = u
		// As git does: ssh://host/~/repo and ssh://host/~user/repo are below a
		// home folder, which the server's git resolves; anything else is absolute.
		e.repo = u.Path
		if strings.HasPrefix(e.repo, "/~") {
			e.repo = e.repo[1:]
		}
	case "https", "http", "git+https", "git+http":
		scheme := strings.TrimPrefix(u.Scheme, "git+")
		e.httpURL = &url.URL{Scheme: scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
		e.user = u.User.Username()
		if e.user == "" {
			e.user = defaultHTTPUser
		}
	default:
		return endpoint{}, bad("not a git target; write %s", strings.Join(Forms(), " or "))
	}
	return e, nil
}

func parseSCP(s string) (endpoint, error) {
	userHost, path, ok := splitSCP(s)
	at := strings.LastIndexByte(userHost, '@')
	if !ok || at < 0 {
		return endpoint{}, fail.New(fail.Usage, "target %q is not of the form user@host:path/repo.git", s)
	}
	user, host := userHost[:at], userHost[at+1:]
	bad := func(what string) error {
		return fail.New(fail.Usage, "target %s: %s; write user@host:path/repo.git or %s", s, what, Forms()[0])
	}
	switch {
	case user == "" || strings.ContainsAny(user, ":/"):
		return endpoint{}, bad("the user is empty or holds ':' or '/'")
	case host == "" || strings.ContainsAny(host, "/@") || strings.ContainsFunc(host, isSpaceOrControl):
		return endpoint{}, bad("the host is empty or not a host name")
	case strings.Trim(path, "/~") == "":
		return endpoint{}, bad("it names no repository")
	case strings.ContainsFunc(path, isControl):
		return endpoint{}, bad("the path holds control characters")
	}
	return endpoint{
		display: s,
		ssh:     true,
		sshURL:  &url.URL{Scheme: "ssh", User: url.User(user), Host: host},
		repo:    path,
	}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }
