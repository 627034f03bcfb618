package safepath_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/safepath"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// nobody is the uid of the other user these tests plant files as.
const nobody = 65534

func TestCheck(t *testing.T) {
	testenv.NeedRoot(t)
	// t.TempDir is below /tmp: world-writable, sticky, and root owns what it
	// makes there.
	root := t.TempDir()
	mk := func(rel string, mode os.FileMode, uid int) string {
		p := filepath.Join(root, rel)
		if strings.HasSuffix(rel, "/") {
			if err := os.Mkdir(p, mode); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return filepath.Clean(p)
	}
	ok := mk("ok/", 0o755, 0)
	prog := mk("ok/sr_cli", 0o755, 0)
	theirs := mk("theirs/", 0o755, nobody)
	evil := mk("theirs/evil.sh", 0o755, nobody)
	mk("open/", 0o777, 0)
	sticky := mk("sticky/", os.ModeSticky|0o777, 0)
	inSticky := mk("sticky/sr_cli", 0o755, 0)
	inOpen := mk("open/sr_cli", 0o755, 0)
	groupWritable := mk("ok/gw", 0o775, 0)
	ln := func(rel, target string, uid int) string {
		p := filepath.Join(root, rel)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := ln("ok/link", prog, 0)
	ours := ln("sticky/ours", "../ok", 0)
	nobodys := ln("sticky/nobodys", ok, nobody)
	toTheirs := ln("ok/to-theirs", theirs, 0)
	toSticky := ln("ok/to-sticky", "../sticky", 0)
	toOk := ln("ok/to-ok", ".", 0)
	loop := ln("ok/loop", "loop", 0)
	for _, c := range []struct {
		path      string
		missingOK bool
		refused   string // "" when the path is root's
	}{
		{prog, false, ""},
		{ok, false, ""},
		{filepath.Join(ok, "spool", "sub"), true, ""},       // created later by root, below a folder only root writes
		{filepath.Join(ok, "spool"), false, "no such file"}, // must exist
		{evil, false, "owned by uid 65534"},
		{filepath.Join(theirs, "x"), true, "owned by uid 65534"},
		{inOpen, false, "writable by group or others"},
		{groupWritable, false, "writable by group or others"},
		{link, false, "symbolic link"},
		{filepath.Join(link, "x"), true, prog + " is not a folder (reached through symbolic link " + link},
		{inSticky, false, ""},                                                        // others cannot replace root's entry of a sticky folder
		{filepath.Join(sticky, "not-made-yet"), true, "writable by group or others"}, // but could create it first
		// A link on the way is followed when root owns it, even in a sticky
		// folder, where only its owner may replace it; what it leads to is
		// checked alike.
		{filepath.Join(ours, "sr_cli"), false, ""},
		{filepath.Join(toOk, "spool", "sub"), true, ""},
		{filepath.Join(nobodys, "sr_cli"), false, "symbolic link " + nobodys + " is owned by uid 65534"},
		{filepath.Join(toTheirs, "evil.sh"), false, theirs + " is owned by uid 65534, not by root (reached through symbolic link " + toTheirs},
		{filepath.Join(toSticky, "not-made-yet"), true, sticky + " is writable by group or others"},
		{filepath.Join(loop, "x"), true, "too many levels of symbolic links"},
		// The final component is never followed.
		{toOk, false, toOk + " is a symbolic link"},
		{"relative/sr_cli", false, "absolute"},
		{ok + "/../ok/sr_cli", false, "clean"},
	} {
		err := safepath.Check(c.path, c.missingOK)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("Check(%s, %v) = %v; want it accepted", c.path, c.missingOK, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("Check(%s, %v) = %v; want it refused: %s", c.path, c.missingOK, err, c.refused)
		}
	}
}

// With Mkdir, what is missing is made and checked; what someone else made
// first is refused.
func TestWalkMkdir(t *testing.T) {
	testenv.NeedRoot(t)
	root := t.TempDir()
	sticky := filepath.Join(root, "tmp")
	if err := os.Mkdir(sticky, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	var made []string
	mkdir := func(p string) error {
		made = append(made, p)
		return os.Mkdir(p, 0o755)
	}
	p := filepath.Join(sticky, "a", "b")
	fi, err := safepath.Walk(p, safepath.Options{Mkdir: mkdir})
	if err != nil || !fi.IsDir() || len(made) != 2 {
		t.Errorf("Walk(%s) = %v, %v after making %q; want both folders made", p, fi, err, made)
	}

	// As if another user made the folder between the lstat and the mkdir.
	theirs := filepath.Join(sticky, "theirs")
	race := func(p string) error {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		return os.Chown(p, nobody, nobody)
	}
	_, err = safepath.Walk(filepath.Join(theirs, "spool"), safepath.Options{Mkdir: race})
	if err == nil || !strings.Contains(err.Error(), theirs+" is owned by uid 65534") {
		t.Errorf("Walk through a folder nobody made meanwhile = %v; want it refused", err)
	}
	if _, err := os.Lstat(filepath.Join(theirs, "spool")); err == nil {
		t.Errorf("Walk made a folder in the folder of nobody's")
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{
		{"/etc/opt/srlinux/cfgsnap/id_ed25519", "/etc/opt/srlinux/cfgsnap", true},
		{"/etc/opt/srlinux/cfgsnap/keys/s3", "/etc/opt/srlinux/cfgsnap", true},
		{"/etc/opt/srlinux/cfgsnap", "/etc/opt/srlinux/cfgsnap", false},
		{"/etc/opt/srlinux/cfgsnap/../../../shadow", "/etc/opt/srlinux/cfgsnap", false},
		{"/etc/opt/srlinux/cfgsnap-evil/key", "/etc/opt/srlinux/cfgsnap", false},
		{"/etc/shadow", "/etc/opt/srlinux/cfgsnap", false},
		{"id_ed25519", "/etc/opt/srlinux/cfgsnap", false},
	} {
		if got := safepath.Within(c.p, c.dir); got != c.want {
			t.Errorf("Within(%q, %q) = %v, want %v", c.p, c.dir, got, c.want)
		}
	}
}
