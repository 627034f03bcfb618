package snapshot

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// Limits on names. Field values are capped so that the longest possible name
// can be computed from the template alone: a template is then accepted or
// refused once, not depending on what a user name happens to be one day.
const (
	// maxFieldLen caps host and user values (SR Linux host names are DNS
	// labels of at most 63 characters).
	maxFieldLen = 64
	// maxElemLen is NAME_MAX on Linux and most SFTP servers' file systems.
	maxElemLen = 255
	// maxNameLen leaves room for the target's own path within PATH_MAX (4096).
	maxNameLen = 1024
	// unknown stands for an empty value, so that no element is ever empty.
	unknown = "unknown"
)

// field is one {name} of a template: how to get its value from a Record and
// how long that value can be after sanitising.
type field struct {
	max   int
	value func(r Record) string
}

// lookupField returns the template field called name; their help text is in
// package option (name). A switch rather than a map keeps the table immutable.
func lookupField(name string) (field, bool) {
	switch name {
	case "host":
		return field{maxFieldLen, func(r Record) string { return r.Host }}, true
	case "user":
		return field{maxFieldLen, func(r Record) string { return r.User }}, true
	case "time":
		return field{len(timestampLayout), func(r Record) string {
			if t := recordTime(r); !t.IsZero() {
				return Timestamp(t)
			}
			return ""
		}}, true
	case "date":
		return field{len("2006-01-02"), func(r Record) string {
			if t := recordTime(r); !t.IsZero() {
				return t.UTC().Format("2006-01-02")
			}
			return ""
		}}, true
	case "commit":
		return field{len("-9223372036854775808"), func(r Record) string {
			if len(r.Commits) == 0 {
				return "none"
			}
			// The newest commit has the highest id, wherever it is in the list.
			newest := r.Commits[0].ID
			for _, c := range r.Commits[1:] {
				newest = max(newest, c.ID)
			}
			return strconv.FormatInt(newest, 10)
		}}, true
	}
	return field{}, false
}

const fieldList = "{host} {time} {date} {user} {commit}"

// recordTime is the time a name shows: the change, or for a manual snapshot
// that no change triggered, the capture.
func recordTime(r Record) (t time.Time) {
	if !r.LastChange.IsZero() {
		return r.LastChange
	}
	return r.Taken
}

// part is a piece of a template element: literal text, or the field named by field.
type part struct {
	text  string
	field string
}

// Name expands template with the values of r and returns a slash-separated
// name relative to a destination's root. Fields are {host}, {time} (Timestamp
// of LastChange, else of Taken), {date} (YYYY-MM-DD, UTC), {user} and {commit}
// (the newest commit id, or "none"); a '/' in the template makes folders.
//
// Field values are sanitised: any character outside [A-Za-z0-9._+@-] becomes
// '_', a leading '.' or '-' becomes '_', values are capped at 64 characters and
// an empty value becomes "unknown". A template that is absolute, holds "." or
// ".." or empty elements, starts an element with '.' or '-', uses unknown
// fields or characters outside that alphabet, or could expand beyond file-name
// limits is refused with a fail.Usage error, whatever r holds.
//
// The result satisfies filepath.IsLocal and holds only the safe alphabet and '/'.
func Name(template string, r Record) (string, error) {
	elems, err := parseTemplate(template)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, elem := range elems {
		if i > 0 {
			b.WriteByte('/')
		}
		for _, p := range elem {
			if p.field == "" {
				b.WriteString(p.text)
				continue
			}
			f, _ := lookupField(p.field) // parseTemplate checked the name
			b.WriteString(sanitize(f.value(r), f.max))
		}
	}
	return b.String(), nil
}

// parseTemplate splits template into elements of parts and checks everything
// that does not depend on a Record.
func parseTemplate(template string) ([][]part, error) {
	bad := func(format string, args ...any) error {
		return fail.New(fail.Usage, "option name: template %q %s", template,
			fmt.Sprintf(format, args...))
	}
	switch {
	case template == "":
		return nil, fail.New(fail.Usage, "option name: template is empty; set it, e.g. to {host}/{host}_{time}_{user}.json")
	case len(template) > maxNameLen:
		return nil, bad("is longer than %d bytes; shorten it", maxNameLen)
	case template[0] == '/':
		return nil, bad("is absolute; make it relative to the target path (remove the leading '/')")
	}
	var elems [][]part
	total := 0
	for i, elem := range strings.Split(template, "/") {
		if elem == "" {
			return nil, bad("has an empty folder name (\"//\" or a trailing '/'); remove it")
		}
		if elem == "." || elem == ".." {
			return nil, bad("has a %q element; names stay inside the target folder, remove it", elem)
		}
		if elem[0] == '.' || elem[0] == '-' {
			return nil, bad("has element %q starting with %q (a hidden file or an option to some tools); start it with another character", elem, elem[0])
		}
		parts, n, err := parseElem(elem, bad)
		if err != nil {
			return nil, err
		}
		if n > maxElemLen {
			return nil, bad("has element %q that can grow to %d bytes, over the %d-byte file name limit; shorten it", elem, n, maxElemLen)
		}
		if i > 0 {
			total++
		}
		total += n
		elems = append(elems, parts)
	}
	if total > maxNameLen {
		return nil, bad("can grow to %d bytes, over the %d-byte limit; shorten it", total, maxNameLen)
	}
	return elems, nil
}

// parseElem parses one element and returns its parts and the longest
// expansion it can have.
func parseElem(elem string, bad func(string, ...any) error) ([]part, int, error) {
	var parts []part
	n := 0
	for elem != "" {
		switch i := strings.IndexAny(elem, "{}"); {
		case i < 0:
			parts = append(parts, part{text: elem})
			n += len(elem)
			elem = ""
		case i > 0:
			parts = append(parts, part{text: elem[:i]})
			n += i
			elem = elem[i:]
		case elem[0] == '}':
			return nil, 0, bad("has a '}' without '{'; fields are %s", fieldList)
		default:
			end := strings.IndexByte(elem, '}')
			if end < 0 {
				return nil, 0, bad("has a '{' without '}'; fields are %s", fieldList)
			}
			name := elem[1:end]
			f, ok := lookupField(name)
			if !ok {
				return nil, 0, bad("has unknown field %q; fields are %s", "{"+name+"}", fieldList)
			}
			parts = append(parts, part{field: name})
			n += f.max
			elem = elem[end+1:]
		}
	}
	for _, p := range parts {
		for _, r := range p.text {
			if r >= 0x80 || !safeByte(byte(r)) {
				return nil, 0, bad("has character %q, which is not allowed in names; use letters, digits, '.', '_', '+', '@', '-' and '/' for folders", r)
			}
		}
	}
	return parts, n, nil
}

// safeByte reports whether c may appear in a name element as it is.
func safeByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == '+' || c == '@' || c == '-'
}

// sanitize reduces a field value to the safe alphabet, one '_' per rune
// replaced (so a look-alike such as U+2215 DIVISION SLASH or a fullwidth dot
// is one '_', never a separator), keeps it from starting with '.' or '-', caps
// it at limit bytes and replaces an empty result with "unknown".
func sanitize(s string, limit int) string {
	b := make([]byte, 0, min(len(s), limit))
	for _, r := range s { // invalid UTF-8 yields U+FFFD per bad byte: replaced below
		if len(b) == limit {
			break
		}
		if r < 0x80 && safeByte(byte(r)) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return unknown
	}
	if b[0] == '.' || b[0] == '-' {
		b[0] = '_'
	}
	return string(b)
}
