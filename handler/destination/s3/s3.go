// Package s3 is the destination for S3 and S3-compatible object stores:
// s3://bucket/prefix?endpoint=host:port&region=REGION&tls=false.
//
// Each snapshot becomes the object prefix/NAME, written with one PUT of its known
// size, streamed from the spool (no copy in memory). A single PUT is atomic: the
// object appears whole or not at all, and the old one stays until the new one is
// complete. There is no multipart upload, so nothing can be left half-uploaded
// (and billed) when a Save fails; S3 takes 5 GiB in one PUT, far beyond any
// configuration.
//
// The server checks the bytes against a SHA-256 sent with them, and stores
// nothing if they differ (BadDigest): the record's SHA-256, so that the object
// is the configuration cfgsnap captured; for a record without one, a SHA-256
// of the spool file read once before sending; for a reader that cannot be
// read twice, over TLS, a SHA-256 trailer computed while sending. Without TLS
// such a reader goes in signed 64 KiB chunks, each checked by the server (the
// only check there: minio-go frames signed trailers in a way servers that
// follow AWS, versitygw among them, refuse). The record's host,
// user, last-change, commits and SHA-256 go along as x-amz-meta-* metadata.
//
// Query parameters: endpoint (host[:port], default s3.amazonaws.com), region
// (default: asked of the server), tls (default true; false for labs only: keys
// still never cross the network, but the configuration does, in the clear).
// Buckets are addressed path-style (endpoint/bucket/key) on every endpoint but
// AWS, Google and Aliyun, which get virtual-host style (bucket.endpoint/key),
// which they expect (AWS is retiring path style); a bucket name with dots stays
// path-style over TLS there too, as no certificate covers it. Path style needs
// no DNS name per bucket, so it works with an IP address, a lab gateway or an
// appliance (minio-go's BucketLookupAuto).
//
// Credentials come, in this order, from the files of options s3-access-key-file
// and s3-secret-key-file, from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY
// (with $AWS_SESSION_TOKEN), or from the shared credentials file
// ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials; profile $AWS_PROFILE,
// else default). Never from the URL, which shows in the event handler's state.
// The shared file's credential_process and SSO settings are not used: they would
// run programs or reach the network outside the management namespace.
//
// It is a destination.Pruner, so retention (keep, keep-days) works on it: List
// lists the objects directly below prefix/dir (delimiter "/"), Remove deletes one.
//
// All network I/O, DNS included, goes through the dial function given to New, so
// it happens inside the switch's management namespace; proxies from the
// environment are ignored for the same reason.
package s3

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/secret"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// DefaultEndpoint is AWS S3; minio-go turns it into the region's endpoint.
const DefaultEndpoint = "s3.amazonaws.com"

// maxSinglePut is the largest object S3 takes in one PUT.
const maxSinglePut = 5 << 30

// Destination stores snapshots as objects below a prefix of a bucket. It
// connects on the first request and keeps its connections until Close.
type Destination struct {
	url       url.URL // the target, for String and Location
	bucket    string
	prefix    string // "" or ending in "/"
	endpoint  string
	secure    bool
	creds     string // where the keys came from, for messages: never the keys
	client    *minio.Client
	transport *http.Transport
}

var (
	_ destination.Pruner  = (*Destination)(nil)
	_ destination.Locator = (*Destination)(nil)
)

// New returns the destination for an s3:// URL. c supplies the credential files
// (s3-access-key-file, s3-secret-key-file), ca-file and connect-timeout; dial
// makes every connection (nil: a plain net.Dialer). New reads the credentials
// and CA file but does not connect. Its errors are fail.Usage for a bad URL and
// fail.Auth for missing or unreadable credentials or CA certificates.
func New(u *url.URL, c *option.Config, dial destination.Dial) (*Destination, error) {
	t, err := parse(u)
	if err != nil {
		return nil, err
	}
	shown := t.url.String()
	cr, err := loadCreds(c, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	tr, err := newTransport(t.tls, c.CAFile, c.ConnectTimeout, dial)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", shown, err)
	}
	client, err := minio.New(t.endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cr.id, cr.secret, cr.token),
		Secure:       t.tls,
		Transport:    tr,
		Region:       t.region,
		BucketLookup: minio.BucketLookupAuto,
		// Needed for x-amz-checksum-* on a PUT: minio-go refuses them without.
		TrailingHeaders: true,
		// One try per request: destination.WithRetry retries a whole Save, with
		// pauses the report can account for.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fail.New(fail.Usage, "%s: endpoint %q: %v: write endpoint=host:port", shown, t.endpoint, err)
	}
	// Dual-stack AWS names resolve to IPv6 first, which management networks
	// often do not route; the namespace's dialer tries addresses one by one.
	client.SetS3EnableDualstack(false)
	return &Destination{
		url: t.url, bucket: t.bucket, prefix: t.prefix, endpoint: t.endpoint, secure: t.tls,
		creds: cr.from, client: client, transport: tr,
	}, nil
}

// Kind describes s3:// targets to package target's registry, which runs
// Check before anything is queued.
func Kind() destination.Kind {
	return destination.Kind{
		Name:     "s3",
		Schemes:  []string{"s3"},
		Forms:    []string{"s3://bucket/prefix[?endpoint=host:port&region=R&tls=false]"},
		Check:    Check,
		Encrypts: true,
		New: func(u *url.URL, env destination.Env) (destination.Destination, error) {
			return destination.Made(New(u, env.Config, env.Dial))
		},
	}
}

// Check validates an s3:// URL as New does, without reading credentials or
// files, so that a bad target is refused before anything is queued. Its errors
// are fail.Usage.
func Check(u *url.URL) error {
	_, err := parse(u)
	return err
}

// String is the target URL. It holds no secret: keys never come from the URL.
func (d *Destination) String() string { return d.url.String() }

// Location is the object's URL in the target's form: s3://bucket/prefix/NAME
// with the target's endpoint, region and tls.
func (d *Destination) Location(rec snapshot.Record) string {
	u := d.url
	u.Path = "/" + d.key(rec.Name)
	u.RawPath = ""
	return u.String()
}

// Close drops idle connections.
func (d *Destination) Close() error {
	d.transport.CloseIdleConnections()
	return nil
}

func (d *Destination) key(name string) string { return d.prefix + name }

// Save uploads r as the object prefix/rec.Name in one PUT of rec.Size bytes,
// with a SHA-256 the server verifies and the record as metadata.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) (err error) {
	defer func() {
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			err = fail.As(fail.Deliver, fmt.Errorf("%s: saving %s: %w", d, rec.Name, err))
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validName(rec.Name) {
		return fail.New(fail.Internal, "object name %q is not a clean relative name", rec.Name)
	}
	if rec.Size < 0 || rec.Size > maxSinglePut {
		return fail.New(fail.Internal, "size %d is outside what one S3 PUT takes (0 to 5 GiB)", rec.Size)
	}
	opts := minio.PutObjectOptions{
		UserMetadata:     metadata(rec),
		ContentType:      contentType(rec.Name),
		DisableMultipart: true,
	}
	digest, err := d.digest(rec, r)
	if err != nil {
		return err
	}
	if digest == nil && rec.Size == 0 {
		empty := sha256.Sum256(nil)
		digest = empty[:]
	}
	switch {
	case digest != nil:
		// Sent before the body: the server stores the object only if its
		// SHA-256 matches. The body then goes as it is, never in signed
		// chunks: versitygw keeps their "Content-Encoding: aws-chunked" on
		// the object, and leaves an empty one unread on the connection, which
		// it later answers as a request of its own.
		opts.UserMetadata["x-amz-checksum-sha256"] = base64.StdEncoding.EncodeToString(digest)
		opts.DisableContentSha256 = true
	case d.secure:
		// A SHA-256 computed while sending, in a trailer the server checks.
		opts.Checksum = minio.ChecksumSHA256
	default:
		// No trailer without TLS: minio-go frames signed trailers as
		// "name:value\n\r\n" where AWS has "name:value\r\n", and servers that
		// follow AWS (versitygw) refuse every upload. The streaming
		// signature still makes the server check each 64 KiB chunk's SHA-256.
	}
	body := &exactReader{ctx: ctx, r: r, size: rec.Size, left: rec.Size}
	if rec.Size == 0 {
		// minio-go sends no body for an empty object and never reads r.
		if err := body.probe(); err != nil {
			return err
		}
	}
	_, err = d.client.PutObject(ctx, d.bucket, d.key(rec.Name), body, rec.Size, opts)
	// The transport may still be reading r after PutObject returns (it sends the
	// body from its own goroutine); after detach it no longer touches r, which the
	// caller may rewind for a retry or close.
	if rerr := body.detach(); rerr != nil {
		return rerr
	}
	if err != nil {
		// A server that refused the upload before reading all of it may
		// take the rest for a new request on the same connection: start
		// the next request on a fresh one.
		d.transport.CloseIdleConnections()
		if code(err) == "SignatureDoesNotMatch" && d.keyWorks(ctx) {
			return fail.New(fail.Deliver, "the server found the upload altered on the way (a chunk's signature did not match) and stored nothing: the next try sends it again; if this recurs, something between the switch and %s changes data: use TLS", d.endpoint)
		}
		return d.classify(err, "writing")
	}
	return nil
}

// keyWorks tells a wrong secret key from an upload whose body was altered on the
// way, which the server reports alike (SignatureDoesNotMatch): it makes a small
// request without a body. A refusal for a reason other than the signature
// (AccessDenied to a key that may only write) still shows the key is right.
func (d *Destination) keyWorks(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for o := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: d.prefix, MaxKeys: 1}) {
		c := code(o.Err)
		return o.Err == nil || c != "" && c != "SignatureDoesNotMatch"
	}
	return true
}

// digest is the SHA-256 of the snapshot: the record's, else computed from r when
// r can be read twice (a spool file), else nil. A digest computed here is
// checked by the server against the bytes sent next, so a file that changes
// between the two reads is refused, not stored.
func (d *Destination) digest(rec snapshot.Record, r io.Reader) ([]byte, error) {
	if rec.SHA256 != "" {
		sum, err := hex.DecodeString(rec.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fail.New(fail.Internal, "the record's sha256 %q is not 64 hex digits", rec.SHA256)
		}
		return sum, nil
	}
	seeker, ok := r.(io.Seeker)
	if !ok {
		return nil, nil
	}
	start, err := seeker.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, nil // not really seekable (a pipe): hash while sending
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, rec.Size+1))
	if err != nil {
		return nil, fmt.Errorf("reading the snapshot: %w", err)
	}
	if n != rec.Size {
		return nil, fmt.Errorf("snapshot changed while it was sent: %d bytes instead of %d", n, rec.Size)
	}
	if _, err := seeker.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding the snapshot after hashing it: %w", err)
	}
	return h.Sum(nil), nil
}

// List returns the objects directly below prefix/dir, not those further down,
// nor those named like a temporary file (destination.IsTempName): S3 has none
// of its own, but a copy of a file target's folder may.
func (d *Destination) List(ctx context.Context, dir string) ([]destination.File, error) {
	dir = strings.Trim(dir, "/")
	if dir != "" && !validName(dir) {
		return nil, fail.New(fail.Internal, "%s: folder %q is not a clean relative name", d, dir)
	}
	p := d.prefix
	if dir != "" {
		p += dir + "/"
	}
	var files []destination.File
	for o := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: p}) {
		if o.Err != nil {
			return nil, fail.As(fail.Deliver, fmt.Errorf("%s: listing %s: %w", d, dir, d.classify(o.Err, "listing")))
		}
		// A key ending in "/" is a subfolder (a common prefix), or the empty
		// marker object some tools create for a folder: neither is a snapshot.
		// Nor is what looks like another destination's temporary file.
		if strings.HasSuffix(o.Key, "/") || !strings.HasPrefix(o.Key, d.prefix) || destination.IsTempName(path.Base(o.Key)) {
			continue
		}
		files = append(files, destination.File{
			Name:    strings.TrimPrefix(o.Key, d.prefix),
			Size:    o.Size,
			ModTime: o.LastModified,
		})
	}
	return files, nil
}

// Remove deletes the object prefix/name; a missing one is not an error (S3
// answers a DELETE of a missing key with success anyway).
func (d *Destination) Remove(ctx context.Context, name string) error {
	if !validName(name) {
		return fail.New(fail.Internal, "%s: object name %q is not a clean relative name", d, name)
	}
	err := d.client.RemoveObject(ctx, d.bucket, d.key(name), minio.RemoveObjectOptions{})
	if err != nil && code(err) != "NoSuchKey" {
		return fail.As(fail.Deliver, fmt.Errorf("%s: removing %s: %w", d, name, d.classify(err, "deleting")))
	}
	return nil
}

// validName accepts the names package snapshot makes: relative, slash-separated,
// no empty, "." or ".." parts, valid UTF-8 (as S3 keys must be). fs.ValidPath
// is that, but for its "." (the root), which names no object.
func validName(name string) bool { return name != "." && fs.ValidPath(name) }

func contentType(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/octet-stream"
}

// target is a parsed s3:// URL.
type target struct {
	url      url.URL
	bucket   string
	prefix   string
	endpoint string
	region   string
	tls      bool
}

var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// parse checks an s3:// URL. Every error is fail.Usage and names the fix.
func parse(u *url.URL) (target, error) {
	t := target{url: *u, endpoint: DefaultEndpoint, tls: true}
	shown := *u
	shown.User = nil
	if u.Scheme != "s3" {
		return t, fail.New(fail.Usage, "target %s is not an s3:// URL", shown.Redacted())
	}
	if u.User != nil {
		// The access key is not a password, but whoever writes one here will
		// write the secret next: refuse both, they would show in the instance state.
		return t, fail.New(fail.Usage, "target %s holds user information: S3 keys come from options s3-access-key-file and s3-secret-key-file, $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials, never from the URL; remove the part before @", shown.String())
	}
	if u.Opaque != "" || u.Fragment != "" {
		return t, fail.New(fail.Usage, "target %s: write s3://bucket/prefix", u.Redacted())
	}
	t.bucket = u.Host
	if t.bucket == "" {
		return t, fail.New(fail.Usage, "target %s names no bucket: write s3://bucket/prefix", u.Redacted())
	}
	if strings.Contains(t.bucket, ":") {
		return t, fail.New(fail.Usage, "target %s: %q is not a bucket name; a server's host and port go in ?endpoint=host:port", u.Redacted(), t.bucket)
	}
	if err := s3utils.CheckValidBucketName(t.bucket); err != nil {
		return t, fail.New(fail.Usage, "target %s: %q is not a valid bucket name (%v)", u.Redacted(), t.bucket, err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if !validName(p) || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return t, fail.New(fail.Usage, "target %s: the prefix %q has empty, \".\" or \"..\" parts, control characters or bytes that are not UTF-8: write s3://bucket/folder/folder", u.Redacted(), p)
		}
		t.prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return t, fail.New(fail.Usage, "target %s: malformed query (%v): write ?endpoint=host:port&region=REGION&tls=false", u.Redacted(), err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return t, fail.New(fail.Usage, "target %s: %s is given %d times; give it once", u.Redacted(), k, len(v))
		}
		val := v[0]
		switch k {
		case "endpoint":
			if err := checkEndpoint(val); err != nil {
				return t, fail.New(fail.Usage, "target %s: endpoint %q: %v", u.Redacted(), val, err)
			}
			t.endpoint = val
		case "region":
			if !regionRE.MatchString(val) {
				return t, fail.New(fail.Usage, "target %s: region %q is not a region name such as eu-west-1", u.Redacted(), val)
			}
			t.region = val
		case "tls":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return t, fail.New(fail.Usage, "target %s: tls=%q: want true or false", u.Redacted(), val)
			}
			t.tls = b
		default:
			return t, fail.New(fail.Usage, "target %s: unknown parameter %q: an s3 target takes endpoint, region and tls", u.Redacted(), k)
		}
	}
	return t, nil
}

// checkEndpoint accepts host or host:port, nothing else.
func checkEndpoint(ep string) error {
	if strings.Contains(ep, "://") {
		return errors.New("write host:port without a scheme; TLS is on unless the target says tls=false")
	}
	p, err := url.Parse("//" + ep)
	if err != nil || p.Host != ep || p.Hostname() == "" || p.User != nil {
		return errors.New("write host or host:port, without a path")
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	} else if strings.HasSuffix(ep, ":") {
		return errors.New("empty port")
	}
	return nil
}

// newTransport is the HTTP transport of httpx (dial only, no proxy), with
// S3's own settings. Errors are fail.Auth, as for every credential problem.
func newTransport(secure bool, caFile string, timeout time.Duration, dial destination.Dial) (*http.Transport, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var roots *x509.CertPool
	if secure {
		var err error
		if roots, err = httpx.Roots(caFile); err != nil {
			return nil, fail.New(fail.Auth, "%w", err)
		}
	}
	tr := httpx.Transport(dial, timeout, roots)
	tr.MaxIdleConnsPerHost = 2
	tr.IdleConnTimeout = 60 * time.Second
	// Configurations are sent as they are; compressed answers only cost.
	tr.DisableCompression = true
	return tr, nil
}

// exactReader passes on exactly size bytes of r and fails, instead of ending,
// when r ends early or holds more: a snapshot that changed while it was sent
// must not be stored. Its failure, not the transport's account of it, is what
// Save reports. It stops at the next read once ctx is done.
type exactReader struct {
	ctx        context.Context
	mu         sync.Mutex
	r          io.Reader
	size, left int64
	err        error
	detached   bool
}

var errDetached = errors.New("the upload is over")

func (e *exactReader) Read(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.detached:
		return 0, errDetached
	case e.err != nil:
		return 0, e.err
	case e.ctx.Err() != nil:
		e.err = e.ctx.Err()
		return 0, e.err
	case e.left == 0:
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err != nil && err != io.EOF:
		e.err = fmt.Errorf("reading the snapshot: %w", err)
		return 0, e.err
	case err == io.EOF && e.left > 0:
		e.err = fmt.Errorf("snapshot changed while it was sent: %d bytes instead of %d", e.size-e.left, e.size)
		return 0, e.err
	case e.left == 0:
		// Look for more now: the HTTP client stops reading at the content
		// length, and would otherwise send a prefix of a grown file as whole.
		if extra := e.probe(); extra != nil {
			e.err = extra
			return 0, e.err
		}
	}
	return n, nil
}

// probe reports an error unless r is at its end.
func (e *exactReader) probe() error {
	var one [1]byte
	for range 100 {
		n, err := e.r.Read(one[:])
		switch {
		case n > 0:
			return fmt.Errorf("snapshot changed while it was sent: more than %d bytes", e.size)
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("reading the snapshot: %w", err)
		}
	}
	return fmt.Errorf("reading the snapshot: %w", io.ErrNoProgress)
}

// detach ends the reader's use of r (waiting for a read under way) and returns
// the reader's own failure, if any.
func (e *exactReader) detach() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.detached = true
	return e.err
}

// metaLimit caps each metadata value: S3 allows 2 KB of user metadata in all.
const metaLimit = 256

// metadata is the record as x-amz-meta-* values. Values come from other people
// (user names, hosts), and S3 metadata must be ASCII: anything else is
// RFC 2047-encoded, as S3 itself returns non-ASCII metadata.
func metadata(rec snapshot.Record) map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			m[k] = asciiValue(v)
		}
	}
	set("host", rec.Host)
	set("user", rec.User)
	if !rec.LastChange.IsZero() {
		set("last-change", rec.LastChange.UTC().Format(time.RFC3339Nano))
	}
	set("commits", commitList(rec.Commits))
	if rec.Unsettled {
		set("possibly-included", commitList(rec.Possibly)+" (unsettled read)")
	}
	set("sha256", rec.SHA256)
	return m
}

func commitList(cs []snapshot.Commit) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = strconv.FormatInt(c.ID, 10)
	}
	s := strings.Join(ids, ",")
	if len(s) > metaLimit {
		// A long backlog coalesced into one snapshot: its range says enough.
		s = fmt.Sprintf("%s..%s (%d commits)", ids[0], ids[len(ids)-1], len(ids))
	}
	return s
}

// asciiValue returns v if it is printable ASCII, else its RFC 2047
// Q-encoding (as S3 itself returns non-ASCII metadata, and S3 tools decode),
// cut to metaLimit bytes. A tab becomes a space first: RFC 2047 leaves tabs
// as they are, and SigV4 signs a tab in a header as a space anyway.
func asciiValue(v string) string {
	v = strings.ReplaceAll(v, "\t", " ")
	if len(v) > metaLimit {
		v = v[:metaLimit]
	}
	enc := mime.QEncoding.Encode("UTF-8", v) // v itself when it is printable ASCII
	for len(enc) > metaLimit {
		v = v[:len(v)/2]
		enc = mime.QEncoding.Encode("UTF-8", v)
	}
	return enc
}

// code is the S3 error code in err's chain, "" if none.
func code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

// classify gives an S3 or network error its kind and the fix; what is the
// request ("writing", "listing", "deleting"), for the message.
func (d *Destination) classify(err error, what string) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter: versitygw
			return fail.New(fail.Auth, "the server does not know the access key from %s (%s): fix the key there", d.creds, er.Code)
		case "SignatureDoesNotMatch":
			return fail.New(fail.Auth, "the server refused the secret key from %s (%s): fix the secret key there", d.creds, er.Code)
		case "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return fail.New(fail.Auth, "the server refused the session token from %s (%s): renew the credentials there", d.creds, er.Code)
		case "AccessDenied", "AllAccessDisabled", "AccountProblem":
			return fail.New(fail.Auth, "the server denied %s s3://%s/%s with the key from %s (%s): allow s3:PutObject, s3:ListBucket and s3:DeleteObject on it for that key", what, d.bucket, d.prefix, d.creds, er.Code)
		case "RequestTimeTooSkewed":
			return fail.New(fail.Auth, "the server refused the request because the switch's clock differs from its own by too much (%s): set the clock, e.g. with NTP", er.Code)
		case "NoSuchBucket":
			// Usage, not Deliver: no retry can create the bucket; the snapshot
			// stays spooled until someone does, or fixes the target.
			return fail.New(fail.Usage, "bucket %s does not exist at %s: create it (aws s3 mb s3://%s) or fix the target", d.bucket, d.endpoint, d.bucket)
		case "AuthorizationHeaderMalformed", "InvalidRegion", "PermanentRedirect", "IllegalLocationConstraintException":
			if er.Region != "" {
				return fail.New(fail.Usage, "bucket %s is in region %s (%s): add region=%s to the target", d.bucket, er.Region, er.Code, er.Region)
			}
			return fail.New(fail.Usage, "the server refused the region (%s: %s): set the bucket's region with region=REGION in the target", er.Code, er.Message)
		case "BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest", "XAmzContentChecksumMismatch":
			return fail.New(fail.Deliver, "the server received other bytes than the snapshot's SHA-256 says (%s: %s), and stored nothing: the next try sends it again", er.Code, er.Message)
		}
		if er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden {
			return fail.New(fail.Auth, "the server refused %s with the key from %s: %s (%s, HTTP %d): check the key and its permissions", what, d.creds, er.Message, er.Code, er.StatusCode)
		}
		return fail.New(fail.Deliver, "%s failed: %s (%s, HTTP %d)", what, er.Message, er.Code, er.StatusCode)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fail.As(fail.Deliver, fmt.Errorf("%s %s was cut short: %w", what, d.endpoint, err))
	}
	switch cert := httpx.CertError(d.endpoint, err); {
	case cert != nil:
		return cert
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fail.New(fail.Usage, "%s speaks plain HTTP: add tls=false to the target (for labs only; configurations then cross the network in the clear)", d.endpoint)
	}
	hint := "check the endpoint, the network and that the server runs"
	if !d.secure {
		hint += ", and remove tls=false if it serves HTTPS"
	}
	return fail.As(fail.Deliver, fmt.Errorf("cannot reach %s: %w: %s", d.endpoint, err, hint))
}

// keys is one set of S3 credentials and where it came from.
type keys struct {
	id, secret, token string
	from              string // for messages: a file, a variable, a profile
}

// noKeys is the hint every credential error ends with.
const noKeys = "set options s3-access-key-file and s3-secret-key-file, or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials"

// loadCreds finds the credentials: option files, then the environment, then the
// shared credentials file. Errors are fail.Usage for half-given settings and
// fail.Auth when no usable keys are found; none holds a key.
func loadCreds(c *option.Config, getenv func(string) string) (keys, error) {
	if c.S3AccessKeyFile != "" || c.S3SecretKeyFile != "" {
		if c.S3AccessKeyFile == "" || c.S3SecretKeyFile == "" {
			return keys{}, fail.New(fail.Usage, "only one of options s3-access-key-file and s3-secret-key-file is set: set both")
		}
		id, err := keyFile(c.S3AccessKeyFile, "s3-access-key-file")
		if err != nil {
			return keys{}, err
		}
		secret, err := keyFile(c.S3SecretKeyFile, "s3-secret-key-file")
		if err != nil {
			return keys{}, err
		}
		return keys{id: id, secret: secret, from: "s3-access-key-file " + c.S3AccessKeyFile + " and s3-secret-key-file " + c.S3SecretKeyFile}, nil
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case id != "" && secret != "":
		return keys{id: id, secret: secret, token: getenv("AWS_SESSION_TOKEN"), from: "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY"}, nil
	case id != "" || secret != "":
		return keys{}, fail.New(fail.Usage, "only one of $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY is set: set both")
	}
	file, explicit := getenv("AWS_SHARED_CREDENTIALS_FILE"), true
	if file == "" {
		explicit = false
		home, err := os.UserHomeDir()
		if err != nil {
			return keys{}, fail.New(fail.Auth, "no S3 credentials (and no home folder for ~/.aws/credentials): %s", noKeys)
		}
		file = home + "/.aws/credentials"
	}
	profile := getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	k, err := sharedFile(file, profile)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return keys{}, fail.New(fail.Auth, "no S3 credentials: %s", noKeys)
	}
	return k, err
}

// keyFile reads a key from the first line of file, without the spaces a copy
// from a web console may bring (keys hold none). Its errors are fail.Auth, as
// for every credential problem.
func keyFile(file, option string) (string, error) {
	key, _, err := secret.Read(option, file, "")
	if err != nil {
		return "", fail.New(fail.Auth, "%w", err)
	}
	if key = strings.TrimSpace(key); key == "" {
		return "", fail.New(fail.Auth, "%s %s holds only spaces on its first line: put the key there", option, file)
	}
	return key, nil
}

// sharedFile reads profile from an AWS shared credentials file (INI: [profile]
// sections of key = value lines, # and ; comments).
func sharedFile(file, profile string) (keys, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return keys{}, fail.As(fail.Auth, fmt.Errorf("cannot read the shared credentials file %s: %w: %s", file, errors.Unwrap(err), noKeys))
	}
	var k keys
	found, section := false, ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			found = found || section == profile
			continue
		}
		if section != profile {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "aws_access_key_id":
			k.id = strings.TrimSpace(val)
		case "aws_secret_access_key":
			k.secret = strings.TrimSpace(val)
		case "aws_session_token":
			k.token = strings.TrimSpace(val)
		}
	}
	k.from = fmt.Sprintf("profile %s of %s", profile, file)
	switch {
	case !found:
		return keys{}, fail.New(fail.Auth, "the shared credentials file %s has no profile [%s]: add it, or set $AWS_PROFILE to one it has", file, profile)
	case k.id == "" || k.secret == "":
		return keys{}, fail.New(fail.Auth, "%s lacks aws_access_key_id or aws_secret_access_key (cfgsnap does not run credential_process or SSO): add both", k.from)
	}
	return k, nil
}
