package source

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cfgsnap/cfgsnap/handler/jsonscan"
)

// errWriter remembers the first error of the writer it wraps, so that a failing
// destination (disk full) is told apart from a source that sent bad JSON: both
// end the same copy.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// copyJSON copies r to w byte for byte while checking that r holds exactly one JSON
// object, so that a truncated checkpoint, or an error text that sr_cli printed in
// place of the configuration without failing, never passes for a snapshot.
// It holds one read buffer, never the whole document.
//
// writeErr is w's error; badJSON says what is wrong with the input (or the read
// error that ended it).
func copyJSON(w io.Writer, r io.Reader) (writeErr, badJSON error) {
	ew := &errWriter{w: w}
	started := false
	scan := &jsonscan.Scanner{Begin: func(_ int, _ []byte, first byte) (jsonscan.Action, error) {
		// Only the top-level value is followed, so this runs once: an error text
		// or an array fails at its first byte, not after the copy.
		started = true
		if first != '{' {
			return jsonscan.Skip, fmt.Errorf("it starts with %s, not with a JSON object", valueKind(first))
		}
		return jsonscan.Skip, nil
	}}
	// Reading on to EOF copies the trailing newline and rejects a second document.
	_, err := io.Copy(io.MultiWriter(ew, scan), r)
	var syntax *jsonscan.SyntaxError
	switch {
	case ew.err != nil:
		return ew.err, nil
	case err != nil && scan.Done() && errors.As(err, &syntax):
		return nil, fmt.Errorf("more follows the JSON object: %v", err)
	case err != nil:
		return nil, err
	}
	if err := scan.End(); err != nil {
		if !started { // nothing but white space, or a syntax error would have stopped the copy
			return nil, errors.New("it is empty")
		}
		return nil, err
	}
	return nil, nil
}

// valueKind names a JSON value by its first byte.
func valueKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func tokenText(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(t))
	case string:
		if len(t) > 60 {
			t = t[:60] + "..."
		}
		return fmt.Sprintf("the string %q", t)
	default:
		return fmt.Sprintf("%v", t)
	}
}

// writeIndented reads the next JSON value from dec and writes it to w indented by
// two spaces per level and followed by a newline, as json.Indent would, token by
// token: a large configuration is never held whole. Numbers keep their text (dec
// must use UseNumber); strings are re-escaped, which changes no value.
func writeIndented(w io.Writer, dec *json.Decoder) (writeErr, badJSON error) {
	ew := &errWriter{w: w}
	in := &indenter{dec: dec, w: bufio.NewWriter(ew), ew: ew}
	tok, err := in.token()
	if err == nil && tok != json.Delim('{') {
		err = fmt.Errorf("the configuration is %s, not a JSON object", tokenText(tok))
	}
	if err == nil {
		err = in.open(tok.(json.Delim), 0)
	}
	if err == nil {
		in.w.WriteByte('\n')
		in.w.Flush()
	}
	if ew.err != nil {
		return ew.err, nil
	}
	return nil, err
}

type indenter struct {
	dec *json.Decoder
	w   *bufio.Writer
	ew  *errWriter
}

// errStop ends indenting once the destination has failed; writeIndented reports
// the destination's error instead.
var errStop = errors.New("destination failed")

func (in *indenter) token() (json.Token, error) {
	if in.ew.err != nil {
		return nil, errStop
	}
	tok, err := in.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

func (in *indenter) value(depth int) error {
	tok, err := in.token()
	if err != nil {
		return err
	}
	w := in.w
	switch t := tok.(type) {
	case json.Delim:
		return in.open(t, depth)
	case string:
		writeString(w, t)
	case json.Number:
		w.WriteString(t.String())
	case bool:
		w.WriteString(strconv.FormatBool(t))
	case nil:
		w.WriteString("null")
	}
	return nil
}

// open writes the object or array that delim opened, up to its closing delimiter.
func (in *indenter) open(delim json.Delim, depth int) error {
	w := in.w
	start, end := byte(delim), byte('}')
	if start == '[' {
		end = ']'
	}
	w.WriteByte(start)
	n := 0
	for ; in.dec.More(); n++ {
		if n > 0 {
			w.WriteByte(',')
		}
		in.newline(depth + 1)
		if start == '{' {
			key, err := in.token()
			if err != nil {
				return err
			}
			writeString(w, key.(string)) // the decoder allows only strings here
			w.WriteString(": ")
		}
		if err := in.value(depth + 1); err != nil {
			return err
		}
	}
	if _, err := in.token(); err != nil { // the closing delimiter
		return err
	}
	if n > 0 {
		in.newline(depth)
	}
	w.WriteByte(end)
	return nil
}

func (in *indenter) newline(depth int) {
	in.w.WriteByte('\n')
	for range depth {
		in.w.WriteString("  ")
	}
}

// writeString writes s as a JSON string the way encoding/json does with HTML
// escaping off.
func writeString(w *bufio.Writer, s string) {
	const hex = "0123456789abcdef"
	w.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			w.WriteByte('\\')
			w.WriteRune(r)
		case r == '\n':
			w.WriteString(`\n`)
		case r == '\r':
			w.WriteString(`\r`)
		case r == '\t':
			w.WriteString(`\t`)
		case r < 0x20, r == '\u2028', r == '\u2029':
			w.WriteString(`\u`)
			w.WriteByte(hex[r>>12&0xf])
			w.WriteByte(hex[r>>8&0xf])
			w.WriteByte(hex[r>>4&0xf])
			w.WriteByte(hex[r&0xf])
		default:
			w.WriteRune(r)
		}
	}
	w.WriteByte('"')
}
