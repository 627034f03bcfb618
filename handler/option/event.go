package option

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/cfgsnap/cfgsnap/handler/safepath"
)

// RootFile holds root's own options on a switch, read when no --options file
// is given: what the event-handler instance may not set (Trust). It must be
// root's (package safepath).
const RootFile = "/etc/opt/srlinux/cfgsnap/options.json"

// srlConfigFile is what option source file:PATH may name when an event sets
// it: SR Linux's saved configuration or one of its checkpoints, never any other
// file root can read.
var srlConfigFile = regexp.MustCompile(`^/etc/opt/srlinux/(config\.json|checkpoint/checkpoint-[0-9]{1,4}\.json)$`)

// SetEvent applies an event's options: what the switch's configuration users
// wrote in the event-handler instance. cfgsnap runs as root, so an option that
// chooses what root runs, reads or writes is taken from the event only when it
// cannot turn a configuration user into root or into a reader of root's
// files (see Trust):
//
//   - sr-cli, spool-dir, jsonrpc-socket: root owns the whole path;
//   - key, password and CA files: inside the spool folder (cfgsnap's own, where
//     root puts them), and root owns the whole path; encrypt-to's file of
//     recipients too, while a recipient given inline is the instance's;
//   - source file:PATH: SR Linux's config.json or a checkpoint only;
//   - jsonrpc-url: this switch only (loopback), as the password goes there;
//   - binary: never (it is the script's BINARY).
//
// Everything else (targets, names, retention, timeouts) is the instance's to set.
func (c *Config) SetEvent(obj gjson.Result) error {
	names, vals, err := parseObject(obj)
	if err != nil {
		return err
	}
	for _, n := range names {
		if o, ok := Lookup(n); ok && o.Trust == RootOnly {
			return fmt.Errorf("option %s is not read from the event-handler instance: %s", n, rootOnlyWhere(n))
		}
		if err := c.Set(n, vals[n]); err != nil {
			return err
		}
	}
	// Key files are checked against the spool folder the event may have set.
	for _, n := range names {
		if err := c.checkFromEvent(n, vals[n]); err != nil {
			return err
		}
	}
	return nil
}

// FromEvent says, in a phrase for help texts, what the event-handler instance
// may set of option o; "" when it may set anything.
func (o Option) FromEvent() string {
	switch {
	case o.Name == "binary":
		return "not an instance option: the script's BINARY"
	case o.Name == "encrypt-to":
		return "from the instance: recipients inline, or a file only in cfgsnap's folder (spool-dir)"
	case o.Trust == RootPath:
		return "from the instance only when root owns the whole path"
	case o.Trust == KeyFile:
		return "from the instance only as a file in cfgsnap's folder (spool-dir)"
	case o.Trust == RootOnly:
		return "root only: a flag or " + RootFile
	case o.Name == "source":
		return "from the instance, file: only for /etc/opt/srlinux/config.json or a checkpoint"
	case o.Name == "jsonrpc-url":
		return "from the instance only on loopback"
	}
	return ""
}

func rootOnlyWhere(name string) string {
	if name == "binary" {
		return "where cfgsnap is installed is set as root, as BINARY at the top of cfgsnap.py"
	}
	return "set it as root, in " + RootFile + " or as a flag"
}

func (c *Config) checkFromEvent(name string, vals []string) error {
	o, _ := Lookup(name)
	v := last(vals)
	switch {
	case o.Trust == RootPath:
		if err := safepath.Check(v, name == "spool-dir"); err != nil {
			return fmt.Errorf("option %s %q may come from the event-handler instance only when root owns the whole path, and %v: fix the ownership, or %s", name, clip(v), err, rootOnlyWhere(name))
		}
		// Root owns /etc too: the spool must be cfgsnap's, one it made, or
		// one still to make, never a folder that means something else.
		if name == "spool-dir" && exists(v) && !(isDir(filepath.Join(v, "jobs")) && isDir(filepath.Join(v, "snapshots"))) {
			return fmt.Errorf("option spool-dir %q: the event-handler instance may name only a spool cfgsnap made (with its jobs and snapshots folders) or a folder still to be made; %s", clip(v), rootOnlyWhere(name))
		}
	case o.Trust == KeyFile:
		dir, err := filepath.Abs(c.SpoolDir)
		if err != nil {
			return fmt.Errorf("option spool-dir %q: %v", clip(c.SpoolDir), err)
		}
		for _, p := range filePaths(name, vals) {
			if !safepath.Within(p, dir) {
				return fmt.Errorf("option %s %q: the event-handler instance may name only files in cfgsnap's folder %s, where root puts its keys and secrets: move the file there", name, clip(p), dir)
			}
			// A missing file is reported when it is used; nobody but root can create it.
			if err := safepath.Check(p, true); err != nil {
				return fmt.Errorf("option %s %q may come from the event-handler instance only when root owns the whole path, and %v: fix the ownership", name, clip(p), err)
			}
		}
	case name == "source":
		if p, ok := strings.CutPrefix(v, "file:"); ok && !srlConfigFile.MatchString(strings.Replace(p, "///", "/", 1)) {
			return fmt.Errorf("option source %q: the event-handler instance may read only SR Linux's own configuration files, /etc/opt/srlinux/config.json and /etc/opt/srlinux/checkpoint/checkpoint-N.json; %s", clip(v), rootOnlyWhere(name))
		}
	case name == "jsonrpc-url":
		if u, err := url.Parse(v); err == nil && !Loopback(u.Hostname()) {
			return fmt.Errorf("option jsonrpc-url %q: the event-handler instance may point it only at this switch (127.0.0.1, ::1 or localhost), since the JSON-RPC password goes there; %s", clip(v), rootOnlyWhere(name))
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// filePaths are the files a KeyFile option names, as Set reads them: for
// encrypt-to only its values that are files, not the recipients given inline,
// which root reads from nowhere.
func filePaths(name string, vals []string) []string {
	var out []string
	switch name {
	case "identity":
		for _, s := range vals {
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, ExpandHome(p))
				}
			}
		}
	case "encrypt-to":
		for _, s := range vals {
			if p, ok := RecipientFile(strings.TrimSpace(s)); ok {
				out = append(out, p)
			}
		}
	default:
		out = append(out, ExpandHome(last(vals)))
	}
	return out
}

// Loopback reports whether host is this machine: what a switch's own JSON-RPC
// server listens on.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
