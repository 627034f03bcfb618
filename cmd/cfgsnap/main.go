// Command cfgsnap backs up an SR Linux switch's running configuration on every
// commit, or by hand. `cfgsnap help` lists its commands and options.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/cfgsnap/cfgsnap/handler"
	"github.com/cfgsnap/cfgsnap/handler/event"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
)

// version is stamped by the Makefile.
var version = "dev"

const usage = `cfgsnap: configuration snapshots for SR Linux, on every commit.

Usage:
  cfgsnap snapshot --target URL [--comment TEXT] [options]   take a snapshot now
  cfgsnap flush [options]                                    deliver what is spooled
  cfgsnap handle [options] HEX                               what the event-handler script runs
  cfgsnap help [OPTION]                                      this text, or one option
  cfgsnap version

Every option is a flag (--name value) and an event-handler option of the same
name (options object NAME value ...); --options FILE.json reads a JSON object of
them (by default /etc/opt/srlinux/cfgsnap/options.json, root's, if it exists).
Flags override the file. cfgsnap runs as root, so the instance may not choose
what root runs, reads or writes: the options marked {...} below say what it may
set; the rest is root's to set, in flags or that file.

Exit codes:
  0 done   1 internal error   2 bad usage or option   3 malformed event
  4 configuration unreadable  5 not delivered (kept in the spool)
  6 SSH key or host key refused (kept in the spool)   7 needs root   8 busy
`

func main() {
	defer func() {
		// A bug must still end in one line and a documented code, not a trace.
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "cfgsnap: internal error: %v (please report it)\n", p)
			os.Exit(int(fail.Internal))
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cfgsnap: %s\n", oneLine(err.Error()))
		os.Exit(int(fail.KindOf(err)))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fail.New(fail.Usage, "no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		return help(stdout, args)
	case "version", "--version":
		fmt.Fprintln(stdout, "cfgsnap", version)
		return nil
	case "handle", "work", "snapshot", "flush":
	default:
		return fail.New(fail.Usage, "unknown command %q: cfgsnap help lists the commands", cmd)
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := option.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return fail.New(fail.Usage, "%s: %v (cfgsnap help lists the options)", cmd, err)
	}
	c := option.New()
	if err := flags.Apply(c); err != nil {
		return fail.New(fail.Usage, "%v", err)
	}
	env := handler.Env{Flags: flags.Args()}
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	if c.Debug || cmd == "work" {
		env.Logf = logger.Printf
	}

	var line string
	var err error
	switch cmd {
	case "handle":
		var raw []byte
		if raw, err = eventArg(fs.Args(), stdin); err != nil {
			return err
		}
		line, err = handler.Handle(ctx, raw, c, env)
	case "work":
		return handler.Work(ctx, c, env)
	case "snapshot":
		line, err = handler.Snapshot(ctx, c, env)
	case "flush":
		line, err = handler.Flush(ctx, c, env)
	}
	if line != "" {
		fmt.Fprintln(stdout, line)
	}
	return err
}

// eventArg decodes the event from the hex argument the script builds (hex keeps
// every character of the event away from any shell), or reads it from stdin
// given "-".
func eventArg(args []string, stdin io.Reader) ([]byte, error) {
	if len(args) != 1 {
		return nil, fail.New(fail.Usage, "handle takes one argument, the event as hex (or - for JSON on stdin); got %d", len(args))
	}
	if args[0] == "-" {
		raw, err := io.ReadAll(io.LimitReader(stdin, event.MaxSize+1))
		return raw, fail.As(fail.Event, err)
	}
	if len(args[0]) > 2*event.MaxSize {
		return nil, fail.New(fail.Event, "event argument longer than the %d bytes an event can be", event.MaxSize)
	}
	raw, err := hex.DecodeString(args[0])
	if err != nil {
		return nil, fail.New(fail.Event, "event argument is not the hex the event-handler script makes (%v): is the script cfgsnap.py?", err)
	}
	return raw, nil
}

func help(w io.Writer, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(w, usage, "\nOptions (default in brackets):\n")
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		for _, o := range option.All() {
			def := ""
			if o.Default != "" {
				def = " [" + o.Default + "]"
			}
			if from := o.FromEvent(); from != "" {
				def += " {" + from + "}"
			}
			fmt.Fprintf(tw, "  --%s\t%s%s\n", o.Name, o.Help, def)
		}
		return tw.Flush()
	}
	for _, name := range args {
		o, ok := option.Lookup(strings.TrimLeft(name, "-"))
		if !ok {
			return fail.New(fail.Usage, "no option %q: cfgsnap help lists them all", name)
		}
		def := o.Default
		if def == "" {
			def = "(none)"
		}
		from := "options { object " + o.Name + " { value ... } }"
		if rule := o.FromEvent(); rule != "" {
			from += ": " + rule
		}
		fmt.Fprintf(w, "%s\n  %s\n  default: %s\n  event handler: %s\n  by hand: --%s ...\n", o.Name, o.Help, def, from, o.Name)
	}
	return nil
}
