package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/destination/desttest"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/testkit/testcert"
)

const prefix = "backups/srl"

// config is what a user with a correct setup for g gives: its keys in option
// files and, for TLS, its CA in ca-file.
func (g *gateway) config(t testing.TB) *option.Config {
	t.Helper()
	dir := t.TempDir()
	c := option.New()
	c.S3AccessKeyFile = writeFile(t, dir, "access", g.access+"\n")
	c.S3SecretKeyFile = writeFile(t, dir, "secret", g.secret+"\n")
	c.CAFile = g.ca
	c.ConnectTimeout = 5 * time.Second
	return c
}

// anyKeys is a configuration whose key files hold keys no server knows: for
// what happens before a request is signed, or without a server to sign for.
func anyKeys(t testing.TB) *option.Config {
	t.Helper()
	dir := t.TempDir()
	c := option.New()
	c.S3AccessKeyFile = writeFile(t, dir, "a", "AK")
	c.S3SecretKeyFile = writeFile(t, dir, "s", "SECRET")
	return c
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// open builds the destination for target, closed when t ends.
func open(t testing.TB, target string, c *option.Config, dial destination.Dial) *Destination {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(u, c, dial)
	if err != nil {
		t.Fatalf("New(%s): %v", target, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// fresh is a destination on a new bucket of g, and the bucket.
func fresh(t testing.TB, g *gateway) (*Destination, string) {
	t.Helper()
	b := g.bucket(t)
	return open(t, g.target(b, prefix), g.config(t), nil), b
}

func wantKind(t testing.TB, err error, k fail.Kind, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one of kind %d", k)
	}
	if fail.KindOf(err) != k {
		t.Errorf("error kind %d, want %d: %v", fail.KindOf(err), k, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not say %q: %v", p, err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

func save(t testing.TB, d destination.Destination, rec snapshot.Record, data []byte) error {
	t.Helper()
	rec.Size = int64(len(data))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Save(ctx, rec, bytes.NewReader(data))
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// The suite's readers can seek, so Save hashes them first; the Stream variants
// hide that, so the SHA-256 travels in a trailer (TLS) or not at all (chunk
// signatures only, without TLS).
func TestConformance(t *testing.T)          { suite(t, false, false) }
func TestConformanceTLS(t *testing.T)       { suite(t, true, false) }
func TestConformanceStream(t *testing.T)    { suite(t, false, true) }
func TestConformanceStreamTLS(t *testing.T) { suite(t, true, true) }

func suite(t *testing.T, secure, stream bool) {
	g := sharedGateway(t, secure)
	desttest.Run(t, func(t *testing.T) (destination.Destination, func() map[string][]byte) {
		var d destination.Destination
		d, b := fresh(t, g)
		if stream {
			d = streamOnly{d}
		}
		return d, func() map[string][]byte {
			// Nothing lands outside the prefix either.
			all := g.stored(t, b, "")
			for name := range all {
				if !strings.HasPrefix(name, prefix+"/") {
					t.Errorf("object outside the prefix: %s", name)
				}
			}
			return g.stored(t, b, prefix)
		}
	})
}

// streamOnly hides that Save's reader can seek.
type streamOnly struct{ destination.Destination }

func (s streamOnly) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	return s.Destination.Save(ctx, rec, struct{ io.Reader }{r})
}

// TestMetadata checks what a reader of the bucket sees beside the bytes: the
// record as metadata, the SHA-256 the server verified, a content type.
func TestMetadata(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			g := sharedGateway(t, secure)
			d, b := fresh(t, g)
			data := []byte(`{"system":{}}`)
			rec := snapshot.Record{
				Name:       "leaf1/leaf1_20250920T110208.456Z_alice.json",
				Host:       "leaf1",
				User:       "alice",
				LastChange: time.Date(2025, 9, 20, 11, 2, 8, 456e6, time.UTC),
				Commits:    []snapshot.Commit{{ID: 41}, {ID: 42}},
				SHA256:     sum(data),
			}
			if err := save(t, d, rec, data); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			key := prefix + "/" + rec.Name
			st, err := g.admin(t).StatObject(ctx, b, key, minio.StatObjectOptions{Checksum: true})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"Host": "leaf1", "User": "alice", "Last-Change": "2025-09-20T11:02:08.456Z",
				"Commits": "41,42", "Sha256": rec.SHA256,
			}
			for k, v := range want {
				if got := st.UserMetadata[k]; got != v {
					t.Errorf("x-amz-meta-%s = %q, want %q (all: %v)", strings.ToLower(k), got, v, st.UserMetadata)
				}
			}
			raw, _ := hex.DecodeString(rec.SHA256)
			if st.ChecksumSHA256 != base64.StdEncoding.EncodeToString(raw) {
				t.Errorf("stored checksum %q, want the record's SHA-256", st.ChecksumSHA256)
			}
			if st.ContentType != "application/json" {
				t.Errorf("content type %q", st.ContentType)
			}
			if st.Size != int64(len(data)) {
				t.Errorf("size %d", st.Size)
			}
		})
	}
}

// TestMetadataIsASCII: user and host names come from other people.
func TestMetadataIsASCII(t *testing.T) {
	m := metadata(snapshot.Record{
		User:    "jos\u00e9\r\nX-Evil: 1",
		Host:    strings.Repeat("h", 1000),
		Commits: make([]snapshot.Commit, 200),
	})
	for k, v := range m {
		for i := 0; i < len(v); i++ {
			if v[i] < ' ' || v[i] > '~' {
				t.Errorf("%s = %q holds byte %#x", k, v, v[i])
			}
		}
		if len(v) > metaLimit {
			t.Errorf("%s is %d bytes long", k, len(v))
		}
	}
	// mime writes the encoding as "q"; RFC 2047 makes it case-independent.
	if got, want := m["user"], "=?UTF-8?q?jos=C3=A9=0D=0AX-Evil:_1?="; got != want {
		t.Errorf("user = %q, want %q", got, want)
	}
	if got := m["commits"]; got != "0..0 (200 commits)" {
		t.Errorf("commits = %q", got)
	}
	if got, ok := m["possibly-included"]; ok {
		t.Errorf("possibly-included = %q on a settled snapshot", got)
	}
	unsettled := metadata(snapshot.Record{Commits: []snapshot.Commit{{ID: 7}}, Unsettled: true, Possibly: []snapshot.Commit{{ID: 8}, {ID: 9}}})
	if got := unsettled["possibly-included"]; got != "8,9 (unsettled read)" {
		t.Errorf("possibly-included = %q, want the commits an unsettled read may hold", got)
	}
	// And the server takes it.
	g := sharedGateway(t, false)
	d, b := fresh(t, g)
	if err := save(t, d, snapshot.Record{Name: "x.json", User: "jos\u00e9"}, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	st, err := g.admin(t).StatObject(context.Background(), b, prefix+"/x.json", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// minio-go decodes RFC 2047, as the AWS SDKs do.
	if st.UserMetadata["User"] != "jos\u00e9" {
		t.Errorf("stored user %q", st.UserMetadata["User"])
	}
}

// TestMetadataFits: a long value that must be encoded is cut until its
// encoding fits metaLimit, and still decodes to the start of the value; a
// tab, which RFC 2047 leaves as it is, is not sent either.
func TestMetadataFits(t *testing.T) {
	for in, want := range map[string]string{
		strings.Repeat("\u00e9", 200): strings.Repeat("\u00e9", 32),
		"jos\u00e9\tadmin":            "jos\u00e9 admin",
		"ops\tadmin":                  "ops admin",
	} {
		v := metadata(snapshot.Record{User: in})["user"]
		if len(v) > metaLimit || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Errorf("%q: %d bytes %q; want at most %d printable ASCII ones", in, len(v), v, metaLimit)
		}
		if got, err := new(mime.WordDecoder).DecodeHeader(v); err != nil || got != want {
			t.Errorf("%q: %q decodes to %q, %v; want %q", in, v, got, err, want)
		}
	}
}

// TestWrongChecksumStoresNothing checks that the server verifies the SHA-256:
// bytes that do not match the record are refused, and the old object stays.
func TestWrongChecksumStoresNothing(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			g := sharedGateway(t, secure)
			d, b := fresh(t, g)
			old := []byte(`{"old":true}`)
			if err := save(t, d, snapshot.Record{Name: "a.json", SHA256: sum(old)}, old); err != nil {
				t.Fatal(err)
			}
			data := []byte(`{"new":true}`)
			err := save(t, d, snapshot.Record{Name: "a.json", SHA256: sum([]byte("something else"))}, data)
			wantKind(t, err, fail.Deliver, "SHA-256", "stored nothing")
			if err := save(t, d, snapshot.Record{Name: "b.json", SHA256: sum([]byte("x"))}, data); err == nil {
				t.Fatal("a wrong SHA-256 was accepted")
			}
			got := g.stored(t, b, prefix)
			if len(got) != 1 || !bytes.Equal(got["a.json"], old) {
				t.Errorf("server holds %v, want only the old a.json", keysOf(got))
			}
		})
	}
}

// Corruption on the wire: byte 0x01, which no HTTP header, chunk header or
// base64 trailer holds, is changed into 0x02 on its way to the server, as a
// faulty middlebox would. The server must refuse the upload whichever way the
// SHA-256 reached it.
const (
	marker  = 0x01
	changed = 0x02
)

// corrupted is a snapshot with the marker in its second 64 KiB chunk.
func corrupted() []byte {
	data := bytes.Repeat([]byte("{}"), 100<<10)
	data[70000] = marker
	return data
}

// checkCorrupted saves corrupted data through d in each way the SHA-256 can
// reach the server, and checks that each Save fails and stores nothing. With a
// SHA-256 known before sending the error says sumSay, else streamSay.
func checkCorrupted(t *testing.T, g *gateway, d *Destination, b string, sumSay, streamSay []string) {
	t.Helper()
	data := corrupted()
	for _, tc := range []struct {
		rec snapshot.Record
		r   io.Reader
		say []string
	}{
		{snapshot.Record{Name: "record-sum.json", SHA256: sum(data)}, struct{ io.Reader }{bytes.NewReader(data)}, sumSay},
		{snapshot.Record{Name: "seekable.json"}, bytes.NewReader(data), sumSay},
		{snapshot.Record{Name: "stream.json"}, struct{ io.Reader }{bytes.NewReader(data)}, streamSay},
	} {
		tc.rec.Size = int64(len(data))
		err := d.Save(context.Background(), tc.rec, tc.r)
		t.Logf("%s: %v", tc.rec.Name, err)
		wantKind(t, err, fail.Deliver, tc.say...)
	}
	if got := g.stored(t, b, ""); len(got) != 0 {
		t.Errorf("server holds %v", keysOf(got))
	}
}

// TestCorruptedOnTheWire: over plain HTTP the SHA-256 sent ahead catches it, or
// for a stream the chunk signatures (and then the message does not blame the
// secret key, which the server's error code would).
func TestCorruptedOnTheWire(t *testing.T) {
	g := sharedGateway(t, false)
	b := g.bucket(t)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &flipConn{Conn: c}, nil
	}
	checkCorrupted(t, g, open(t, g.target(b, prefix), g.config(t), dial), b,
		[]string{"other bytes than the snapshot's SHA-256", "stored nothing"}, []string{"altered on the way", "use TLS"})
	// The same bytes arrive whole when nothing changes them.
	clean := open(t, g.target(b, prefix), g.config(t), nil)
	data := corrupted()
	if err := save(t, clean, snapshot.Record{Name: "record-sum.json", SHA256: sum(data)}, data); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptedBehindTLS: over TLS nothing is signed chunk by chunk
// (UNSIGNED-PAYLOAD), so only the SHA-256 in the header or trailer protects the
// bytes. To change them anyway, dial hands cfgsnap's TLS connection to a
// terminating proxy that alters the plain text and passes it to a plain-HTTP
// gateway: as a compromised or broken TLS-terminating load balancer would.
func TestCorruptedBehindTLS(t *testing.T) {
	g := sharedGateway(t, false)
	b := g.bucket(t)
	dir := t.TempDir()
	ca, certFile, keyFile := testcert.Write(t, dir, time.Now().Add(24*time.Hour))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		up, err := nd.DialContext(ctx, network, g.addr)
		if err != nil {
			return nil, err
		}
		client, proxy := net.Pipe()
		srv := tls.Server(proxy, &tls.Config{Certificates: []tls.Certificate{cert}})
		wg.Add(2)
		go func() {
			defer wg.Done()
			io.Copy(&flipConn{Conn: up}, srv)
			up.Close()
		}()
		go func() {
			defer wg.Done()
			io.Copy(srv, up)
			srv.Close()
		}()
		return client, nil
	}
	c := g.config(t)
	c.CAFile = ca
	d := open(t, "s3://"+b+"/"+prefix+"?endpoint=localhost:1", c, dial)
	bad := []string{"other bytes than the snapshot's SHA-256", "stored nothing"}
	checkCorrupted(t, g, d, b, bad, bad)
	// Through the same proxy, unaltered bytes are stored.
	data := bytes.Repeat([]byte("{}"), 100<<10)
	for _, r := range []io.Reader{bytes.NewReader(data), struct{ io.Reader }{bytes.NewReader(data)}} {
		if err := d.Save(context.Background(), snapshot.Record{Name: "clean.json", Size: int64(len(data))}, r); err != nil {
			t.Fatal(err)
		}
	}
}

// flipConn changes every marker byte it writes.
type flipConn struct{ net.Conn }

func (c *flipConn) Write(p []byte) (int, error) {
	return c.Conn.Write(bytes.ReplaceAll(p, []byte{marker}, []byte{changed}))
}

// TestChecksumPaths saves through each way the SHA-256 reaches the server and
// checks what it stored: the record's, one computed from a file that can be read
// twice, or (TLS only) a trailer computed while sending.
func TestChecksumPaths(t *testing.T) {
	data := []byte(`{"interface":[]}`)
	raw := sha256.Sum256(data)
	want := base64.StdEncoding.EncodeToString(raw[:])
	for _, secure := range []bool{false, true} {
		g := sharedGateway(t, secure)
		d, b := fresh(t, g)
		for _, tc := range []struct {
			name    string
			rec     snapshot.Record
			r       io.Reader
			checked bool // the server holds a SHA-256 it verified
		}{
			{"record", snapshot.Record{SHA256: sum(data)}, struct{ io.Reader }{bytes.NewReader(data)}, true},
			{"seekable", snapshot.Record{}, bytes.NewReader(data), true},
			{"stream", snapshot.Record{}, struct{ io.Reader }{bytes.NewReader(data)}, secure},
		} {
			name := map[bool]string{false: "http-", true: "https-"}[secure] + tc.name + ".json"
			tc.rec.Name, tc.rec.Size = name, int64(len(data))
			if err := d.Save(context.Background(), tc.rec, tc.r); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			st, err := g.admin(t).StatObject(context.Background(), b, prefix+"/"+name, minio.StatObjectOptions{Checksum: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := st.ChecksumSHA256; tc.checked && got != want {
				t.Errorf("%s: stored SHA-256 %q, want %q", name, got, want)
			}
			// What a later GET hands to curl or a browser: a framing that
			// was only for the upload would make them fail to decode it.
			if enc := st.Metadata.Get("Content-Encoding"); tc.name != "stream" && enc != "" {
				t.Errorf("%s: stored with Content-Encoding %q", name, enc)
			}
			if got := g.stored(t, b, prefix)[name]; !bytes.Equal(got, data) {
				t.Errorf("%s: stored %q", name, got)
			}
		}
	}
}

// TestSeekableReaderThatChanges: a spool file hashed first and then sent is
// refused if it changes in between, and the reader is left where it started.
func TestSeekableReaderThatChanges(t *testing.T) {
	g := sharedGateway(t, false)
	d, b := fresh(t, g)
	f, err := os.Create(filepath.Join(t.TempDir(), "spooled"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("{}")
	f.Seek(0, io.SeekStart)
	// A longer file than the record says is refused before anything is sent.
	err = d.Save(context.Background(), snapshot.Record{Name: "a.json", Size: 1}, f)
	wantKind(t, err, fail.Deliver, "snapshot changed")
	f.Seek(0, io.SeekStart)
	if err := d.Save(context.Background(), snapshot.Record{Name: "a.json", Size: 2}, f); err != nil {
		t.Fatal(err)
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); pos != 2 {
		t.Errorf("file at %d after Save", pos)
	}
	if got := g.stored(t, b, prefix); string(got["a.json"]) != "{}" {
		t.Errorf("server holds %q", got["a.json"])
	}
}

// TestFailingLargeReaderLeavesNothing: a snapshot above minio-go's multipart
// threshold (16 MiB) that fails mid-way leaves no object and no upload behind.
func TestFailingLargeReaderLeavesNothing(t *testing.T) {
	for _, secure := range []bool{false, true} {
		g := sharedGateway(t, secure)
		d, b := fresh(t, g)
		r := io.MultiReader(generated(20<<20), iotestErrReader{})
		err := d.Save(context.Background(), snapshot.Record{Name: "big.json", Size: 40 << 20}, r)
		if err == nil {
			t.Fatal("Save succeeded although its reader failed")
		}
		if !strings.Contains(err.Error(), "source broke") {
			t.Errorf("error does not say why: %v", err)
		}
		for u := range g.admin(t).ListIncompleteUploads(context.Background(), b, "", true) {
			t.Errorf("upload left behind: %+v", u)
		}
		if got := g.stored(t, b, ""); len(got) != 0 {
			t.Errorf("server holds %v", keysOf(got))
		}
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("source broke") }

// TestPrunerConformance runs the Pruner suite; Store.Put writes objects as
// another S3 client would.
func TestPrunerConformance(t *testing.T) {
	g := sharedGateway(t, false)
	desttest.RunPruner(t, func(t *testing.T) (destination.Pruner, desttest.Store) {
		d, b := fresh(t, g)
		admin := g.admin(t)
		return d, desttest.Store{
			Files: func() map[string][]byte { return g.stored(t, b, prefix) },
			Put: func(name string, data []byte) {
				t.Helper()
				_, err := admin.PutObject(context.Background(), b, prefix+"/"+name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// TestPrunerKeys covers what is particular to keys: a sibling prefix that
// shares the target's beginning, folder marker objects, names with spaces.
func TestPrunerKeys(t *testing.T) {
	g := sharedGateway(t, false)
	d, b := fresh(t, g)
	ctx := context.Background()
	admin := g.admin(t)
	for _, key := range []string{prefix + "x/leaf1/leaf1_z.json", prefix + "/leaf1/", prefix + "-old/top.json"} {
		if _, err := admin.PutObject(ctx, b, key, bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"leaf1/leaf1_a.json", "leaf1/with space+@.json", "top.json"} {
		if err := save(t, d, snapshot.Record{Name: name}, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	for dir, want := range map[string][]string{
		"":      {"top.json"},
		"leaf1": {"leaf1/leaf1_a.json", "leaf1/with space+@.json"},
	} {
		files, err := d.List(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, f.Name)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("List(%q) = %v, want %v", dir, got, want)
		}
	}
	if err := d.Remove(ctx, "leaf1/with space+@.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.StatObject(ctx, b, prefix+"/leaf1/with space+@.json", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
		t.Errorf("after Remove: %v", err)
	}
}

// TestPrunerNoSuchBucket: retention on a missing bucket fails like a Save.
func TestPrunerNoSuchBucket(t *testing.T) {
	g := sharedGateway(t, false)
	d := open(t, g.target("no-such-bucket-here", ""), g.config(t), nil)
	_, err := d.List(context.Background(), "leaf1")
	wantKind(t, err, fail.Usage, "no-such-bucket-here", "does not exist", "create it")
}

func keysOf(m map[string][]byte) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// TestNoSuchBucket: the fix is the bucket or the target, which no retry makes.
func TestNoSuchBucket(t *testing.T) {
	g := sharedGateway(t, false)
	d := open(t, g.target("cfgsnap-missing", prefix), g.config(t), nil)
	err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
	wantKind(t, err, fail.Usage, "s3://cfgsnap-missing/"+prefix, "bucket cfgsnap-missing does not exist", "aws s3 mb s3://cfgsnap-missing")
}

// TestWrongKeys: a refused key is a trust problem, named with where the key came
// from, and no message shows a secret.
func TestWrongKeys(t *testing.T) {
	g := sharedGateway(t, false)
	b := g.bucket(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, access, secret, say string
	}{
		{"secret", g.access, "wrong-secret-0123456789", "secret key"},
		{"access", "AKNOBODY000", g.secret, "does not know the access key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := option.New()
			c.S3AccessKeyFile = writeFile(t, dir, tc.name+".access", tc.access)
			c.S3SecretKeyFile = writeFile(t, dir, tc.name+".secret", tc.secret)
			d := open(t, g.target(b, prefix), c, nil)
			err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
			wantKind(t, err, fail.Auth, tc.say, c.S3AccessKeyFile)
			_, lerr := d.List(context.Background(), "")
			wantKind(t, lerr, fail.Auth, tc.say)
			for _, e := range []error{err, lerr} {
				if e != nil && (strings.Contains(e.Error(), tc.secret) || strings.Contains(e.Error(), g.secret)) {
					t.Errorf("error shows a secret: %v", e)
				}
			}
			if strings.Contains(d.String(), tc.secret) {
				t.Errorf("String shows a secret: %s", d)
			}
		})
	}
}

// TestUnreachable: nothing listens; that is a delivery problem, retried later.
func TestUnreachable(t *testing.T) {
	c := anyKeys(t)
	addr := freeAddr(t)
	d := open(t, "s3://bucket/p?tls=false&endpoint="+addr, c, nil)
	err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
	wantKind(t, err, fail.Deliver, "cannot reach "+addr)
	_, err = d.List(context.Background(), "")
	wantKind(t, err, fail.Deliver, "cannot reach "+addr)
}

// TestServerRestart: a server that goes away between two snapshots fails that
// Save as a delivery problem; once it is back the same destination delivers.
func TestServerRestart(t *testing.T) {
	g := ownGateway(t, false)
	d, b := fresh(t, g)
	if err := save(t, d, snapshot.Record{Name: "one.json"}, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	g.stop()
	err := save(t, d, snapshot.Record{Name: "two.json"}, []byte("{}"))
	wantKind(t, err, fail.Deliver)
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	if err := save(t, d, snapshot.Record{Name: "two.json"}, []byte("{}")); err != nil {
		t.Fatalf("after the server is back: %v", err)
	}
	if got := g.stored(t, b, prefix); len(got) != 2 {
		t.Errorf("server holds %v", keysOf(got))
	}
}

// TestAllThroughDial points the endpoint at a name that does not resolve and
// sets proxies in the environment: a Save that works went only through dial.
func TestAllThroughDial(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
			t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
			t.Setenv("NO_PROXY", "")
			g := sharedGateway(t, secure)
			b := g.bucket(t)
			var dials atomic.Int32
			var mu sync.Mutex
			var asked []string
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				mu.Lock()
				asked = append(asked, addr)
				mu.Unlock()
				var nd net.Dialer
				return nd.DialContext(ctx, network, g.addr)
			}
			// localhost is in the test certificate; the port is not g's.
			target := "s3://" + b + "/" + prefix + "?endpoint=localhost:1"
			if !secure {
				target = "s3://" + b + "/" + prefix + "?endpoint=cfgsnap-s3.invalid:1&tls=false"
			}
			d := open(t, target, g.config(t), dial)
			if n := dials.Load(); n != 0 {
				t.Fatalf("New dialed %d times", n)
			}
			for _, n := range []string{"a.json", "b.json", "c/d.json"} {
				if err := save(t, d, snapshot.Record{Name: n}, []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := d.List(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			if err := d.Remove(context.Background(), "a.json"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d connections for 3 saves, a list and a remove, to %v", dials.Load(), asked)
			if n := dials.Load(); n < 1 || n > 2 {
				t.Errorf("%d connections for 3 saves, a list and a remove; want them kept alive", n)
			}
			if got := g.stored(t, b, prefix); len(got) != 2 {
				t.Errorf("server holds %v", keysOf(got))
			}
		})
	}
}

// TestTLS checks certificate verification and the two ways tls= can be wrong.
func TestTLS(t *testing.T) {
	secure := sharedGateway(t, true)
	plain := sharedGateway(t, false)
	t.Run("UnknownCA", func(t *testing.T) {
		c := secure.config(t)
		c.CAFile = ""
		d := open(t, secure.target(secure.bucket(t), prefix), c, nil)
		err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
		wantKind(t, err, fail.Auth, "ca-file")
	})
	t.Run("WrongName", func(t *testing.T) {
		// The certificate names 127.0.0.1 and localhost; reach it as 127.0.0.2.
		b := secure.bucket(t)
		_, port, _ := net.SplitHostPort(secure.addr)
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, secure.addr)
		}
		d := open(t, "s3://"+b+"/p?endpoint=127.0.0.2:"+port, secure.config(t), dial)
		err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
		wantKind(t, err, fail.Auth, "certificate")
	})
	t.Run("TLSToPlainServer", func(t *testing.T) {
		target := strings.Replace(plain.target(plain.bucket(t), prefix), "&tls=false", "", 1)
		d := open(t, target, plain.config(t), nil)
		err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
		wantKind(t, err, fail.Usage, "tls=false")
	})
	t.Run("PlainToTLSServer", func(t *testing.T) {
		d := open(t, secure.target(secure.bucket(t), prefix)+"&tls=false", secure.config(t), nil)
		err := save(t, d, snapshot.Record{Name: "a.json"}, []byte("{}"))
		if err == nil {
			t.Fatal("plain HTTP to a TLS server worked")
		}
		t.Logf("%v (kind %d)", err, fail.KindOf(err))
	})
	t.Run("BadCAFile", func(t *testing.T) {
		c := secure.config(t)
		c.CAFile = writeFile(t, t.TempDir(), "ca.pem", "not a certificate")
		u, _ := url.Parse(secure.target("bkt", ""))
		_, err := New(u, c, nil)
		wantKind(t, err, fail.Auth, "holds no PEM certificate")
		c.CAFile = filepath.Join(t.TempDir(), "missing.pem")
		_, err = New(u, c, nil)
		wantKind(t, err, fail.Auth, "cannot read ca-file")
	})
}

// TestCredentialSources checks each source, their order, and that the keys work.
func TestCredentialSources(t *testing.T) {
	g := sharedGateway(t, false)
	b := g.bucket(t)
	dir := t.TempDir()
	u, _ := url.Parse(g.target(b, prefix))
	clean := func(t *testing.T) {
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"} {
			t.Setenv(k, "")
		}
		t.Setenv("HOME", t.TempDir())
	}
	works := func(t *testing.T, c *option.Config, from string) {
		t.Helper()
		d, err := New(u, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if !strings.Contains(d.creds, from) {
			t.Errorf("keys from %q, want %q", d.creds, from)
		}
		if err := save(t, d, snapshot.Record{Name: "x.json"}, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	shared := "# comment\n[other]\naws_access_key_id = AKOTHER\naws_secret_access_key = nope\n\n" +
		"[default]\r\naws_access_key_id=" + g.access + "\r\n; comment\r\naws_secret_access_key = " + g.secret + "\r\n" +
		"[ops]\naws_access_key_id = " + g.access + "\naws_secret_access_key = " + g.secret + "\n" +
		"[sso]\nsso_role_name = x\ncredential_process = /bin/false\n"
	sharedPath := writeFile(t, dir, "credentials", shared)

	t.Run("OptionFiles", func(t *testing.T) {
		clean(t)
		// Option files win over the environment.
		t.Setenv("AWS_ACCESS_KEY_ID", "AKENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
		works(t, g.config(t), "s3-access-key-file")
	})
	t.Run("Environment", func(t *testing.T) {
		clean(t)
		t.Setenv("AWS_ACCESS_KEY_ID", g.access)
		t.Setenv("AWS_SECRET_ACCESS_KEY", g.secret)
		// The environment wins over the shared file.
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", writeFile(t, t.TempDir(), "c", "[default]\naws_access_key_id=AKX\naws_secret_access_key=y\n"))
		works(t, option.New(), "$AWS_ACCESS_KEY_ID")
	})
	t.Run("SharedFileDefault", func(t *testing.T) {
		clean(t)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", sharedPath)
		works(t, option.New(), "profile default of "+sharedPath)
	})
	t.Run("SharedFileProfile", func(t *testing.T) {
		clean(t)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", sharedPath)
		t.Setenv("AWS_PROFILE", "ops")
		works(t, option.New(), "profile ops")
	})
	t.Run("HomeCredentials", func(t *testing.T) {
		clean(t)
		home := os.Getenv("HOME")
		if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(home, ".aws"), "credentials", shared)
		works(t, option.New(), filepath.Join(home, ".aws", "credentials"))
	})
	t.Run("SessionToken", func(t *testing.T) {
		clean(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AK")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "S")
		t.Setenv("AWS_SESSION_TOKEN", "TOKEN")
		k, err := loadCreds(option.New(), os.Getenv)
		if err != nil || k.token != "TOKEN" {
			t.Fatalf("token %q, %v", k.token, err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		clean(t)
		newErr := func(c *option.Config) error {
			_, err := New(u, c, nil)
			return err
		}
		wantKind(t, newErr(option.New()), fail.Auth, "no S3 credentials", "s3-access-key-file", "AWS_ACCESS_KEY_ID", "~/.aws/credentials")

		c := option.New()
		c.S3AccessKeyFile = writeFile(t, dir, "only-access", "AK")
		wantKind(t, newErr(c), fail.Usage, "set both")
		c.S3SecretKeyFile = filepath.Join(dir, "missing-secret")
		wantKind(t, newErr(c), fail.Auth, "cannot read s3-secret-key-file", "missing-secret")
		c.S3SecretKeyFile = writeFile(t, dir, "empty-secret", "\n")
		wantKind(t, newErr(c), fail.Auth, "is empty")

		t.Setenv("AWS_ACCESS_KEY_ID", "AK")
		wantKind(t, newErr(option.New()), fail.Usage, "AWS_SECRET_ACCESS_KEY", "set both")
		t.Setenv("AWS_ACCESS_KEY_ID", "")

		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "nope"))
		wantKind(t, newErr(option.New()), fail.Auth, "cannot read the shared credentials file")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", sharedPath)
		t.Setenv("AWS_PROFILE", "absent")
		wantKind(t, newErr(option.New()), fail.Auth, "no profile [absent]", "AWS_PROFILE")
		t.Setenv("AWS_PROFILE", "sso")
		wantKind(t, newErr(option.New()), fail.Auth, "profile sso", "credential_process")
	})
}

// TestParse checks target URLs before anything connects.
func TestParse(t *testing.T) {
	c := anyKeys(t)
	for _, tc := range []struct{ target, bucket, prefix, endpoint, region string }{
		{"s3://bucket", "bucket", "", DefaultEndpoint, ""},
		{"s3://bucket/", "bucket", "", DefaultEndpoint, ""},
		{"s3://bucket/srl/leaf/", "bucket", "srl/leaf/", DefaultEndpoint, ""},
		{"s3://my.bucket/srl?region=eu-west-1", "my.bucket", "srl/", DefaultEndpoint, "eu-west-1"},
		{"s3://b-1/x?endpoint=10.0.0.5:9000&tls=false", "b-1", "x/", "10.0.0.5:9000", ""},
		{"s3://b-1/x?endpoint=[2001:db8::1]:9000", "b-1", "x/", "[2001:db8::1]:9000", ""},
		{"s3://b-1/x?endpoint=minio.lab", "b-1", "x/", "minio.lab", ""},
	} {
		u, _ := url.Parse(tc.target)
		d, err := New(u, c, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.target, err)
			continue
		}
		if d.bucket != tc.bucket || d.prefix != tc.prefix || d.endpoint != tc.endpoint {
			t.Errorf("%s: bucket %q prefix %q endpoint %q", tc.target, d.bucket, d.prefix, d.endpoint)
		}
		if d.String() != tc.target {
			t.Errorf("String() = %q, want %q", d.String(), tc.target)
		}
	}
	for _, tc := range []struct{ target, say string }{
		{"s3://AKIAEXAMPLE@bucket/p", "never from the URL"},
		{"s3://AKIAEXAMPLE:sekrit@bucket/p", "never from the URL"},
		{"s3://bucket:9000/p", "?endpoint=host:port"},
		{"s3:///p", "names no bucket"},
		{"s3://ab/p", "not a valid bucket name"},
		{"s3://bucket..x/p", "not a valid bucket name"},
		{"s3://bucket/a/../b", `"..`},
		{"s3://bucket/a//b", "empty"},
		{"s3://bucket/.", `"."`},
		{"s3://bucket/a%FFb", "UTF-8"}, // S3 keys are UTF-8: refused before anything is queued
		{"s3://bucket/p?endpoint=https://host:9000", "without a scheme"},
		{"s3://bucket/p?endpoint=host:99999", "port"},
		{"s3://bucket/p?endpoint=host/path", "without a path"},
		{"s3://bucket/p?tls=maybe", "true or false"},
		{"s3://bucket/p?tls=false&tls=true", "once"},
		{"s3://bucket/p?regoin=x", `unknown parameter "regoin"`},
		{"s3://bucket/p?region=EU%20West", "region"},
		{"s3://bucket/p#frag", "s3://bucket/prefix"},
		{"sftp://host/p", "not an s3:// URL"},
	} {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if Check(u) == nil {
			t.Errorf("%s: Check accepted it", tc.target)
		}
		_, err = New(u, c, nil)
		if err == nil {
			t.Errorf("%s: accepted", tc.target)
			continue
		}
		wantKind(t, err, fail.Usage, tc.say)
		if err != nil && (strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "AKIAEXAMPLE")) {
			t.Errorf("error shows user information: %v", err)
		}
	}
}

func TestLocation(t *testing.T) {
	c := anyKeys(t)
	for target, want := range map[string]string{
		"s3://bkt/srl?endpoint=10.0.0.5:9000&tls=false": "s3://bkt/srl/leaf1/x.json?endpoint=10.0.0.5:9000&tls=false",
		"s3://bkt":      "s3://bkt/leaf1/x.json",
		"s3://bkt/a/b/": "s3://bkt/a/b/leaf1/x.json",
	} {
		u, _ := url.Parse(target)
		d, err := New(u, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := destination.Location(destination.WithRetry(d, 1, 0, t.Logf), snapshot.Record{Name: "leaf1/x.json"}); got != want {
			t.Errorf("%s: Location %q, want %q", target, got, want)
		}
	}
}

// TestExactReader: the body is exactly the record's size, or the upload fails.
func TestExactReader(t *testing.T) {
	ctx := context.Background()
	read := func(data string, size int64) ([]byte, error) {
		e := &exactReader{ctx: ctx, r: strings.NewReader(data), size: size, left: size}
		// Read as the HTTP client does: up to the content length, no further.
		buf := make([]byte, size)
		_, err := io.ReadFull(e, buf)
		return buf, err
	}
	if got, err := read("hello", 5); err != nil || string(got) != "hello" {
		t.Errorf("exact: %q, %v", got, err)
	}
	if _, err := read("hello", 6); err == nil || !strings.Contains(err.Error(), "5 bytes instead of 6") {
		t.Errorf("short: %v", err)
	}
	if _, err := read("hello!", 5); err == nil || !strings.Contains(err.Error(), "more than 5 bytes") {
		t.Errorf("long: %v", err)
	}
	e := &exactReader{ctx: ctx, r: strings.NewReader("hello"), size: 5, left: 5}
	if err := e.detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Read(make([]byte, 5)); !errors.Is(err, errDetached) {
		t.Errorf("read after detach: %v", err)
	}
}

// TestLargeStreams saves 50 MB from a reader that makes its bytes as it goes,
// and checks that memory stays far below the object's size: the object is never
// held in memory, by cfgsnap or minio-go.
func TestLargeStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB upload")
	}
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			g := sharedGateway(t, secure)
			d, b := fresh(t, g)
			const size = 50 << 20
			h := sha256.New()
			io.Copy(h, generated(size))
			digest := hex.EncodeToString(h.Sum(nil))
			// A warm-up Save, so that connection and TLS set-up are not counted.
			if err := save(t, d, snapshot.Record{Name: "warm.json"}, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := d.Save(context.Background(), snapshot.Record{Name: "big.json", Size: size, SHA256: digest}, generated(size))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("50 MiB in %v (%.0f MB/s), %.1f MiB allocated in all", took.Round(time.Millisecond), size/took.Seconds()/1e6, float64(alloc)/(1<<20))
			if alloc > 16<<20 {
				t.Errorf("saving 50 MiB allocated %d MiB: the object is being buffered", alloc>>20)
			}
			f, err := os.Open(filepath.Join(g.dir, b, prefix, "big.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h.Reset()
			io.Copy(h, f)
			if got := hex.EncodeToString(h.Sum(nil)); got != digest {
				t.Errorf("stored SHA-256 %s, want %s", got, digest)
			}
		})
	}
}

// generated is size deterministic pseudo-random bytes, made as they are read.
func generated(size int64) io.Reader {
	return io.LimitReader(mrand.NewChaCha8([32]byte{1, 2, 3}), size)
}

// BenchmarkSave50MB is a 50 MiB snapshot over plain HTTP to the local gateway.
func BenchmarkSave50MB(b *testing.B) {
	g := sharedGateway(b, false)
	d, _ := fresh(b, g)
	const size = 50 << 20
	h := sha256.New()
	io.Copy(h, generated(size))
	digest := hex.EncodeToString(h.Sum(nil))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Save(context.Background(), snapshot.Record{Name: "big.json", Size: size, SHA256: digest}, generated(size)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmptyThenMore: an empty snapshot must not spoil the connection for the
// next one. minio-go sent an empty object over plain HTTP as one signed empty
// chunk, which versitygw left unread and then answered as a request of its own
// (400 Bad Request); the next PUT on that connection broke mid-send.
func TestEmptyThenMore(t *testing.T) {
	for _, secure := range []bool{false, true} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("tls=%t/stream=%t", secure, stream), func(t *testing.T) {
				g := sharedGateway(t, secure)
				b := g.bucket(t)
				var replies replyLog
				var d destination.Destination = open(t, g.target(b, prefix), g.config(t), replies.dial)
				if stream {
					d = streamOnly{d}
				}
				want := map[string][]byte{}
				for i := range 5 {
					empty, full := fmt.Sprintf("e%d.json", i), fmt.Sprintf("f%d.json", i)
					if err := save(t, d, snapshot.Record{Name: empty}, nil); err != nil {
						t.Fatalf("saving %s: %v", empty, err)
					}
					// Time for a stray reply to arrive before the connection is reused.
					time.Sleep(20 * time.Millisecond)
					if err := save(t, d, snapshot.Record{Name: full}, []byte(`{"n":1}`)); err != nil {
						t.Fatalf("saving %s after an empty one: %v", full, err)
					}
					want[prefix+"/"+empty], want[prefix+"/"+full] = []byte{}, []byte(`{"n":1}`)
				}
				if n := replies.count("400 Bad Request"); n > 0 {
					t.Errorf("the server answered %d requests cfgsnap never made (400 Bad Request)", n)
				}
				got := g.stored(t, b, "")
				if len(got) != len(want) {
					t.Fatalf("stored %d objects, want %d", len(got), len(want))
				}
				for k, v := range want {
					if !bytes.Equal(got[k], v) {
						t.Errorf("%s = %q, want %q", k, got[k], v)
					}
				}
			})
		}
	}
}

// replyLog dials plain TCP and keeps what the server sends back, through TLS
// too (its records carry the status lines in the clear only without TLS, so
// over TLS it counts nothing and the stored objects are the check).
type replyLog struct {
	mu  sync.Mutex
	got bytes.Buffer
}

func (l *replyLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &loggedConn{Conn: c, log: l}, nil
}

func (l *replyLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.got.Bytes(), []byte(s))
}

type loggedConn struct {
	net.Conn
	log *replyLog
}

func (c *loggedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.log.mu.Lock()
	c.log.got.Write(p[:n])
	c.log.mu.Unlock()
	return n, err
}
