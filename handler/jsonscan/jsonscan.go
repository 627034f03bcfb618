// Package jsonscan checks JSON syntax byte by byte as a stream goes past, in
// constant memory: a Scanner is an io.Writer that accepts exactly what
// encoding/json accepts as one document (RFC 8259, one value with white space
// around it) and says at which byte, and why, anything else fails.
//
// It exists because a configuration can exceed 100 MiB: encoding/json's
// Decoder checks it at about 20 MB/s, while a Scanner, which builds no values,
// checks it at several hundred. A caller that needs a few values, not the
// whole document, can follow the structure through the Begin and Text hooks
// and leave everything else unread. The package keeps no state outside a
// Scanner.
//
// # Why not jsontext
//
// Issue 8 asked to replace this package, snapshot's host-name finder and the
// JSON-RPC re-indenter with github.com/go-json-experiment/json/jsontext (Go's
// encoding/json/jsontext behind GOEXPERIMENT=jsonv2) if capture stayed at least
// as fast in constant memory. It does not, so this package stays and cfgsnap
// has no such dependency. Measured with v1.27.2, the newest then, on bigconfig
// configurations held in memory and copied to io.Discard in io.Copy's 32 KiB
// pieces; jsontext with AllowDuplicateNames and AllowInvalidUTF8, so that it
// accepts what encoding/json accepts. Medians of 7 interleaved rounds of 3
// runs on a shared 2-core machine, as CPU time per run (wall time agrees, with
// more noise); 100 MiB (50 MiB gives similar ratios):
//
//	job                                     jsonscan          jsontext
//	check while copying (source.copyJSON)   155 ms 676 MB/s   210 ms 499 MB/s
//	find the host name (snapshot.HostName)  171 ms 613 MB/s   205 ms 512 MB/s
//	capture: both, as the worker runs them  252 ms 416 MB/s   581 ms 180 MB/s
//	both in one pass (not today's shape)    142 ms 738 MB/s   179 ms 587 MB/s
//	allocations per run                     8 to 16, <=67 KB  23 to 55, <=19 KB
//	peak heap at 1, 50 and 100 MiB          0.26-0.29 MiB     0.23-0.38 MiB
//
// (Peak heap is with the input streamed from bigconfig.New, whose own buffers
// are 0.2 MiB of it.) A jsontext Decoder takes 20 to 35% more per pass, and it
// only pulls from an io.Reader: the host-name finder, which is written to
// beside the spool file, then needs a goroutine behind an io.Pipe (batching the
// pipe in 1 MiB does not help), and capture takes 2.3 times the CPU, some 0.2
// to 0.3 s more of the 1.09 s end to end in lab/BENCHMARKS.md. Restructured
// into one pass it would beat today's two, but takes 26% more than one Scanner
// pass. Memory is constant either way. Where jsontext wins is the JSON-RPC
// re-indenter, which uses encoding/json's Decoder: 502 ms instead of 2450 ms
// for 100 MiB, 18 KB allocated instead of 449 MB in 24 million allocations;
// worth taking once Go ships encoding/json/jsontext without the experiment, at
// no dependency.
package jsonscan

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds how many objects and arrays may be open at once, the same
// bound as encoding/json's, so that a stream of '[' cannot grow memory.
const MaxDepth = 10000

// MaxCapture bounds, in bytes as they stand in the input, a key or string that
// is passed to a hook. One that is longer is checked like any other but not
// passed: the member it keys is skipped as if Begin had returned Skip, and a
// followed string value gets no Text call. That keeps memory constant on
// input whose strings are unbounded.
const MaxCapture = 1 << 20

// Action is what Begin wants of the value that begins.
type Action uint8

const (
	// Skip checks the value without telling anything of what is inside it.
	Skip Action = iota
	// Follow calls Begin for each member of an object or element of an array,
	// and Text with a string's content. It means nothing for other values.
	Follow
)

// Scanner checks the JSON written to it. Its zero value is ready to use; it
// checks one document and is not safe for use by more than one goroutine.
type Scanner struct {
	// Begin, if set, is called as a value begins: the top-level value, and
	// each member or element of an object or array that Begin followed. depth
	// counts the objects and arrays around the value; key is an object
	// member's key, decoded as encoding/json would and valid only during the
	// call, or nil for an array element and the top-level value; first is
	// the value's first byte ('{', '[', '"', 't', 'f', 'n', '-' or a digit).
	// An error stops the scan: Write returns it as it is.
	Begin func(depth int, key []byte, first byte) (Action, error)

	// Text, if set, receives the content of each string value that Begin
	// followed, decoded as encoding/json would and valid only during the call.
	// An error stops the scan: Write returns it as it is.
	Text func(text []byte) error

	state    state
	offset   int64 // bytes before the p of the running Write
	at       int64 // what Pos returns
	depth    int
	objects  [MaxDepth/64 + 1]uint64 // bit d: the container at depth d is an object, not an array
	inObject bool                    // the innermost open container is an object
	followed int                     // how many of the open containers, outermost first, Begin followed
	word     string                  // the literal being read: "true", "false" or "null"
	matched  int                     // how many bytes of word were read, or of a \u escape's hex digits
	done     bool
	err      error

	capturing bool // the string being read goes to a hook
	isKey     bool // the string being read is an object key
	keyReady  bool // the last key read was captured whole, for Begin
	escaped   bool // the captured string holds a backslash escape
	tooLong   bool // the captured string exceeded MaxCapture
	raw       []byte
	decoded   []byte
}

// state says what the next byte may be. The states before inString lie
// between tokens, where white space may come.
type state uint8

const (
	wantValue         state = iota // at the top, after ':', or after ',' in an array
	wantValueOrClose               // after '['
	wantKeyOrClose                 // after '{'
	wantKey                        // after ',' in an object
	wantColon                      // after a key
	wantCommaOrClose               // after a member or an element
	afterTop                       // after the top-level value
	inString                       // also in a key
	inEscape                       // after a backslash
	inHex                          // in the four hex digits of \u
	inLiteral                      // in true, false or null
	afterMinus                     // a number's '-'
	afterZero                      // a number's leading 0, which no digit may follow
	inInteger                      // a number's digits before any '.' or exponent
	afterPoint                     // a number's '.'
	inFraction                     // the digits after a number's '.'
	afterExponent                  // a number's 'e' or 'E'
	afterExponentSign              // a number's exponent sign
	inExponent                     // a number's exponent digits
)

// Byte classes, read only.
var (
	space       = byteSet(" \t\r\n") // JSON's four white space bytes
	hexDigit    = byteSet("0123456789abcdefABCDEF")
	stringBytes = func() (set [256]bool) { // bytes that stand for themselves inside a string
		for c := 0x20; c < 256; c++ {
			set[c] = c != '"' && c != '\\'
		}
		return set
	}()
)

func byteSet(members string) (set [256]bool) {
	for i := range len(members) {
		set[members[i]] = true
	}
	return set
}

// SyntaxError says where the input stops being JSON, and why.
type SyntaxError struct {
	// Offset counts the bytes before the first one that cannot belong to a
	// JSON document, or all of them if the input ended too early.
	Offset  int64
	Problem string
	ended   bool
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Problem) }

// Unwrap makes an input that ended too early match io.ErrUnexpectedEOF.
func (e *SyntaxError) Unwrap() error {
	if e.ended {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// Offset is how many bytes the Scanner has accepted.
func (s *Scanner) Offset() int64 { return s.offset }

// Pos is, during a Begin call, the offset in the input of the value's first
// byte and, during a Text call, that of the string's closing quote: where a
// caller that rewrites the stream as it goes past (package redact) cuts it.
func (s *Scanner) Pos() int64 { return s.at }

// Done reports whether the top-level value is complete, so that only white
// space may follow. A number at the top is complete only once a byte after it,
// or End, says so.
func (s *Scanner) Done() bool { return s.done }

// Write checks p as the continuation of what was written before. It returns
// len(p) and nil while the input can still become a JSON document; otherwise a
// *SyntaxError, or a hook's error, and from then on only that error.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	i := 0
	for i < len(p) {
		if s.state < inString {
			for i < len(p) {
				// Indentation comes in runs of spaces: skip up to eight at once.
				if i+8 <= len(p) {
					if n := bits.TrailingZeros64(binary.LittleEndian.Uint64(p[i:])^eightSpaces) / 8; n > 0 {
						i += n
						continue
					}
				}
				if !space[p[i]] {
					break
				}
				i++
			}
			if i == len(p) {
				break
			}
		}
		c := p[i]
		switch s.state {
		case inString:
			j := i
			for j+8 <= len(p) {
				if stops := stringStops(binary.LittleEndian.Uint64(p[j:])); stops != 0 {
					j += bits.TrailingZeros64(stops) / 8
					break
				}
				j += 8
			}
			for j < len(p) && stringBytes[p[j]] {
				j++
			}
			s.capture(p[i:j])
			if j == len(p) {
				i = j
				continue
			}
			switch c = p[j]; c {
			case '"':
				i = j + 1
				s.at = s.offset + int64(j)
				if err := s.endString(); err != nil {
					return s.stop(i, err)
				}
				continue
			case '\\':
				s.escaped = true
				s.capture(p[j : j+1])
				s.state = inEscape
				i = j + 1
				continue
			}
			return s.fail(j, "control character "+describe(c)+" inside a string: it must be escaped")
		case inEscape:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = inString
			case 'u':
				s.state, s.matched = inHex, 0
			default:
				return s.fail(i, "invalid escape: "+describe(c)+" after a backslash in a string")
			}
			s.capture(p[i : i+1])
		case inHex:
			if !hexDigit[c] {
				return s.fail(i, "expected a hex digit in a \\u escape, found "+describe(c))
			}
			s.capture(p[i : i+1])
			if s.matched++; s.matched == 4 {
				s.state = inString
			}
		case wantValue:
			if err := s.beginValue(c, i); err != nil {
				return s.stop(i, err)
			}
		case wantValueOrClose:
			if c == ']' {
				s.close()
				break
			}
			if err := s.beginValue(c, i); err != nil {
				return s.stop(i, err)
			}
		case wantKeyOrClose, wantKey:
			switch {
			case c == '"':
				s.beginString(true, s.Begin != nil && s.followed == s.depth)
			case c == '}' && s.state == wantKeyOrClose:
				s.close()
			case s.state == wantKeyOrClose:
				return s.fail(i, "expected a string key or '}' after '{', found "+describe(c))
			default:
				return s.fail(i, "expected a string key after ',', found "+describe(c))
			}
		case wantColon:
			if c != ':' {
				return s.fail(i, "expected ':' after an object key, found "+describe(c))
			}
			s.state = wantValue
		case wantCommaOrClose:
			inObject := s.inObject
			switch {
			case c == ',' && inObject:
				s.state = wantKey
			case c == ',':
				s.state = wantValue
			case c == '}' && inObject, c == ']' && !inObject:
				s.close()
			case inObject:
				return s.fail(i, "expected ',' or '}' after an object member, found "+describe(c))
			default:
				return s.fail(i, "expected ',' or ']' after an array element, found "+describe(c))
			}
		case afterTop:
			return s.fail(i, "found "+describe(c)+" after the top-level value")
		case inLiteral:
			if c != s.word[s.matched] {
				return s.fail(i, fmt.Sprintf("expected %q, found %s in it", s.word, describe(c)))
			}
			if s.matched++; s.matched == len(s.word) {
				s.endValue()
			}
		case afterMinus, afterPoint, afterExponent, afterExponentSign:
			next, ok := numberStep(s.state, c)
			if !ok {
				return s.fail(i, "expected "+numberNeeds[s.state]+", found "+describe(c))
			}
			s.state = next
		case afterZero:
			switch c {
			case '.':
				s.state = afterPoint
			case 'e', 'E':
				s.state = afterExponent
			default:
				// Whatever ends the number belongs to what comes next.
				s.endValue()
				continue
			}
		case inInteger, inFraction, inExponent:
			for i < len(p) && isDigit(p[i]) {
				i++
			}
			if i == len(p) {
				continue
			}
			switch c = p[i]; {
			case c == '.' && s.state == inInteger:
				s.state = afterPoint
			case (c == 'e' || c == 'E') && s.state != inExponent:
				s.state = afterExponent
			default:
				s.endValue()
				continue
			}
		}
		i++
	}
	s.offset += int64(len(p))
	return len(p), nil
}

// End says that the input is over, and reports whether it was one JSON
// document.
func (s *Scanner) End() error {
	if s.err != nil {
		return s.err
	}
	switch {
	case s.state == afterTop:
		return nil
	case complete(s.state) && s.depth == 0:
		s.endValue()
		return nil
	}
	problem := "the input ends inside " + s.where()
	if s.state == wantValue && s.depth == 0 {
		problem = "the input holds no JSON value: it is empty or only white space"
	}
	s.err = &SyntaxError{Offset: s.offset, Problem: problem, ended: true}
	return s.err
}

// where names what End cut short.
func (s *Scanner) where() string {
	switch {
	case s.state >= inString && s.state <= inHex:
		return "a string"
	case s.state == inLiteral:
		return strconv.Quote(s.word)
	case s.state >= afterMinus && !complete(s.state):
		return "a number"
	case s.inObject:
		return "an object"
	}
	return "an array"
}

// beginValue starts the value whose first byte, c, is the i-th of the running
// Write.
func (s *Scanner) beginValue(c byte, i int) error {
	follow := false
	if s.Begin != nil && s.followed == s.depth && (!s.inObject || s.keyReady) && startsValue(c) {
		var key []byte
		if s.inObject {
			key = s.text()
		}
		s.at = s.offset + int64(i)
		action, err := s.Begin(s.depth, key, c)
		if err != nil {
			return err
		}
		follow = action == Follow
	}
	switch {
	case c == '{' || c == '[':
		if s.depth == MaxDepth {
			return s.syntaxError(i, fmt.Sprintf("more than %d objects and arrays are open at once", MaxDepth))
		}
		bit := uint64(1) << (s.depth % 64)
		if c == '{' {
			s.objects[s.depth/64] |= bit
			s.state = wantKeyOrClose
		} else {
			s.objects[s.depth/64] &^= bit
			s.state = wantValueOrClose
		}
		s.depth++
		s.inObject = c == '{'
		if follow {
			s.followed = s.depth
		}
	case c == '"':
		s.beginString(false, follow && s.Text != nil)
	case c == '-':
		s.state = afterMinus
	case c == '0':
		s.state = afterZero
	case isDigit(c):
		s.state = inInteger
	case c == 't' || c == 'f' || c == 'n':
		s.state, s.matched = inLiteral, 1
		s.word = literal(c)
	default:
		return s.syntaxError(i, "expected a value, found "+describe(c))
	}
	return nil
}

func literal(first byte) string {
	switch first {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return "null"
}

func startsValue(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return isDigit(c)
}

func (s *Scanner) close() {
	s.depth--
	s.inObject = s.depth > 0 && s.isObject(s.depth-1)
	s.followed = min(s.followed, s.depth)
	s.endValue()
}

func (s *Scanner) endValue() {
	if s.depth == 0 {
		s.state, s.done = afterTop, true
	} else {
		s.state = wantCommaOrClose
	}
}

func (s *Scanner) isObject(depth int) bool {
	return s.objects[depth/64]&(1<<(depth%64)) != 0
}

func (s *Scanner) beginString(isKey, capture bool) {
	s.state, s.isKey, s.capturing = inString, isKey, capture
	s.escaped, s.tooLong, s.raw = false, false, s.raw[:0]
}

// capture keeps b, part of a string that a hook will get, unless the string
// has grown too long to keep.
func (s *Scanner) capture(b []byte) {
	if !s.capturing || s.tooLong {
		return
	}
	if len(s.raw)+len(b) > MaxCapture {
		s.tooLong, s.raw = true, nil
		return
	}
	s.raw = append(s.raw, b...)
}

func (s *Scanner) endString() error {
	captured := s.capturing && !s.tooLong
	s.capturing = false
	if s.isKey {
		s.keyReady = captured
		s.state = wantColon
		return nil
	}
	s.endValue()
	if !captured {
		return nil
	}
	return s.Text(s.text())
}

// text decodes the captured string. Without escapes or invalid UTF-8 it is
// the raw bytes; otherwise encoding/json decodes it, so that lone surrogates
// and invalid bytes become U+FFFD exactly as they would there.
func (s *Scanner) text() []byte {
	if !s.escaped && utf8.Valid(s.raw) {
		if s.raw == nil {
			return []byte{} // an empty key is a key still, not an element's nil
		}
		return s.raw
	}
	quoted := make([]byte, 0, len(s.raw)+2)
	quoted = append(append(append(quoted, '"'), s.raw...), '"')
	var text string
	if err := json.Unmarshal(quoted, &text); err != nil {
		panic("jsonscan: encoding/json rejects a string the scanner accepted: " + err.Error())
	}
	s.decoded = append(s.decoded[:0], text...)
	return s.decoded
}

func (s *Scanner) syntaxError(i int, problem string) error {
	return &SyntaxError{Offset: s.offset + int64(i), Problem: problem}
}

// fail ends the scan at the i-th byte of the running Write, the first that
// cannot belong to JSON.
func (s *Scanner) fail(i int, problem string) (int, error) {
	return s.stop(i, s.syntaxError(i, problem))
}

// stop ends the scan with err, having accepted i bytes of the running Write.
func (s *Scanner) stop(i int, err error) (int, error) {
	s.err = err
	s.offset += int64(i)
	return i, err
}

const (
	eightSpaces = 0x2020202020202020
	ones        = 0x0101010101010101
	highBits    = 0x8080808080808080
)

// stringStops marks, in the eight bytes of x, those that end a string or need
// a closer look: '"', backslash and control characters. Of the high bits it
// sets, the lowest is exact (a borrow only carries upward), which is all the
// caller reads.
func stringStops(x uint64) uint64 {
	return zeroBytes(x^('"'*ones)) | zeroBytes(x^('\\'*ones)) | (x-0x20*ones)&^x&highBits
}

// zeroBytes sets the high bit of the lowest byte of v that is zero, and maybe
// of others above it.
func zeroBytes(v uint64) uint64 { return (v - ones) &^ v & highBits }

// numberStep moves a number on from a state that cannot end it.
func numberStep(st state, c byte) (state, bool) {
	switch {
	case st == afterMinus && c == '0':
		return afterZero, true
	case st == afterMinus && isDigit(c):
		return inInteger, true
	case st == afterPoint && isDigit(c):
		return inFraction, true
	case st == afterExponent && (c == '+' || c == '-'):
		return afterExponentSign, true
	case (st == afterExponent || st == afterExponentSign) && isDigit(c):
		return inExponent, true
	}
	return st, false
}

// numberNeeds says what a number lacks in a state that cannot end it.
var numberNeeds = [...]string{
	afterMinus:        "a digit after '-'",
	afterPoint:        "a digit after a number's '.'",
	afterExponent:     "a digit or a sign after a number's exponent 'e'",
	afterExponentSign: "a digit in a number's exponent",
}

// complete reports whether a number may end in state st.
func complete(st state) bool {
	return st == afterZero || st == inInteger || st == inFraction || st == inExponent
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// describe names a byte for an error message: quoted if printable ASCII, in
// hex otherwise, so that the message stays on one line.
func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02X", c)
}
