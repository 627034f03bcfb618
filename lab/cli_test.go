package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// This file reads SR Linux flat CLI (`set / ...` lines, as `info flat` prints
// them and as containerlab applies a partial startup configuration) far enough
// to find event-handler instances and their options.

// cliLine is one `set` command: its tokens, without "set" and "/".
type cliLine struct {
	no     int
	tokens []string
}

// readCLI returns the set commands of a flat CLI file. Blank lines and lines
// starting with # are skipped; any other line must be `set / ...`.
func readCLI(data []byte) ([]cliLine, error) {
	var lines []cliLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for no := 1; sc.Scan(); no++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		toks, err := tokenize(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", no, err)
		}
		if len(toks) < 2 || toks[0] != "set" || toks[1] != "/" {
			return nil, fmt.Errorf("line %d: want `set / ...`, got %q", no, text)
		}
		lines = append(lines, cliLine{no: no, tokens: toks[2:]})
	}
	return lines, sc.Err()
}

// tokenize splits one CLI line into words: runs of non-blank characters, or
// double-quoted strings (quotes removed, \" and \\ unescaped). [ and ] are
// words of their own when they stand alone, as in `values [ "a" "b" ]`.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated quoted string in %q", s)
				}
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '"' {
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if i < len(s) && s[i] != ' ' && s[i] != '\t' {
				return nil, fmt.Errorf("text right after a closing quote in %q", s)
			}
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' {
				if s[j] == '"' {
					return nil, fmt.Errorf("quote inside a word in %q", s)
				}
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// ehOption is one `options object NAME ...` of an instance.
type ehOption struct {
	Name string
	Vals []string // nil: declared without a value
	List bool     // given as values [ ... ]
	Line int
}

// ehInstance is what the flat lines say about one event-handler instance.
type ehInstance struct {
	Name       string
	AdminState string
	Script     string
	Paths      []string
	Options    []ehOption // in file order; a name given twice appears twice
}

// instances collects every `system event-handler instance NAME ...` line.
func instances(lines []cliLine) (map[string]*ehInstance, error) {
	out := map[string]*ehInstance{}
	for _, l := range lines {
		t := l.tokens
		if len(t) < 4 || t[0] != "system" || t[1] != "event-handler" || t[2] != "instance" {
			continue
		}
		in := out[t[3]]
		if in == nil {
			in = &ehInstance{Name: t[3]}
			out[t[3]] = in
		}
		rest := t[4:]
		if len(rest) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("line %d: instance %s: %s: %q", l.no, in.Name, why, strings.Join(t, " "))
		}
		switch rest[0] {
		case "admin-state", "upython-script":
			if len(rest) != 2 {
				return nil, bad("want one value")
			}
			if rest[0] == "admin-state" {
				in.AdminState = rest[1]
			} else {
				in.Script = rest[1]
			}
		case "paths":
			vals, err := listOrOne(rest[1:])
			if err != nil {
				return nil, bad(err.Error())
			}
			in.Paths = append(in.Paths, vals...)
		case "options":
			if len(rest) == 1 {
				continue
			}
			if rest[1] != "object" || len(rest) < 3 {
				return nil, bad("want options object NAME")
			}
			o := ehOption{Name: rest[2], Line: l.no}
			switch v := rest[3:]; {
			case len(v) == 0:
			case v[0] == "value" && len(v) == 2:
				o.Vals = []string{v[1]}
			case v[0] == "values":
				vals, err := listOrOne(v[1:])
				if err != nil {
					return nil, bad(err.Error())
				}
				o.Vals, o.List = vals, true
			default:
				return nil, bad("want value V or values [ ... ]")
			}
			in.Options = append(in.Options, o)
		}
	}
	return out, nil
}

// listOrOne reads `[ a b ... ]` or a single word, the two forms of a leaf-list.
func listOrOne(t []string) ([]string, error) {
	if len(t) == 1 && t[0] != "[" {
		return []string{t[0]}, nil
	}
	if len(t) < 2 || t[0] != "[" || t[len(t)-1] != "]" {
		return nil, fmt.Errorf("want [ ... ]")
	}
	vals := t[1 : len(t)-1]
	if slices.Contains(vals, "[") || slices.Contains(vals, "]") {
		return nil, fmt.Errorf("nested brackets")
	}
	return vals, nil
}

// eventOptions is the "options" object the event handler passes to the script
// for in: a single value as a string, values [ ... ] as a list of strings, an
// option declared without a value left out. A later line for the same option
// replaces an earlier one, as a later `set` does.
func (in *ehInstance) eventOptions() map[string]any {
	m := map[string]any{}
	for _, o := range in.Options {
		switch {
		case o.Vals == nil:
		case o.List:
			m[o.Name] = o.Vals
		default:
			m[o.Name] = o.Vals[0]
		}
	}
	return m
}

// optionValues is eventOptions as name -> values.
func (in *ehInstance) optionValues() map[string][]string {
	m := map[string][]string{}
	for _, o := range in.Options {
		if o.Vals != nil {
			m[o.Name] = o.Vals
		}
	}
	return m
}

// event is the event-handler input for in, as the switch sends it for a commit
// at lastChange (RFC 3339).
func (in *ehInstance) event(lastChange string, options map[string]any) []byte {
	ev := map[string]any{
		"paths":   []any{map[string]any{"path": "system configuration last-change", "value": lastChange}},
		"schemas": []any{map[string]any{"path": "system configuration last-change"}},
		"options": options,
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// rawOptionNames finds "options object NAME" on every line but comments by a
// plain pattern, independently of the parser above, so that an option on a
// line the parser skips cannot escape the checks.
func rawOptionNames(data []byte) []string {
	re := regexp.MustCompile(`options\s+object\s+("[^"]*"|\S+)`)
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			names = append(names, strings.Trim(m[1], `"`))
		}
	}
	return names
}
