package option

import (
	"fmt"
	"sort"

	"github.com/tidwall/gjson"
)

// SetJSON applies an options object: the event's "options" member, or an
// --options file. A value is a string, or an array of strings as the event
// handler sends for `values [ ... ]`; numbers and booleans are taken as written.
func (c *Config) SetJSON(obj gjson.Result) error {
	names, vals, err := parseObject(obj)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.Set(n, vals[n]); err != nil {
			return err
		}
	}
	return nil
}

// parseObject reads an options object into its names, sorted (a fixed order
// makes the first error the same every run), and their values.
func parseObject(obj gjson.Result) ([]string, map[string][]string, error) {
	if !obj.Exists() || obj.Type == gjson.Null {
		return nil, nil, nil
	}
	if !obj.IsObject() {
		return nil, nil, fmt.Errorf("options: want a JSON object, got %s", describe(obj))
	}
	var (
		names []string
		vals  = map[string][]string{}
		err   error
	)
	obj.ForEach(func(k, v gjson.Result) bool {
		var list []string
		switch {
		case v.IsArray():
			for _, e := range v.Array() {
				if e.IsObject() || e.IsArray() {
					err = fmt.Errorf("option %s: want strings, got %s", k.String(), describe(e))
					return false
				}
				list = append(list, e.String())
			}
		case v.IsObject():
			err = fmt.Errorf("option %s: want a string or a list of strings, got an object", k.String())
			return false
		default:
			list = []string{v.String()}
		}
		names = append(names, k.String())
		vals[k.String()] = list
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	return names, vals, nil
}

func describe(r gjson.Result) string {
	switch {
	case r.IsObject():
		return "an object"
	case r.IsArray():
		return "a list"
	case r.Type == gjson.String:
		return "a string"
	default:
		return r.Type.String()
	}
}
