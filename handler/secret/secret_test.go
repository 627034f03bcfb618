package secret_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/secret"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

const env = "CFGSNAP_SECRET_TEST"

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantErr checks err's kind, that it names every part, and that it shows
// nothing of the file's content.
func wantErr(t *testing.T, err error, kind fail.Kind, content string, parts ...string) {
	t.Helper()
	if fail.KindOf(err) != kind {
		t.Fatalf("error %v has kind %d, want %d", err, fail.KindOf(err), kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
	if content != "" && strings.Contains(err.Error(), content) {
		t.Errorf("error %q shows the file's content", err)
	}
}

func TestFirstLineOfFile(t *testing.T) {
	t.Setenv(env, "from-env")
	for content, want := range map[string]string{
		"tok3n\n":                   "tok3n",
		"tok3n":                     "tok3n",
		"tok3n\r\n# a comment\n":    "tok3n",
		" pass phrase \nline two\n": " pass phrase ", // a password may hold spaces
	} {
		file := write(t, content)
		v, src, err := secret.Read("x-password-file", file, env)
		if err != nil || v != want || src != "x-password-file "+file {
			t.Errorf("%q: Read = %q, %q, %v; want %q from the file, not $%s", content, v, src, err, want, env)
		}
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv(env, "from-env")
	if v, src, err := secret.Read("x-password-file", "", env); err != nil || v != "from-env" || src != "$"+env {
		t.Errorf("Read = %q, %q, %v; want the variable", v, src, err)
	}
	if v, src, err := secret.Read("x-password-file", "", ""); err != nil || v != "" || src != "" {
		t.Errorf("no variable to read: Read = %q, %q, %v; want none", v, src, err)
	}
	t.Setenv(env, "")
	if v, src, err := secret.Read("x-password-file", "", env); err != nil || v != "" || src != "" {
		t.Errorf("variable empty: Read = %q, %q, %v; want none", v, src, err)
	}
}

// A file that is set but cannot give a secret is an error, never a reason to
// use the environment.
func TestFileErrors(t *testing.T) {
	t.Setenv(env, "from-env")
	missing := filepath.Join(t.TempDir(), "nope")
	_, _, err := secret.Read("x-password-file", missing, env)
	wantErr(t, err, fail.Usage, "", "cannot read x-password-file "+missing, "does not exist", "fix the option")

	for _, content := range []string{"", "\n", "\r\nsecret-on-line-two\n"} {
		file := write(t, content)
		_, _, err := secret.Read("x-password-file", file, env)
		wantErr(t, err, fail.Usage, "secret-on-line-two", "x-password-file "+file, "is empty", "empty first line")
	}

	dir := t.TempDir()
	_, _, err = secret.Read("x-password-file", dir, env)
	wantErr(t, err, fail.Usage, "", "cannot read x-password-file "+dir, "is a directory")
	if strings.Count(err.Error(), dir) != 1 {
		t.Errorf("error %q names the file more than once", err)
	}
}

func TestUnreadableFile(t *testing.T) {
	if testenv.RerunAsNobody(t) { // root reads every file
		return
	}
	file := write(t, "tok3n\n")
	if err := os.Chmod(file, 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := secret.Read("x-password-file", file, env)
	wantErr(t, err, fail.Permission, "tok3n", "cannot read x-password-file "+file, "sudo")
}
