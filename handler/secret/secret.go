// Package secret reads the secrets cfgsnap is given for its peers (the
// JSON-RPC password, a git token, the webhook's signing secret, S3 keys): the
// first line of a file that an option names, else an environment variable.
// Neither shows in the process list, as a command-line argument would.
//
// Its errors name the option and the file and say what to do. None holds
// anything read from the file: a message ends up in logs and in the event
// handler's state, where a secret must never be.
package secret

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// Read returns the secret of option: the first line of file, without its line
// ending (every other character is kept: a password may end in a space), or,
// when file is "", the value of $env (none when env is ""). source says where
// the secret came from, "OPTION FILE" or "$ENV", for messages, which must name
// the secret without showing it. With no file and no variable, value and
// source are "": whether a secret is required only the caller knows.
//
// A file that is set is never passed over for the environment: missing,
// unreadable or with an empty first line it is an error, because the user
// meant that file. Errors are fail.Usage, or fail.Permission for a file
// cfgsnap may not read (sudo helps there).
func Read(option, file, env string) (value, source string, err error) {
	if file == "" {
		if env != "" {
			if v := os.Getenv(env); v != "" {
				return v, "$" + env, nil
			}
		}
		return "", "", nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", "", readError(option, file, err)
	}
	defer f.Close()
	// Only the first line: what follows may be a comment for the people who
	// manage the file.
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", "", readError(option, file, err)
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", "", fail.New(fail.Usage, "%s %s is empty or has an empty first line: put the secret on its first line", option, file)
	}
	return line, option + " " + file, nil
}

// readError words a failure to open or read file.
func readError(option, file string, err error) error {
	// The *fs.PathError's text would repeat the file's name.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail.New(fail.Usage, "cannot read %s %s: it does not exist: fix the option or create the file", option, file)
	case errors.Is(err, fs.ErrPermission):
		return fail.New(fail.Permission, "cannot read %s %s: %v: run cfgsnap with sudo or make the file readable by its user", option, file, err)
	}
	return fail.New(fail.Usage, "cannot read %s %s: %v: fix the option", option, file, err)
}
