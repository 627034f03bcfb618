package source

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/httpx"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/secret"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
)

// PasswordEnv holds the JSON-RPC password when option jsonrpc-password-file is not
// set. An environment variable, unlike an argument, is not shown in the process list.
const PasswordEnv = "CFGSNAP_JSONRPC_PASSWORD"

// jsonRPC reads through SR Linux's JSON-RPC server (system json-rpc-server), using
// the protocol of the learn.srlinux.dev JSON-RPC tutorial: one "get" per request,
// one command per get, the answer in result[0].
type jsonRPC struct {
	endpoint string // the URL requests go to; never holds credentials
	server   string // how messages name the server
	user     string
	password string // never in a message
	host     string // as the server's certificate must name it
	client   *http.Client
}

func newJSONRPC(c *option.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*jsonRPC, error) {
	// Checked first, and without quoting the URL: user:password@ must not reach a
	// message either.
	if strings.Contains(c.JSONRPCURL, "@") {
		return nil, fail.New(fail.Usage, "option jsonrpc-url holds credentials, which the process list would show: remove them and use jsonrpc-user with jsonrpc-password-file")
	}
	u, err := url.Parse(c.JSONRPCURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || (u.Host == "" && c.JSONRPCSocket == "") {
		return nil, fail.New(fail.Usage, "option jsonrpc-url %q is not an http:// or https:// URL: write it like http://127.0.0.1/jsonrpc", c.JSONRPCURL)
	}
	password, _, err := secret.Read("jsonrpc-password-file", c.JSONRPCPasswordFile, PasswordEnv)
	if err != nil {
		return nil, err
	}
	// Basic auth over plain HTTP is the password in the clear: fine on the
	// switch itself, not across a network, unless root says so.
	if password != "" && u.Scheme == "http" && c.JSONRPCSocket == "" && !option.Loopback(u.Hostname()) && !c.JSONRPCPlainHTTP {
		return nil, fail.New(fail.Usage, "option jsonrpc-url %s is plain http to another host, which would send the JSON-RPC password in the clear: use https://, 127.0.0.1 or jsonrpc-socket, or set jsonrpc-plain-http as root", u.Redacted())
	}
	j := &jsonRPC{user: c.JSONRPCUser, password: password}
	if sock := c.JSONRPCSocket; sock != "" {
		// A unix socket is a file: every network namespace reaches it the same way,
		// so dial, which enters the management namespace, is not needed.
		var d net.Dialer
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		// The socket speaks plain HTTP; only the URL's path matters.
		u.Scheme, u.Host = "http", "localhost"
		j.server = "unix socket " + sock
	} else {
		j.server = u.String()
	}
	var roots *x509.CertPool
	if u.Scheme == "https" {
		if roots, err = httpx.Roots(c.CAFile); err != nil {
			return nil, err
		}
	}
	tr := httpx.Transport(dial, c.ConnectTimeout, roots)
	// Source has no Close: no connection may outlive a request.
	tr.DisableKeepAlives = true
	j.host = u.Host
	j.endpoint = u.String()
	j.client = &http.Client{
		Transport: tr,
		// A redirect would turn the POST into a GET; the server does not redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return j, nil
}

// WriteConfig gets "/" from the running datastore and writes result[0] indented by
// two spaces and ending in a newline: the server sends one long line, and a
// snapshot is read through diffs, which need one value per line.
func (j *jsonRPC) WriteConfig(ctx context.Context, w io.Writer) error {
	return j.get(ctx, []rpcCommand{configCommand}, 0, j.config(w))
}

// Commits gets "/system/configuration/commit" from the state datastore.
func (j *jsonRPC) Commits(ctx context.Context) ([]snapshot.Commit, error) {
	var commits []snapshot.Commit
	err := j.get(ctx, []rpcCommand{commitsCommand}, maxCommitList, j.commits(&commits))
	return commits, err
}

// bracket gets the commit list, the configuration and the commit list again in
// one request: the server answers the commands in order, so the configuration
// lies between the two lists, with no connection set-up in between.
func (j *jsonRPC) bracket(ctx context.Context, w io.Writer) (before, after []snapshot.Commit, err error) {
	err = j.get(ctx, []rpcCommand{commitsCommand, configCommand, commitsCommand}, 0,
		j.commits(&before), j.config(w), j.commits(&after))
	return before, after, err
}

var (
	configCommand  = rpcCommand{Path: "/", Datastore: "running"}
	commitsCommand = rpcCommand{Path: "/system/configuration/commit", Datastore: "state"}
)

func (j *jsonRPC) config(w io.Writer) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		writeErr, badJSON := writeIndented(w, dec)
		if writeErr != nil {
			return passErr{writeErr}
		}
		return badJSON
	}
}

func (j *jsonRPC) commits(out *[]snapshot.Commit) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		commits, err := parseCommits(raw)
		if err != nil {
			return passErr{fail.New(fail.Source, "JSON-RPC server at %s sent no usable commit list (%v): check that it is SR Linux's", j.server, err)}
		}
		*out = commits
		return nil
	}
}

// passErr carries an error that get returns as it is, such as the destination's.
type passErr struct{ err error }

func (p passErr) Error() string { return p.err.Error() }

type rpcCommand struct {
	Path      string `json:"path"`
	Datastore string `json:"datastore"`
}

type rpcRequest struct {
	JSONRPC string `json:"jsonrpc"`
	ID      int    `json:"id"`
	Method  string `json:"method"`
	Params  struct {
		Commands []rpcCommand `json:"commands"`
	} `json:"params"`
}

type rpcError struct {
	Code    any    `json:"code"`
	Message string `json:"message"`
}

// get posts one "get" of cmds and hands the decoder, positioned at each value
// of the result in turn, to results, one per command; each must read exactly its
// value and return a passErr for errors that are not the answer's fault. limit >
// 0 bounds the response body.
func (j *jsonRPC) get(ctx context.Context, cmds []rpcCommand, limit int64, results ...func(*json.Decoder) error) error {
	body := rpcRequest{JSONRPC: "2.0", ID: 0, Method: "get"}
	body.Params.Commands = cmds
	what := describeGet(cmds)
	b, err := json.Marshal(body)
	if err != nil {
		return fail.New(fail.Internal, "encoding a JSON-RPC request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.endpoint, bytes.NewReader(b))
	if err != nil {
		return fail.New(fail.Internal, "building a JSON-RPC request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if j.password != "" {
		req.SetBasicAuth(j.user, j.password)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return j.timeout(ctx)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		if cert := httpx.CertError(j.host, err); cert != nil {
			// A source's failures all exit 4, whatever the cause.
			return fail.New(fail.Source, "JSON-RPC server: %v", cert)
		}
		return fail.New(fail.Source, "cannot reach the JSON-RPC server at %s (%v): check jsonrpc-url or jsonrpc-socket, and that system json-rpc-server is enabled", j.server, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusUnauthorized && j.password == "":
		return fail.New(fail.Source, "JSON-RPC server at %s wants credentials and none were given: set jsonrpc-password-file or $%s", j.server, PasswordEnv)
	case resp.StatusCode == http.StatusUnauthorized:
		return fail.New(fail.Source, "JSON-RPC server at %s refused the credentials of user %q: check jsonrpc-user and the password in jsonrpc-password-file or $%s", j.server, j.user, PasswordEnv)
	case resp.StatusCode != http.StatusOK:
		// The body may be a JSON-RPC error, which says more than the status.
		var e struct{ Error *rpcError }
		if b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); err == nil && json.Unmarshal(b, &e) == nil && e.Error != nil {
			return j.refused(what, e.Error)
		}
		if ctx.Err() != nil {
			return j.timeout(ctx)
		}
		return fail.New(fail.Source, "JSON-RPC server at %s answered %s to get %s: check jsonrpc-url", j.server, resp.Status, what)
	}
	var r io.Reader = resp.Body
	if limit > 0 {
		r = io.LimitReader(r, limit)
	}
	err = j.walk(json.NewDecoder(r), what, results)
	var p passErr
	switch {
	case err == nil:
		return nil
	case errors.As(err, &p):
		return p.err
	case fail.KindOf(err) == fail.Source:
		return err
	case ctx.Err() != nil:
		return j.timeout(ctx)
	}
	return fail.New(fail.Source, "JSON-RPC server at %s sent a broken answer to get %s (%v): check that jsonrpc-url points at SR Linux's /jsonrpc", j.server, what, err)
}

// describeGet names a get's commands for messages: "/ from the running datastore".
func describeGet(cmds []rpcCommand) string {
	var parts []string
	for _, c := range cmds {
		parts = append(parts, c.Path+" from the "+c.Datastore+" datastore")
	}
	return strings.Join(parts, ", ")
}

// walk reads the response object member by member, so that each result value
// streams to its consumer instead of being held.
func (j *jsonRPC) walk(dec *json.Decoder, what string, results []func(*json.Decoder) error) error {
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return errors.New("it is not a JSON-RPC response object")
	}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case "result":
			if tok, err := dec.Token(); err != nil {
				return err
			} else if tok != json.Delim('[') {
				return errors.New("its result is not a list")
			}
			for i, result := range results {
				if !dec.More() {
					return fmt.Errorf("its result holds %d values for %d commands", i, len(results))
				}
				if err := result(dec); err != nil {
					return err
				}
			}
			seen = true
			for dec.More() { // as many values as commands are expected; skip extras
				if err := dec.Decode(new(json.RawMessage)); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
		case "error":
			var e rpcError
			if err := dec.Decode(&e); err != nil {
				return err
			}
			return j.refused(what, &e)
		default:
			if err := dec.Decode(new(json.RawMessage)); err != nil {
				return err
			}
		}
	}
	if !seen {
		return errors.New("it holds neither result nor error")
	}
	return nil
}

func (j *jsonRPC) refused(what string, e *rpcError) error {
	return fail.New(fail.Source, "JSON-RPC server at %s refused get %s (error code %v): %q", j.server, what, e.Code, e.Message)
}

func (j *jsonRPC) timeout(ctx context.Context) error {
	return fail.New(fail.Source, "JSON-RPC server at %s did not answer in time (%v): check that it is reachable in the management namespace, or raise the deadline", j.server, context.Cause(ctx))
}
