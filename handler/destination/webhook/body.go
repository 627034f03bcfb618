package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// Schema names the shape of a json body, so that a receiver can tell it from a
// later, incompatible one.
const Schema = "cfgsnap.snapshot.v1"

// Values of the body's config_encoding.
const (
	// EncodingUTF8: config is the configuration's text, byte for byte (JSON
	// string escaping is lossless for valid UTF-8, which SR Linux's JSON is).
	EncodingUTF8 = "utf-8"
	// EncodingBase64: config is standard base64, for bytes that are not UTF-8,
	// which a JSON string cannot carry unchanged.
	EncodingBase64 = "base64"
)

// Message is the body of format json: the snapshot's record (its fields at the
// top level, named as in the spool's record), and with webhook-include-config
// the configuration. Receivers ignore fields they do not know, so fields may be
// added under the same Schema.
type Message struct {
	Schema string `json:"schema"`
	snapshot.Record
	// Config is nil unless webhook-include-config is set; then it holds all
	// rec.Size bytes, encoded as ConfigEncoding says.
	Config         *string `json:"config,omitempty"`
	ConfigEncoding string  `json:"config_encoding,omitempty"`
}

// Slack is the body of format slack: Slack's incoming-webhook message, which
// Mattermost, Rocket.Chat and Discord's /slack endpoint take too.
type Slack struct {
	Text string `json:"text"`
}

// Sign returns the X-Cfgsnap-Signature value for body: "sha256=" and the hex
// HMAC-SHA256 of the body's exact bytes under secret. It is GitHub's form, so
// Salt's hashutil.github_signature checks it as it is.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// read reads all rec.Size bytes of r before anything is sent, keeping them when
// the body includes them, and checks them against rec.SHA256 (filling it in when
// empty), so the body's hash is that of the bytes cfgsnap holds.
func (d *Destination) read(ctx context.Context, rec *snapshot.Record, r io.Reader) ([]byte, error) {
	if rec.Size < 0 {
		return nil, fail.New(fail.Internal, "%s: %s has a negative size (%d): its spool record is damaged; take a new snapshot", d, rec.Name, rec.Size)
	}
	if d.include && rec.Size > MaxConfig {
		return nil, fail.New(fail.Usage, "%s: %s is %d bytes, more than the %d MiB webhook-include-config sends: turn webhook-include-config off and keep the configuration at an sftp://, scp:// or file:// target", d, rec.Name, rec.Size, MaxConfig>>20)
	}
	sum := sha256.New()
	var kept bytes.Buffer
	w := io.Writer(sum)
	if d.include {
		kept.Grow(int(rec.Size))
		w = io.MultiWriter(sum, &kept)
	}
	if err := destination.Copy(ctx, w, r, rec.Size); err != nil {
		return nil, fail.As(fail.Deliver, fmt.Errorf("%s: reading %s (nothing was posted): %w", d, rec.Name, err))
	}
	got := hex.EncodeToString(sum.Sum(nil))
	switch {
	case rec.SHA256 == "":
		rec.SHA256 = got
	case !strings.EqualFold(rec.SHA256, got):
		return nil, fail.New(fail.Internal, "%s: %s has sha256 %s, not the %s of its record, so nothing was posted: the spooled copy is damaged; take a new snapshot", d, rec.Name, got, rec.SHA256)
	}
	return kept.Bytes(), nil
}

// body encodes what Save posts. rec.Stored holds other destinations'
// locations (destination.Location), which carry no secret by contract, as
// their String does; they go as they are, so a receiver can fetch from them
// (a git "repo#branch:path", an S3 endpoint in the query).
func (d *Destination) body(rec snapshot.Record, config []byte) ([]byte, error) {
	stored := make([]string, len(rec.Stored))
	for i, s := range rec.Stored {
		stored[i] = oneLine(s)
	}
	rec.Stored = stored
	var v any
	if d.format == FormatSlack {
		v = Slack{Text: slackText(rec)}
	} else {
		m := Message{Schema: Schema, Record: rec}
		if d.include {
			s, enc := encodeConfig(config)
			m.Config, m.ConfigEncoding = &s, enc
		}
		v = m
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The configuration and Slack's text stay readable; escaping <>& buys
	// nothing in a body that is never embedded in HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeConfig keeps valid UTF-8 as text, which a Salt reactor or a jq filter
// can use directly, and turns anything else into base64: a JSON string cannot
// carry invalid UTF-8 unchanged, and a destination must store any bytes.
func encodeConfig(config []byte) (string, string) {
	if utf8.Valid(config) {
		return string(config), EncodingUTF8
	}
	return base64.StdEncoding.EncodeToString(config), EncodingBase64
}

// slackText is one line a person reads in a channel:
//
//	leaf1: commit 42 by alice: add e1-1 (1 added, 0 removed, 0 changed: +/interface[name=e1-1]) stored at sftp://backup@10.0.0.5/srl/leaf1/leaf1_20250920T110208.456Z_alice.json
//
// Everything in it that came from someone else (comments, names) is cut to one
// line and escaped as Slack requires, so a comment cannot mention @channel or
// forge a link.
func slackText(rec snapshot.Record) string {
	var b strings.Builder
	b.WriteString(orUnknown(rec.Host))
	b.WriteString(": ")
	b.WriteString(who(rec))
	if c := strings.TrimSpace(rec.Comment); c != "" {
		b.WriteString(": ")
		b.WriteString(clip(c, 200))
	}
	if rec.Unsettled {
		b.WriteString(" [unsettled")
		if len(rec.Possibly) > 0 {
			b.WriteString(": may also hold " + who(snapshot.Record{Commits: rec.Possibly}))
		}
		b.WriteString("]")
	}
	b.WriteString(" (")
	switch {
	case rec.Changes == nil:
		b.WriteString("changes unknown")
	case rec.Changes.None():
		b.WriteString("no change")
	default:
		b.WriteString(rec.Changes.String())
	}
	b.WriteString(")")
	// Stored holds full locations (target and name), as the pipeline records them.
	if len(rec.Stored) > 0 {
		b.WriteString(" stored at ")
		b.WriteString(strings.Join(rec.Stored, ", "))
	} else {
		b.WriteString(" saved as `" + rec.Name + "`")
	}
	return slackEscape(oneLine(b.String()))
}

// who names the commits a snapshot covers and their authors.
func who(rec snapshot.Record) string {
	switch {
	case rec.Manual:
		return "manual snapshot by " + orUnknown(rec.User)
	case len(rec.Commits) == 0:
		return "change by " + orUnknown(rec.User)
	}
	parts := make([]string, len(rec.Commits))
	for i, c := range rec.Commits {
		user := c.Username
		if user == "" {
			user = rec.User
		}
		parts[i] = strconv.FormatInt(c.ID, 10) + " by " + orUnknown(user)
	}
	if len(parts) == 1 {
		return "commit " + parts[0]
	}
	return "commits " + strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

// clip cuts s to at most n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// oneLine replaces line breaks, other control characters and invisible format
// characters (such as a right-to-left override) with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// slackEscape escapes the three characters Slack reads as markup: <...> makes
// links and mentions such as <!channel>, & starts an entity.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// Redact returns u as reports and logs may show it: query values and any
// password replaced by xxxxx, no fragment and, for webhook-format slack, no path
// after its first segment, since Slack-style webhooks (Slack, Mattermost,
// Discord) carry their token there.
func Redact(u *url.URL, format string) string {
	v := *u
	if v.User != nil {
		if _, ok := v.User.Password(); ok {
			v.User = url.UserPassword(v.User.Username(), "xxxxx")
		}
	}
	v.Fragment, v.RawFragment = "", ""
	v.RawQuery, v.ForceQuery = redactQuery(u.RawQuery), false
	if format == FormatSlack {
		if first, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); rest != "" {
			v.Path, v.RawPath = "/"+first+"/xxxxx", ""
		}
	}
	return v.String()
}

// redactQuery keeps parameter names, which tell targets apart, and hides their
// values; a parameter without a value may itself be a token.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if name, _, ok := strings.Cut(p, "="); ok {
			parts[i] = name + "=xxxxx"
		} else if p != "" {
			parts[i] = "xxxxx"
		}
	}
	return strings.Join(parts, "&")
}
