package sshd_test

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/nstest"
	"github.com/cfgsnap/cfgsnap/handler/testkit/sshd"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// client runs an OpenSSH client program (ssh or sftp) against s with what the
// helper hands out; args follow the host: ssh's remote command.
func client(t *testing.T, s *sshd.Server, prog string, args ...string) *exec.Cmd {
	t.Helper()
	port := "-p"
	if prog == "sftp" {
		port = "-P"
	}
	opts := []string{"-F", "/dev/null", port, strconv.Itoa(s.Port()), "-i", s.ClientKey(),
		"-o", "UserKnownHostsFile=" + s.KnownHosts(), "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", s.User() + "@" + s.Host()}
	return exec.Command(testenv.NeedCommand(t, prog), append(opts, args...)...)
}

// The helper is only worth something if a stock OpenSSH client gets in with
// exactly what it hands out, and if Stop really takes the server down.
func TestOpenSSHClientLogsIn(t *testing.T) {
	s := sshd.New(t, sshd.Options{})
	out, err := client(t, s, "ssh", "echo", "hello").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("ssh: %v: %s", err, out)
	}

	// A session open when the server goes down dies with it, as on a real host.
	long := client(t, s, "ssh", "sleep 30")
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { long.Wait(); close(ended) }()
	waitFor(t, "sleep 30")
	s.Stop()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		long.Process.Kill()
		t.Fatal("an open session survived Stop")
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr())
	}

	s.Start()
	out, err = client(t, s, "ssh", "echo", "again").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "again" {
		t.Fatalf("ssh after Start: %v: %s", err, out)
	}
}

// waitFor waits until a process runs with exactly cmdline.
func waitFor(t *testing.T, cmdline string) {
	t.Helper()
	for range 500 {
		if out, _ := exec.Command("pgrep", "-f", "^"+cmdline+"$").Output(); len(out) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q never started", cmdline)
}

func TestWithoutSFTP(t *testing.T) {
	for _, noSFTP := range []bool{false, true} {
		s := sshd.New(t, sshd.Options{NoSFTP: noSFTP})
		// sftp reads its commands from stdin: an empty one makes it log in and quit.
		out, err := client(t, s, "sftp").CombinedOutput()
		if (err == nil) == noSFTP {
			t.Errorf("NoSFTP %v: sftp: %v: %s", noSFTP, err, out)
		}
	}
}

// The end-to-end test serves SSH inside a namespace, as the backup server sits
// behind the switch's management network.
func TestInNamespace(t *testing.T) {
	ns := nstest.NewNS(t)
	s := sshd.New(t, sshd.Options{Wrap: []string{"ip", "netns", "exec", ns}})
	inNS := func() *exec.Cmd {
		c := client(t, s, "ssh", "echo", "inside")
		return nstest.Command(ns, c.Path, c.Args[1:]...)
	}
	out, err := inNS().CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "inside" {
		t.Fatalf("ssh inside %s: %v: %s", ns, err, out)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatalf("%s answers in the host namespace", s.Addr())
	}
	s.Stop()
	if out, err := inNS().CombinedOutput(); err == nil {
		t.Fatalf("ssh inside %s after Stop: %s", ns, out)
	}
}
