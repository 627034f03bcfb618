package event_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/event"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

func TestRealInputs(t *testing.T) {
	for file, want := range map[string]string{
		"eh-input-backup-last-change.json":  "2025-09-20T11:02:08.456Z",
		"eh-input-last-change-example.json": "2024-03-13T06:22:49.274Z",
	} {
		ev, err := event.Parse(testenv.ReadFixture(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := ev.LastChange.Format(time.RFC3339Nano); got != want {
			t.Errorf("%s: last-change %s, want %s", file, got, want)
		}
	}
	ev, _ := event.Parse(testenv.ReadFixture(t, "eh-input-backup-last-change.json"))
	if got := ev.Options.Get("target").String(); got != "nokia@10.128.7.33:~/backups/" {
		t.Errorf("options.target = %q", got)
	}
}

func TestRejects(t *testing.T) {
	for _, c := range []struct{ in, says string }{
		{``, "not valid JSON"},
		{`{"paths":[`, "not valid JSON"},
		{`[1,2]`, "not a JSON object"},
		{"{\"paths\":[],\"x\":\"\xff\"}", "not valid JSON"},
		{`{"paths":[]}`, `paths [ "system configuration last-change" ]`},
		{`{"options":{"target":"x"}}`, "no \"system configuration last-change\" path"},
		{`{"paths":[{"path":"system configuration last-change","value":"yesterday $(reboot)"}]}`, "not an RFC 3339 time"},
		{`{"paths":[{"path":"system configuration last-change","value":"2025-09-20T11:02:08.456Z"}],"options":"x"}`, "options is not an object"},
		{`{"paths":[{"path":"system configuration last-change","value":"` + strings.Repeat("9", 2000) + `"}]}`, "..."},
		{`{"x":"` + strings.Repeat("a", event.MaxSize) + `"}`, "more than"},
	} {
		_, err := event.Parse([]byte(c.in))
		if err == nil {
			t.Errorf("%.40q: accepted", c.in)
			continue
		}
		if fail.KindOf(err) != fail.Event {
			t.Errorf("%.40q: kind %d, want fail.Event", c.in, fail.KindOf(err))
		}
		if msg := err.Error(); !strings.Contains(msg, c.says) || strings.Contains(msg, "\n") || len(msg) > 300 {
			t.Errorf("%.40q: error %q, want one short line saying %q", c.in, msg, c.says)
		}
	}
}

func TestLastChangeIsUTC(t *testing.T) {
	ev, err := event.Parse([]byte(`{"paths":[{"path":"system configuration last-change","value":"2025-09-20T13:02:08.456+02:00"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.LastChange.Format(time.RFC3339Nano); got != "2025-09-20T11:02:08.456Z" {
		t.Errorf("got %s", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"paths":[{"path":"system configuration last-change","value":"2025-09-20T11:02:08.456Z"}],"options":{"target":["a","b"]}}`))
	f.Add([]byte(`{"paths":[{"path":"system configuration last-change"}]}`))
	f.Add([]byte(`{"paths":{"path":1},"options":[]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := event.Parse(raw)
		if err != nil {
			if fail.KindOf(err) != fail.Event || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q of kind %d: want one line of kind Event", err, fail.KindOf(err))
			}
			return
		}
		if ev.LastChange.IsZero() && !strings.Contains(string(raw), "0001-01-01") {
			t.Fatalf("accepted without a last-change: %q", raw)
		}
	})
}
