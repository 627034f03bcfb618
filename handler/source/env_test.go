package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// sr_cli gets the variables a CLI needs from our environment, and none of the
// secrets cfgsnap or its caller keep there.
func TestSRCLIGetsACleanEnvironment(t *testing.T) {
	testenv.NeedCommand(t, "sh")
	envBin := testenv.NeedCommand(t, "env")

	passed := map[string]string{
		"PATH":    os.Getenv("PATH") + ":/cfgsnap-test/bin",
		"HOME":    t.TempDir(),
		"USER":    "admin",
		"LOGNAME": "admin",
		"LANG":    "C.UTF-8",
		"LC_TIME": "C",
		"TERM":    "xterm",
		"TZ":      "Europe/Brussels",
	}
	secrets := map[string]string{
		PasswordEnv:              testPassword,
		"CFGSNAP_GIT_PASSWORD":   "ghp_cfgsnapTestToken",
		"CFGSNAP_WEBHOOK_SECRET": "webhook-hmac-secret",
		"AWS_ACCESS_KEY_ID":      "AKIACFGSNAPTEST",
		"AWS_SECRET_ACCESS_KEY":  "aws-secret-key-value",
		"SSH_AUTH_SOCK":          "/tmp/ssh-agent.sock",
		"HTTPS_PROXY":            "http://proxyuser:proxy-password@10.0.0.9:3128",
	}
	for k, v := range passed {
		t.Setenv(k, v)
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}

	dump := filepath.Join(t.TempDir(), "env")
	bin := filepath.Join(t.TempDir(), "sr_cli")
	script := "#!/bin/sh\n" + shellQuote(envBin) + " > " + shellQuote(dump) + "\necho '{}'\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openSRCLI(t, bin).Commits(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}

	for k, want := range passed {
		if got[k] != want {
			t.Errorf("sr_cli saw %s=%q, want %q", k, got[k], want)
		}
	}
	for k, v := range secrets {
		if _, ok := got[k]; ok {
			t.Errorf("sr_cli inherited %s", k)
		}
		if strings.Contains(string(b), v) {
			t.Errorf("the value of %s reached sr_cli", k)
		}
	}
}
