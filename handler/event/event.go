// Package event decodes the input that SR Linux's event handler gives the script,
// which the script hands to `cfgsnap handle` unchanged:
//
//	{"paths":[{"path":"system configuration last-change","value":"2025-09-20T11:02:08.456Z"}],
//	 "options":{"target":"sftp://..."}, "schemas":[...], "persistent-data":{...}}
//
// Only paths and options matter; unknown members are ignored, as newer releases add some.
package event

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// LastChangePath is the state path the event-handler instance must subscribe to.
const LastChangePath = "system configuration last-change"

// MaxSize bounds an event. Real ones are a few hundred bytes; the bound keeps a
// runaway input from filling the spool.
const MaxSize = 1 << 20

// Event is a decoded event-handler input.
type Event struct {
	LastChange time.Time
	// Options is the raw "options" object; option.Config.SetJSON applies it.
	Options gjson.Result
}

// Parse decodes and validates raw. Every error is of kind fail.Event and says
// what the instance configuration should look like.
func Parse(raw []byte) (Event, error) {
	switch {
	case len(raw) > MaxSize:
		return Event{}, fail.New(fail.Event, "event is %d bytes, more than the %d an event-handler input can be", len(raw), MaxSize)
	case !utf8.Valid(raw) || !gjson.ValidBytes(raw):
		return Event{}, fail.New(fail.Event, "event is not valid JSON: the event-handler script must pass its input unchanged")
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		return Event{}, fail.New(fail.Event, "event is not a JSON object: the event-handler script must pass its input unchanged")
	}
	var ev Event
	found := false
	var perr error
	root.Get("paths").ForEach(func(_, p gjson.Result) bool {
		if p.Get("path").String() != LastChangePath {
			return true
		}
		found = true
		v := p.Get("value").String()
		ev.LastChange, perr = time.Parse(time.RFC3339Nano, v)
		if perr != nil {
			perr = fail.New(fail.Event, "event: %s is %q, not an RFC 3339 time", LastChangePath, clip(v))
		}
		return false
	})
	if perr != nil {
		return Event{}, perr
	}
	if !found {
		return Event{}, fail.New(fail.Event, "event has no %q path: configure the instance with paths [ %q ]", LastChangePath, LastChangePath)
	}
	ev.LastChange = ev.LastChange.UTC()
	ev.Options = root.Get("options")
	if ev.Options.Exists() && !ev.Options.IsObject() {
		return Event{}, fail.New(fail.Event, "event: options is not an object")
	}
	return ev, nil
}

// clip keeps error lines short when a value is huge or hostile.
func clip(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%.64s...", s)
	}
	return s
}
