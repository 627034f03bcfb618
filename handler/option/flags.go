package option

import (
	"flag"
	"fmt"
	"os"

	"github.com/tidwall/gjson"
)

// Flags collects the options given on a command line. Every option is a flag of
// the same name; --options FILE.json reads an options object first, so flags
// override it.
type Flags struct {
	file  string
	names []string
	vals  map[string][]string
}

// AddFlags registers every option, and --options, on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{vals: map[string][]string{}}
	fs.StringVar(&f.file, "options", "", "read options from a JSON object file, as the event handler's options")
	for _, o := range All() {
		fs.Var(&flagValue{f: f, name: o.Name, isBool: o.Bool}, o.Name, o.Help)
	}
	return f
}

// Apply sets c from the options file, then from the flags in the order given.
func (f *Flags) Apply(c *Config) error {
	if f.file != "" {
		data, err := os.ReadFile(f.file)
		if err != nil {
			return err
		}
		if !gjson.ValidBytes(data) {
			return fmt.Errorf("options file %s is not valid JSON", f.file)
		}
		if err := c.SetJSON(gjson.ParseBytes(data)); err != nil {
			return err
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
