package desttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/testkit/testenv"
)

// Nobody is the uid and gid of the other user on the server in these tests.
const Nobody = 65534

// Planted is the content of the files that the other user plants.
const Planted = "planted by uid 65534\n"

// intruderEnv, when set, makes the test binary the intruder process of
// StartIntruder instead of running tests: its value is the folder to watch.
const intruderEnv = "CFGSNAP_DESTTEST_INTRUDER"

func init() {
	if dir, ok := os.LookupEnv(intruderEnv); ok {
		os.Exit(intrude(dir, filepath.SplitList(os.Getenv(intruderEnv+"_PLANT"))))
	}
}

// Intruder is another user of the server (uid 65534) who may create files in
// a folder that snapshots go to, and reads what it can there.
type Intruder struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// Report is what an Intruder did.
type Report struct {
	// Read holds, by file name, the longest content the intruder read from a
	// file of the folder, other than Planted: what it learnt.
	Read map[string][]byte
	// Seen lists every name that the intruder saw in the folder.
	Seen []string
}

// StartIntruder starts, as uid 65534, a process that until Stop polls folder
// dir as fast as it can:
//
//   - it creates, mode 0666 and holding Planted, each file named in plant that
//     is missing (names relative to dir), as well as each hidden name in the
//     command line of another process that names dir (ps shows command lines
//     to all): a file that a Save would then write into;
//   - it opens every file it finds in dir and keeps it open, reading it again
//     and again: a file readable for a moment is read whole later.
//
// StartIntruder returns once the intruder has planted its files.
func StartIntruder(t *testing.T, dir string, plant ...string) *Intruder {
	t.Helper()
	testenv.NeedRoot(t)
	// The go test cache folder is root's alone: copy the binary where uid
	// 65534 can run it.
	bin, err := os.MkdirTemp("", "cfgsnap-intruder-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(bin, "intruder")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	in := &Intruder{t: t, cmd: exec.Command(exe)}
	in.cmd.Env = append(os.Environ(), intruderEnv+"="+dir, intruderEnv+"_PLANT="+strings.Join(plant, string(filepath.ListSeparator)))
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
	in.cmd.Stderr = os.Stderr
	if in.stdin, err = in.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := in.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.cmd.Process.Kill(); in.cmd.Wait() })
	in.out = bufio.NewReader(stdout)
	if line, err := in.out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the intruder did not start: %q, %v", line, err)
	}
	return in
}

// Stop ends the intruder and returns its report.
func (in *Intruder) Stop() Report {
	in.t.Helper()
	in.stdin.Close()
	var rep Report
	derr := json.NewDecoder(in.out).Decode(&rep)
	if err := in.cmd.Wait(); err != nil || derr != nil {
		in.t.Fatalf("the intruder: %v; its report: %v", err, derr)
	}
	return rep
}

// intrude is the intruder process; it returns its exit status.
func intrude(dir string, plant []string) int {
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	held := map[uint64]*os.File{} // by inode: each file once
	names := map[uint64]string{}
	rep := Report{Read: map[string][]byte{}}
	seen := map[string]bool{}
	hidden := regexp.MustCompile(`(?:^|[\s'"/=])(\.[^/'"\s;&|]+)`)
	for round := 0; ; round++ {
		// One more round after Stop, to see what was saved before it.
		var last bool
		select {
		case <-stop:
			last = true
		default:
		}
		for _, name := range slices.Concat(plant, commandLineNames(dir, hidden)) {
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
			if err == nil {
				f.Chmod(0o666) // past the umask
				f.WriteString(Planted)
				f.Close()
			}
		}
		if round == 0 {
			os.Stdout.WriteString("ready\n")
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			seen[e.Name()] = true
			f, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			st, err := f.Stat()
			if err != nil || !st.Mode().IsRegular() || held[ino(st)] != nil {
				f.Close()
				continue
			}
			held[ino(st)], names[ino(st)] = f, e.Name()
		}
		for i, f := range held {
			b, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
			if string(b) != Planted && len(b) > len(rep.Read[names[i]]) {
				rep.Read[names[i]] = b
			}
		}
		if last {
			for n := range seen {
				rep.Seen = append(rep.Seen, n)
			}
			if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
				return 1
			}
			return 0
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func ino(st fs.FileInfo) uint64 { return st.Sys().(*syscall.Stat_t).Ino }

// commandLineNames returns what looks like a hidden file name, as re matches
// it, in the command lines of running processes that name folder dir.
func commandLineNames(dir string, re *regexp.Regexp) []string {
	procs, _ := os.ReadDir("/proc")
	var names []string
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
	}
	return names
}
