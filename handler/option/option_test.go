package option_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/cfgsnap/cfgsnap/handler/option"
)

func TestDefaults(t *testing.T) {
	c := option.New()
	if c.Source != "sr_cli" || c.NetNS != option.NetNSAuto || c.InsecureSkipHostKey || c.CommitWait != 5*time.Second ||
		c.SpoolMaxBytes != 64<<20 || c.SpoolMaxCount != 100 || len(c.Identities) != 2 || strings.HasPrefix(c.KnownHosts, "~") {
		t.Errorf("defaults: %+v", c)
	}
	for _, o := range option.All() {
		if o.Help == "" || strings.Contains(o.Help, "\n") {
			t.Errorf("option %s: help must be one line", o.Name)
		}
	}
}

func TestEventOptions(t *testing.T) {
	c := option.New()
	err := c.SetJSON(gjson.Parse(`{"target":["sftp://a@h/x","file:///y"],"insecure-skip-host-key":"true","commit-wait":"1.5","spool-max-bytes":"2MiB","debug":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Targets, []string{"sftp://a@h/x", "file:///y"}) || !c.InsecureSkipHostKey ||
		c.CommitWait != 1500*time.Millisecond || c.SpoolMaxBytes != 2<<20 || !c.Debug {
		t.Errorf("got %+v", c)
	}
	// A single `value` arrives as a string and is a one-element list.
	if err := c.SetJSON(gjson.Parse(`{"target":"scp://b@h/z"}`)); err != nil || !reflect.DeepEqual(c.Targets, []string{"scp://b@h/z"}) {
		t.Errorf("single target: %v %v", c.Targets, err)
	}
}

func TestBadOptions(t *testing.T) {
	for in, says := range map[string]string{
		`{"know-hosts":"x"}`:                      `unknown option "know-hosts"`,
		`{"insecure-skip-host-key":"yes please"}`: "want true or false",
		`{"commit-wait":"-1"}`:                    "want seconds",
		`{"spool-max-count":"0"}`:                 "at least 1",
		`{"spool-max-bytes":"lots"}`:              "size in bytes",
		`{"target":{"a":1}}`:                      "got an object",
		`{"sudo":"maybe"}`:                        "auto, true or false",
		`["target"]`:                              "want a JSON object",
		`{"name":"a\u0000b"}`:                     "NUL",
	} {
		err := option.New().SetJSON(gjson.Parse(in))
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: error %v, want it to say %q", in, err, says)
		}
	}
}
