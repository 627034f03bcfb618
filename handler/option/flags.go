package option

import (
	"flag"
	"fmt"
	"os"

	"github.com/tidwall/gjson"

	"github.com/cfgsnap/cfgsnap/handler/safepath"
)

// Flags collects the options given on a command line. Every option is a flag of
// the same name; --options FILE.json reads an options object first, so flags
// override it.
type Flags struct {
	file     string
	rootFile string // read when file is not given, if it exists
	names    []string
	vals     map[string][]string
}

// AddFlags registers every option, and --options, on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{vals: map[string][]string{}, rootFile: RootFile}
	fs.StringVar(&f.file, "options", "", "read options from a JSON object file, as the event handler's options (default "+RootFile+" if it exists)")
	for _, o := range All() {
		fs.Var(&flagValue{f: f, name: o.Name, isBool: o.Bool}, o.Name, o.Help)
	}
	return f
}

// Apply sets c from the options file, then from the flags in the order given.
// Without --options, root's own options file is read if it exists: where a
// switch keeps what the event-handler instance may not set. It must be root's,
// since what it says root does.
func (f *Flags) Apply(c *Config) error {
	file := f.file
	if file == "" {
		if _, err := os.Lstat(f.rootFile); err == nil {
			if err := safepath.Check(f.rootFile, false); err != nil {
				return fmt.Errorf("options file %s is not root's own (%v): fix its ownership and mode, or remove it", f.rootFile, err)
			}
			file = f.rootFile
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if !gjson.ValidBytes(data) {
			return fmt.Errorf("options file %s is not valid JSON", file)
		}
		if err := c.SetJSON(gjson.ParseBytes(data)); err != nil {
			return fmt.Errorf("options file %s: %w", file, err)
		}
	}
	for _, n := range f.names {
		if err := c.Set(n, f.vals[n]); err != nil {
			return err
		}
	}
	return nil
}

// Args returns the flags as given, to hand them on to the worker.
func (f *Flags) Args() []string {
	var args []string
	if f.file != "" {
		args = append(args, "--options", f.file)
	}
	for _, n := range f.names {
		for _, v := range f.vals[n] {
			args = append(args, "--"+n+"="+v)
		}
	}
	return args
}

type flagValue struct {
	f      *Flags
	name   string
	isBool bool
}

func (v *flagValue) String() string { return "" }

func (v *flagValue) Set(s string) error {
	if _, seen := v.f.vals[v.name]; !seen {
		v.f.names = append(v.f.names, v.name)
	}
	v.f.vals[v.name] = append(v.f.vals[v.name], s)
	return nil
}

func (v *flagValue) IsBoolFlag() bool { return v.isBool }
