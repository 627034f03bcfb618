package option

import "reflect"

// Clone returns a copy of c that shares nothing with it: each slice is copied
// too, including any slice field added later, so that applying an event's
// options to the copy never changes c.
func (c *Config) Clone() *Config {
	cp := *c
	v := reflect.ValueOf(&cp).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && !f.IsNil() {
			f.Set(reflect.AppendSlice(reflect.MakeSlice(f.Type(), 0, f.Len()), f))
		}
	}
	return &cp
}
