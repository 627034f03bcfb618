// Package option defines every cfgsnap option once: its name, default and help text.
//
// The same names are read from an event's "options" object (the event-handler
// instance configuration), from an --options FILE.json of the same shape, and from
// command-line flags, in that order of increasing precedence. Each source is applied
// with Set; Config then holds the typed result.
package option

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the typed result of all options. Zero values are never used: New fills
// in every default first.
type Config struct {
	Targets []string

	Source              string
	SRCLI               string
	JSONRPCURL          string
	JSONRPCSocket       string
	JSONRPCUser         string
	JSONRPCPasswordFile string
	JSONRPCPlainHTTP    bool
	CommitWait          time.Duration

	Name    string
	Comment string

	NetNS string

	Identities          []string
	KnownHosts          string
	HostKey             string
	InsecureSkipHostKey bool
	ConnectTimeout      time.Duration
	DeliverTimeout      time.Duration

	Branch          string
	GitPath         string
	AuthorEmail     string
	GitPasswordFile string

	S3AccessKeyFile string
	S3SecretKeyFile string

	CAFile               string
	WebhookSecretFile    string
	WebhookIncludeConfig bool
	WebhookFormat        string

	Keep     int
	KeepDays int

	// EncryptTo holds option encrypt-to's values as given, file paths with
	// "~/" expanded: package destination reads and checks the recipients.
	EncryptTo []string

	// Redact holds option redact's paths as given, "default" included, or
	// nil when redaction is off: package redact expands and applies them.
	Redact        []string
	RedactKeyFile string

	// SignKey is the switch's SSH signing key (option sign-key); package
	// sshsig reads it.
	SignKey string

	SpoolDir      string
	SpoolMaxCount int
	SpoolMaxBytes int64

	Debug bool

	// Read by the event-handler script; parsed here so that typos fail loudly.
	Binary        string
	Sudo          string
	RetryInterval time.Duration
}

// Option is one named setting.
type Option struct {
	Name    string
	Default string // as the user would write it; "" means unset
	Help    string
	List    bool // may be given several times (values [ ... ] in the event handler)
	Bool    bool // a flag without a value means true
	// Script marks options that only the event-handler script reads.
	Script bool
	// Trust says whether the event may set it (see SetEvent).
	Trust Trust
	set   func(c *Config, vals []string) error
}

// Trust says where an option's value may come from. Flags and an options file
// are root's own choice (root runs cfgsnap); the event's options are whatever
// the switch's configuration users wrote in the instance.
type Trust int

const (
	// Anyone: the event may set it (targets, names, retention, timeouts).
	Anyone Trust = iota
	// RootPath: a program, folder or socket that root uses; from the event only
	// when root owns the whole path (package safepath).
	RootPath
	// KeyFile: a file whose content cfgsnap uses or sends (keys, passwords,
	// CAs); from the event only inside the spool folder, cfgsnap's own.
	KeyFile
	// RootOnly: never from the event.
	RootOnly
)

// NetNSAuto is the default of option netns: srbase-mgmt where it exists, else none.
const NetNSAuto = "auto"

// All returns the option definitions, sorted by name: the caller's own copy.
func All() []Option { return slices.Clone(table) }

// Lookup returns the option called name.
func Lookup(name string) (Option, bool) {
	o, ok := byName[name]
	return o, ok
}

// table and byName are built once: the definitions never change, and Lookup
// runs for every option of every event, file and command line.
var table, byName = build()

func build() ([]Option, map[string]Option) {
	opts := []Option{
		{Name: "target", List: true,
			Help: "where snapshots go; repeat for several: sftp://user@host[:port]/path, scp://user@host[:port]/path, file:///path, git+ssh://git@host[:port]/repo.git, https://host/repo.git, s3://bucket/prefix, https://host/webhook",
			set:  func(c *Config, v []string) error { c.Targets = v; return nil }},
		{Name: "source", Default: "sr_cli",
			Help: "where the running configuration and the commit list come from: sr_cli, jsonrpc, or file:PATH (e.g. file:/etc/opt/srlinux/checkpoint/checkpoint-0.json)",
			set:  str(func(c *Config) *string { return &c.Source })},
		{Name: "sr-cli", Trust: RootPath, Default: "/usr/bin/sr_cli",
			Help: "path of the sr_cli executable, for source sr_cli",
			set:  str(func(c *Config) *string { return &c.SRCLI })},
		{Name: "jsonrpc-url", Default: "http://127.0.0.1/jsonrpc",
			Help: "JSON-RPC endpoint, for source jsonrpc; reached inside the network namespace",
			set:  str(func(c *Config) *string { return &c.JSONRPCURL })},
		{Name: "jsonrpc-plain-http", Trust: RootOnly, Default: "false", Bool: true,
			Help: "send the JSON-RPC password over plain http:// to a server that is not this switch's loopback (root only; anyone on the way reads it)",
			set:  boolean(func(c *Config) *bool { return &c.JSONRPCPlainHTTP })},
		{Name: "jsonrpc-socket", Trust: RootPath,
			Help: "unix socket of the JSON-RPC server (system json-rpc-server unix-socket); when set, jsonrpc-url's host is ignored",
			set:  str(func(c *Config) *string { return &c.JSONRPCSocket })},
		{Name: "jsonrpc-user", Default: "admin",
			Help: "JSON-RPC basic-auth user",
			set:  str(func(c *Config) *string { return &c.JSONRPCUser })},
		{Name: "jsonrpc-password-file", Trust: KeyFile,
			Help: "file holding the JSON-RPC password (first line); else $CFGSNAP_JSONRPC_PASSWORD",
			set:  path(func(c *Config) *string { return &c.JSONRPCPasswordFile })},
		{Name: "commit-wait", Default: "5",
			Help: "seconds to wait for the newest commit to reach status complete before reading the configuration",
			set:  seconds(func(c *Config) *time.Duration { return &c.CommitWait })},
		{Name: "name", Default: "{host}/{host}_{time}_{user}.json",
			Help: "file name template below the target path; fields {host} {time} {user} {date} {commit}; the result is sanitised and never leaves the target",
			set:  str(func(c *Config) *string { return &c.Name })},
		{Name: "comment",
			Help: "comment recorded with a manual snapshot",
			set:  str(func(c *Config) *string { return &c.Comment })},
		{Name: "netns", Default: NetNSAuto,
			Help: "network namespace for all network I/O, DNS included: auto (srbase-mgmt where /run/netns/srbase-mgmt exists), none, or a name",
			set:  str(func(c *Config) *string { return &c.NetNS })},
		{Name: "identity", Trust: KeyFile, Default: "~/.ssh/id_ed25519,~/.ssh/id_rsa", List: true,
			Help: "SSH private key files, tried in order; missing default files are skipped",
			set: func(c *Config, v []string) error {
				c.Identities = nil
				for _, s := range v {
					for _, p := range strings.Split(s, ",") {
						if p = strings.TrimSpace(p); p != "" {
							c.Identities = append(c.Identities, ExpandHome(p))
						}
					}
				}
				return nil
			}},
		{Name: "known-hosts", Trust: KeyFile, Default: "~/.ssh/known_hosts",
			Help: "OpenSSH known_hosts file that SSH host keys are checked against",
			set:  path(func(c *Config) *string { return &c.KnownHosts })},
		{Name: "host-key",
			Help: "pinned SSH host key fingerprint (SHA256:... as ssh-keygen -lf prints); replaces known-hosts",
			set: func(c *Config, v []string) error {
				// Checked here so a malformed pin is refused before an event is queued.
				s := last(v)
				b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimPrefix(s, "SHA256:"), "="))
				if s != "" && (err != nil || len(b) != 32 || !strings.HasPrefix(s, "SHA256:")) {
					return fmt.Errorf("want the SHA256:... fingerprint that ssh-keygen -lf prints, got %q", clip(s))
				}
				c.HostKey = s
				return nil
			}},
		{Name: "insecure-skip-host-key", Default: "false", Bool: true,
			Help: "accept any SSH host key (logs a warning on every connection); for labs only",
			set:  boolean(func(c *Config) *bool { return &c.InsecureSkipHostKey })},
		{Name: "connect-timeout", Default: "10",
			Help: "seconds allowed for connecting and authenticating to a destination",
			set:  seconds(func(c *Config) *time.Duration { return &c.ConnectTimeout })},
		{Name: "deliver-timeout", Default: "120",
			Help: "seconds one snapshot may take to reach one destination before the try is abandoned (it stays spooled)",
			set:  seconds(func(c *Config) *time.Duration { return &c.DeliverTimeout })},
		{Name: "branch", Default: "main",
			Help: "git: the branch snapshots are committed to",
			set:  str(func(c *Config) *string { return &c.Branch })},
		{Name: "git-path", Default: "{host}.json",
			Help: "git: file path in the repository, one per switch so git log -p shows its history; fields {host} {name}",
			set:  str(func(c *Config) *string { return &c.GitPath })},
		{Name: "author-email", Default: "{user}@{host}",
			Help: "git: the commit author's e-mail, whose name is the switch user who committed; fields {user} {host}",
			set:  str(func(c *Config) *string { return &c.AuthorEmail })},
		{Name: "git-password-file", Trust: KeyFile,
			Help: "git over HTTPS: file holding the token or password (first line); else $CFGSNAP_GIT_PASSWORD",
			set:  path(func(c *Config) *string { return &c.GitPasswordFile })},
		{Name: "s3-access-key-file", Trust: KeyFile,
			Help: "S3: file holding the access key id; else $AWS_ACCESS_KEY_ID, else the shared credentials file",
			set:  path(func(c *Config) *string { return &c.S3AccessKeyFile })},
		{Name: "s3-secret-key-file", Trust: KeyFile,
			Help: "S3: file holding the secret access key; else $AWS_SECRET_ACCESS_KEY, else the shared credentials file",
			set:  path(func(c *Config) *string { return &c.S3SecretKeyFile })},
		{Name: "ca-file", Trust: KeyFile,
			Help: "PEM file of CA certificates that HTTPS peers (webhook, git, S3, the jsonrpc source) are verified against, besides the system's",
			set:  path(func(c *Config) *string { return &c.CAFile })},
		{Name: "webhook-secret-file", Trust: KeyFile,
			Help: "webhook: file holding the HMAC-SHA256 secret that signs each body (X-Cfgsnap-Signature); else $CFGSNAP_WEBHOOK_SECRET; required for format json",
			set:  path(func(c *Config) *string { return &c.WebhookSecretFile })},
		{Name: "webhook-include-config", Default: "false", Bool: true,
			Help: "webhook: include the configuration itself in the body, not only its record and hashes",
			set:  boolean(func(c *Config) *bool { return &c.WebhookIncludeConfig })},
		{Name: "webhook-format", Default: "json",
			Help: "webhook: json (the snapshot's record; works with salt-api) or slack (a text message for Slack-style incoming webhooks)",
			set: func(c *Config, v []string) error {
				switch s := last(v); s {
				case "json", "slack":
					c.WebhookFormat = s
					return nil
				default:
					return fmt.Errorf("want json or slack, got %q", clip(s))
				}
			}},
		{Name: "encrypt-to", Trust: KeyFile, List: true,
			Help: "encrypt each snapshot with age at file-like targets (sftp, scp, file, s3), stored as NAME.age: age recipients (age1...), SSH public keys (ssh-ed25519 ..., ssh-rsa ...), or the absolute path of a file of them, one a line (# comments), as age -R reads; repeat for several; refused with git targets and with webhook-include-config",
			set: func(c *Config, v []string) error {
				c.EncryptTo = nil
				for _, s := range v {
					if s = strings.TrimSpace(s); s == "" {
						continue
					}
					if p, ok := RecipientFile(s); ok {
						s = p
					}
					c.EncryptTo = append(c.EncryptTo, s)
				}
				return nil
			}},
		{Name: "redact", List: true,
			Help: "replace these secrets with a keyed hash before the configuration is spooled: SR Linux JSON paths without list keys and module prefixes (system/tls/server-profile/key), comma-separated or repeated; default stands for the documented list (passwords, TLS keys, SNMP communities, RADIUS/TACACS and keychain keys); none (the default) keeps the configuration as it is",
			set: func(c *Config, v []string) error {
				c.Redact = nil
				for _, s := range v {
					for _, p := range strings.Split(s, ",") {
						if p = strings.Trim(strings.TrimSpace(p), "/"); p == "" {
							continue
						}
						if p != "none" && p != "default" && !redactPath.MatchString(p) {
							return fmt.Errorf("%q is not a path such as system/tls/server-profile/key: member names joined by /, without list keys or module prefixes", clip(p))
						}
						c.Redact = append(c.Redact, p)
					}
				}
				if slices.Contains(c.Redact, "none") {
					if len(c.Redact) > 1 {
						return fmt.Errorf("none turns redaction off and cannot come with paths")
					}
					c.Redact = nil
				}
				return nil
			}},
		{Name: "redact-key-file", Trust: KeyFile,
			Help: "redact: file holding the HMAC-SHA256 key of the redaction markers (first line, at least 16 bytes); required with redact; the same key on every switch gives the same secret the same marker",
			set:  path(func(c *Config) *string { return &c.RedactKeyFile })},
		{Name: "sign-key", Trust: KeyFile,
			Help: "the switch's signing key: an unencrypted ed25519 SSH private key file (ssh-keygen -t ed25519 -N ''); when set, every git commit carries an SSH signature by it that git log --show-signature checks (gpg.format ssh)",
			set:  path(func(c *Config) *string { return &c.SignKey })},
		{Name: "keep", Default: "0",
			Help: "retention: keep the newest N snapshots of this switch at file-like targets (sftp, file, s3); 0 keeps all",
			set:  whole(func(c *Config) *int { return &c.Keep })},
		{Name: "keep-days", Default: "0",
			Help: "retention: delete snapshots of this switch older than N days at file-like targets; 0 keeps all; the newest is always kept",
			set:  whole(func(c *Config) *int { return &c.KeepDays })},
		{Name: "spool-dir", Trust: RootPath, Default: "/etc/opt/srlinux/cfgsnap",
			Help: "folder for the job queue, undelivered snapshots and the last-run report",
			set:  path(func(c *Config) *string { return &c.SpoolDir })},
		{Name: "spool-max-count", Default: "100",
			Help: "undelivered snapshots kept at most; the oldest is dropped (and logged) first",
			set: func(c *Config, v []string) error {
				n, err := strconv.Atoi(last(v))
				if err != nil || n < 1 {
					return fmt.Errorf("want a whole number of at least 1, got %q", clip(last(v)))
				}
				c.SpoolMaxCount = n
				return nil
			}},
		{Name: "spool-max-bytes", Default: "64MiB",
			Help: "bytes of undelivered snapshots kept at most (suffixes KiB, MiB, GiB); the oldest is dropped (and logged) first",
			set: func(c *Config, v []string) error {
				n, err := parseBytes(last(v))
				if err != nil {
					return err
				}
				c.SpoolMaxBytes = n
				return nil
			}},
		{Name: "debug", Default: "false", Bool: true,
			Help: "log each step to stderr (and the spool's worker.log)",
			set:  boolean(func(c *Config) *bool { return &c.Debug })},
		{Name: "binary", Trust: RootOnly, Default: "/usr/local/bin/cfgsnap", Script: true,
			Help: "where cfgsnap is on the switch: set as BINARY at the top of the event-handler script cfgsnap.py, root's choice",
			set:  str(func(c *Config) *string { return &c.Binary })},
		{Name: "sudo", Default: "auto", Script: true,
			Help: "event-handler script: run cfgsnap through sudo -n: true, false, or auto (true unless netns is none)",
			set: func(c *Config, v []string) error {
				switch s := last(v); s {
				case "auto", "true", "false":
					c.Sudo = s
					return nil
				default:
					return fmt.Errorf("want auto, true or false, got %q", clip(s))
				}
			}},
		{Name: "retry-interval", Default: "60", Script: true,
			Help: "event-handler script: seconds after which the script has cfgsnap look again, once after each new last-change and then while snapshots wait in the spool; 0 turns retries off",
			set:  seconds(func(c *Config) *time.Duration { return &c.RetryInterval })},
	}
	slices.SortFunc(opts, func(a, b Option) int { return strings.Compare(a.Name, b.Name) })
	byName := make(map[string]Option, len(opts))
	for _, o := range opts {
		byName[o.Name] = o
	}
	return opts, byName
}

// New returns a Config holding every default.
func New() *Config {
	c := &Config{}
	for _, o := range All() {
		if o.Default == "" {
			continue
		}
		vals := []string{o.Default}
		if err := o.set(c, vals); err != nil {
			panic("option " + o.Name + ": bad default: " + err.Error()) // a bug in the table above
		}
	}
	return c
}

// Set applies the values given for option name. For a list option the values
// replace the default (so repeating --target builds a list); for the others the
// last value wins.
func (c *Config) Set(name string, vals []string) error {
	o, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown option %q (cfgsnap help lists them all)", name)
	}
	if len(vals) == 0 {
		return fmt.Errorf("option %s: no value", name)
	}
	for _, v := range vals {
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("option %s: value contains a NUL byte", name)
		}
	}
	if err := o.set(c, vals); err != nil {
		return fmt.Errorf("option %s: %w", name, err)
	}
	return nil
}

// RecipientFile reports whether v, a value of option encrypt-to, names a file
// of recipients rather than being one, and returns its path with "~/"
// expanded. A file is named by an absolute path or one below "~/"; a
// recipient (age1..., ssh-ed25519 AAAA...) never starts with "/" or "~".
func RecipientFile(v string) (string, bool) {
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "~/") {
		return ExpandHome(v), true
	}
	return "", false
}

// ExpandHome replaces a leading "~/" with the current user's home directory.
func ExpandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return p
}

// redactPath is a path of option redact: YANG member names joined by "/".
var redactPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*(/[A-Za-z_][A-Za-z0-9_.-]*)*$`)

func last(v []string) string { return v[len(v)-1] }

// clip keeps an error line short however long the value it quotes.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func str(field func(*Config) *string) func(*Config, []string) error {
	return func(c *Config, v []string) error { *field(c) = last(v); return nil }
}

func path(field func(*Config) *string) func(*Config, []string) error {
	return func(c *Config, v []string) error { *field(c) = ExpandHome(last(v)); return nil }
}

func whole(field func(*Config) *int) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		n, err := strconv.Atoi(last(v))
		if err != nil || n < 0 || n > 1_000_000 {
			return fmt.Errorf("want a whole number from 0, got %q", clip(last(v)))
		}
		*field(c) = n
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		b, err := strconv.ParseBool(last(v))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", clip(last(v)))
		}
		*field(c) = b
		return nil
	}
}

func seconds(field func(*Config) *time.Duration) func(*Config, []string) error {
	return func(c *Config, v []string) error {
		f, err := strconv.ParseFloat(last(v), 64)
		if err != nil || f < 0 || f > 86400 {
			return fmt.Errorf("want seconds from 0 to 86400, got %q", clip(last(v)))
		}
		*field(c) = time.Duration(f * float64(time.Second))
		return nil
	}
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 1 || n > (1<<50)/mult {
		return 0, fmt.Errorf("want a size in bytes such as 64MiB, got %q", clip(s))
	}
	return n * mult, nil
}
