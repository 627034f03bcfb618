package target_test

import (
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/target"
)

// TestKinds: each target form goes to the destination a user expects.
func TestKinds(t *testing.T) {
	for raw, notifies := range map[string]bool{
		"sftp://backup@10.0.0.5/srl":                    false,
		"git@git.example.net:net/configs.git":           false,
		"https://git.example.net/net/configs.git":       false,
		"git+ssh://git@git.example.net/net/configs.git": false,
		"https://salt.example.net:8000/hook/cfgsnap":    true,
		"https://hooks.slack.com/services/T0/B0/XXXX":   true,
	} {
		if _, err := target.Parse(raw); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
		if target.Notifies(raw) != notifies {
			t.Errorf("%s: notifies %v, want %v", raw, !notifies, notifies)
		}
	}
}

// TestNoPasswordInErrors: a target that cannot be parsed, or carries a
// password, never shows it.
func TestNoPasswordInErrors(t *testing.T) {
	for _, raw := range []string{"backup:hunter2@10.0.0.5:srl", "sftp://backup:hunter2@10.0.0.5/srl", "sftp://backup:hunter2@[bad/srl"} {
		_, err := target.Parse(raw)
		if fail.KindOf(err) != fail.Usage || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	c := option.New()
	c.WebhookFormat = "slack"
	if d := target.Display("https://hooks.slack.com/services/T0/B0/SECRET", c); strings.Contains(d, "SECRET") {
		t.Errorf("Display shows the Slack token: %s", d)
	}
}
