package option_test

import (
	"reflect"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/option"
)

// Every slice of a clone is its own, whichever fields Config has: the test
// walks the struct, so a slice field added later is covered without a change.
func TestCloneSharesNoSlice(t *testing.T) {
	c := option.New()
	orig := reflect.ValueOf(c).Elem()
	slices := 0
	for i := range orig.NumField() {
		if f := orig.Field(i); f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			slices++
		}
	}
	if slices == 0 {
		t.Fatal("Config has no slice field; the test tests nothing")
	}
	cp := reflect.ValueOf(c.Clone()).Elem()
	for i := range cp.NumField() {
		f := cp.Field(i)
		if f.Kind() != reflect.Slice {
			continue
		}
		if f.Pointer() == orig.Field(i).Pointer() {
			t.Errorf("Clone shares field %s with the original", cp.Type().Field(i).Name)
		}
	}
	if !reflect.DeepEqual(c, c.Clone()) {
		t.Errorf("a clone differs from its original")
	}
}
