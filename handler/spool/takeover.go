package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// takeOverWait bounds how long TakeOver waits for a dying holder's lock: the
// kernel frees it when it closes the holder's files, within milliseconds.
const takeOverWait = 5 * time.Second

// TakeOver is TryLock for a worker that leaves the queue to a running worker:
// that one looks at the queue again before it lets go of the lock. A holder
// that was killed cannot, and holds the lock until the kernel has closed its
// files; a worker that gave up then would leave its event waiting for the next
// one. So while the holder is exiting, TakeOver waits for the lock (at most
// a few seconds); while it lives, it returns ok false at once.
func (s *Spool) TakeOver(ctx context.Context) (unlock func(), ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, takeOverWait)
	defer cancel()
	return s.pollLock(ctx, time.Millisecond, 50*time.Millisecond, s.holderExiting)
}

// holderExiting reports whether the process named in the lock file is gone or
// on its way out. Unknown (no pid yet, no /proc) counts as alive: that is
// TryLock's old answer, and a live holder does look at the queue again.
func (s *Spool) holderExiting() bool {
	b, err := readFile(filepath.Join(s.dir, lockFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return exiting(pid)
}

// exiting reads /proc/PID: a process that is gone, a zombie, marked
// PF_EXITING, or with SIGKILL pending will not unlock by itself.
func exiting(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if os.IsNotExist(err) {
		return true
	}
	if err != nil {
		return false
	}
	// pid (comm) state ppid pgrp session tty_nr tpgid flags ...; comm may hold
	// spaces and parentheses, so count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 7 {
		return false
	}
	const pfExiting = 0x4
	if state := f[0]; state == "Z" || state == "X" || state == "x" {
		return true
	}
	if flags, err := strconv.ParseUint(f[6], 10, 64); err == nil && flags&pfExiting != 0 {
		return true
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return os.IsNotExist(err)
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		if k != "SigPnd" && k != "ShdPnd" {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(9-1)) != 0 {
			return true // SIGKILL
		}
	}
	return false
}
