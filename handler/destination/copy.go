package destination

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
)

// TempName is where a destination writes name before renaming it into place: hidden,
// in the same folder (so the rename is atomic), and derived from name alone, so a
// retry after a crash overwrites the leftover instead of adding another.
func TempName(name string) string {
	dir, base := path.Split(name)
	return dir + "." + base + ".part"
}

// IsTempName reports whether base, a file name without folder, is one that
// TempName gives: a Save's temporary, which Pruner.List leaves out because it
// is not a snapshot yet, and may be another Save's work in progress.
func IsTempName(base string) bool {
	return len(base) > len("..part") && base[0] == '.' && strings.HasSuffix(base, ".part")
}

// Copy copies exactly size bytes from r to w. It fails if r yields fewer or more,
// and stops at the next read once ctx is done, so a stalled spool file or a
// cancelled run never commits a truncated snapshot.
func Copy(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	n, err := io.Copy(w, io.LimitReader(ctxReader{ctx, r}, size+1))
	switch {
	case err != nil:
		return err
	case n != size:
		return fmt.Errorf("snapshot changed while it was sent: %d bytes instead of %d", n, size)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
