package snapshot

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// Pattern recognises the names that Name gives one template for the snapshots
// of one host, and reads back the time each name shows. Retention (options keep
// and keep-days) deletes only what a Pattern recognises, so that it never
// touches a file cfgsnap did not write for that host: a note, a temporary file,
// another switch's snapshot, a snapshot named by hand.
//
// Recognition is by the name alone: literal text must be exact, {host} must be
// the host's sanitised name, {time} must be a timestamp as Timestamp writes it,
// {date} must be the date of that timestamp, and {user} and {commit} must be
// values Name can produce (the safe alphabet, not starting with '.' or '-', no
// longer than Name makes them). A field that appears twice must have the same
// value twice. No other host's name is recognised, not even one that extends
// this host's (leaf1-b, dc1-leaf1 for leaf1): CheckPattern accepts only
// templates whose names show where {host} ends.
//
// A Pattern is immutable and safe for concurrent use.
type Pattern struct {
	re *regexp.Regexp
	// groups holds the field name of each capture group of re, in order.
	groups []string
}

// timeExpr matches what Timestamp writes; Match then parses it, which refuses
// the impossible dates and times the expression lets through.
const timeExpr = `([0-9]{8}T[0-9]{6}\.[0-9]{3}Z)`

// CheckPattern reports whether template is one whose names a Pattern can tell
// apart by host and read a time from, as retention needs. It refuses with a
// fail.Usage error a template that Name refuses, and one that
//
//   - has a field other than {host} in a folder: one host's snapshots would
//     then spread over several folders, and retention lists only the folder
//     of the snapshot it just saved, so it would never see the older ones;
//   - has no {time} in its file name: retention orders snapshots and reads
//     their age from it (modification times change when files are copied or
//     restored; names do not);
//   - has no {host}: the snapshots of different switches would look alike,
//     and one switch's retention would delete another's;
//   - has {host} in no folder and, in its file name, more than once or beside
//     {user} or {commit}; see below.
//
// Each switch's names must be its own: no name that Name gives one host may
// match the Pattern of another. Values are sanitised to A-Z a-z 0-9 . _ + @ -,
// the alphabet of literal text too, so no literal can show where a value ends
// ('-' or '_' after {host} separates nothing: a host may be called leaf1-b).
// Only lengths can. {time} and {date} have fixed lengths; {user} and {commit}
// do not. So {host} must be found in an element that holds no field of free
// length but {host}:
//
//   - a folder, e.g. the default {host}/{host}_{time}_{user}.json: folders hold
//     no field but {host}, so the folder's length gives the host's, and thus
//     the host; retention lists only that folder;
//   - or the file name, with {host} once and no other field but {time} and
//     {date}, e.g. {host}_{time}.json in a folder shared by all switches. The
//     length of such a name gives the host's. A record without a time writes
//     "unknown" for {time} and {date}, which changes the length, but such a
//     name matches no Pattern: between {host} and one end of the name lies a
//     {time} or {date}, and the one nearest that end is where the Pattern
//     wants a digit or 'Z' and the name holds 'u' or 'n'. (With {host} twice
//     this proof fails; such templates are refused.)
//
// So {host}-{user}-{time}.json is refused: leaf1-b-alice-<time> is also
// leaf1's, by user b-alice.
func CheckPattern(template string) error {
	_, err := parsePattern(template)
	return err
}

// parsePattern parses template and applies CheckPattern's rules.
func parsePattern(template string) ([][]part, error) {
	elems, err := parseTemplate(template)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fail.New(fail.Usage, "option name: template %q %s; retention (options keep and keep-days) needs it, or set both to 0",
			template, fmt.Sprintf(format, args...))
	}
	hasHost := false
	for i, elem := range elems {
		last := i == len(elems)-1
		for _, p := range elem {
			switch {
			case p.field == "host":
				hasHost = true
			case p.field != "" && !last:
				return nil, bad("has {%s} in folder %q, so one switch's snapshots would spread over several folders and retention would not find the older ones; keep only {host} in folders",
					p.field, strings.Split(template, "/")[i])
			}
		}
	}
	hasTime := false
	for _, p := range elems[len(elems)-1] {
		hasTime = hasTime || p.field == "time"
	}
	switch {
	case !hasTime:
		return nil, bad("has no {time} in its file name, from which retention reads each snapshot's age; add {time}")
	case !hasHost:
		return nil, bad("has no {host}, so retention could not tell this switch's snapshots from another's; add {host}")
	}
	if why := hostHidden(elems); why != "" {
		return nil, bad("has {host} %s; put {host} in a folder, as the default {host}/{host}_{time}_{user}.json does, or keep only one {host}, {time} and {date} in the file name, as {host}_{time}.json does", why)
	}
	return elems, nil
}

// hostHidden returns "" when an element of elems (a template with {host})
// shows where {host} ends, as CheckPattern explains, and else why none does.
func hostHidden(elems [][]part) string {
	for _, elem := range elems[:len(elems)-1] {
		for _, p := range elem {
			if p.field == "host" { // folders hold no other field
				return ""
			}
		}
	}
	hosts := 0
	for _, p := range elems[len(elems)-1] {
		switch p.field {
		case "host":
			hosts++
		case "user", "commit":
			return fmt.Sprintf("beside {%s} in its file name and in no folder, so other switches' names (leaf1-b's, dc1-leaf1's) can look like leaf1's: values may hold '-', '.' and '_'", p.field)
		}
	}
	if hosts > 1 {
		return "twice in its file name and in no folder, where cfgsnap cannot prove that no other switch's names look like this one's"
	}
	return ""
}

// NewPattern returns the Pattern of template for host, a Record's Host as
// received: it is sanitised as Name does. It refuses the templates that
// CheckPattern refuses, with the same errors.
func NewPattern(template, host string) (*Pattern, error) {
	elems, err := parsePattern(template)
	if err != nil {
		return nil, err
	}
	hostValue := sanitize(host, maxFieldLen)
	var b strings.Builder
	var groups []string
	b.WriteString("^")
	for i, elem := range elems {
		if i > 0 {
			b.WriteByte('/')
		}
		for _, p := range elem {
			switch p.field {
			case "":
				b.WriteString(regexp.QuoteMeta(p.text))
			case "host":
				b.WriteString(regexp.QuoteMeta(hostValue))
			case "time":
				b.WriteString(timeExpr)
				groups = append(groups, p.field)
			default:
				// What sanitize can return for this field: the safe
				// alphabet, no leading '.' or '-', at most max bytes.
				f, _ := lookupField(p.field) // parseTemplate checked the name
				fmt.Fprintf(&b, `([A-Za-z0-9_+@][A-Za-z0-9._+@-]{0,%d})`, f.max-1)
				groups = append(groups, p.field)
			}
		}
	}
	b.WriteString("$")
	return &Pattern{re: regexp.MustCompile(b.String()), groups: groups}, nil
}

// Match reports whether name (slash-separated, relative to a destination's
// root) is one that Name gives the Pattern's template for a Record of its host,
// and returns the time the name shows, in UTC. A name whose {time} is "unknown"
// (a record without any time) is not matched: it has no age, so retention
// leaves it alone.
func (p *Pattern) Match(name string) (time.Time, bool) {
	m := p.re.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	// A field that appears twice has one value in every name Name writes.
	seen := make(map[string]string, len(p.groups))
	for i, f := range p.groups {
		v := m[i+1]
		if prev, ok := seen[f]; ok && prev != v {
			return time.Time{}, false
		}
		seen[f] = v
	}
	ts := seen["time"]
	t, err := time.Parse(timestampLayout, ts)
	// Name writes "unknown", never the zero time's stamp, for a record
	// without a time, so a name showing the zero time is not one of its.
	if err != nil || Timestamp(t) != ts || t.IsZero() {
		return time.Time{}, false
	}
	// {date} and {time} come from the same time in Name.
	if d, ok := seen["date"]; ok && d != t.Format("2006-01-02") {
		return time.Time{}, false
	}
	return t, true
}
