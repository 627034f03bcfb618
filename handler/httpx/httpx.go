// Package httpx builds the HTTP transport of cfgsnap's HTTP peers (webhook,
// git over HTTPS, S3) the one way each must work on a switch:
//
//   - every connection, name resolution included, is made by the dial function
//     given, which enters the management network namespace;
//   - no proxy from the environment is used: $HTTPS_PROXY and the like describe
//     the default namespace, not the management network, and a proxy would be
//     reached outside the namespace;
//   - option connect-timeout bounds dialling and the TLS handshake;
//   - server certificates are verified against the system's roots plus those
//     of option ca-file (Roots).
//
// What differs between peers (HTTP/2, how many idle connections and for how
// long, compression) each sets on the transport it gets.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/fail"
)

// Roots is the system's roots plus the certificates of caFile (PEM), or the
// system's alone when caFile is "". A switch may have no system roots at all;
// then caFile's are all that is trusted.
//
// Errors name the file and the fix: fail.Usage, or fail.Permission for a file
// cfgsnap may not read. None quotes the file, which may be some other file
// named by mistake, a key among them.
func Roots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail.New(fail.Usage, "cannot read ca-file %s: it does not exist: fix the option or copy the CA certificate there", caFile)
	case errors.Is(err, fs.ErrPermission):
		return nil, fail.New(fail.Permission, "cannot read ca-file %s: %v: run cfgsnap with sudo or make the file readable by its user", caFile, pathless(err))
	case err != nil:
		return nil, fail.New(fail.Usage, "cannot read ca-file %s: %v: fix the option", caFile, pathless(err))
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fail.New(fail.Usage, "ca-file %s holds no PEM certificate: give a file of -----BEGIN CERTIFICATE----- blocks", caFile)
	}
	return pool, nil
}

// pathless drops the *fs.PathError around err: the message names the file.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Transport returns a transport that makes every connection with dial (nil: a
// plain net.Dialer), with no proxy, and verifies servers against roots (nil:
// the system's). connectTimeout > 0 bounds each dial and each TLS handshake;
// the request's own context bounds the rest. dial has destination.Dial's
// signature, spelled out: httpx sits below the destinations and takes their one
// Dial type as it is.
func Transport(dial func(ctx context.Context, network, addr string) (net.Conn, error), connectTimeout time.Duration, roots *x509.CertPool) *http.Transport {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return &http.Transport{
		// Set only to say it: nil is no proxy, where http.DefaultTransport
		// would read the environment.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if connectTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, connectTimeout)
				defer cancel()
			}
			return dial(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: connectTimeout,
	}
}

// CertError words err, if it is a failed check of the TLS certificate that
// host presented, with what to do about it: fail.Auth, since a second try meets
// the same certificate. For any other error it returns nil.
func CertError(host string, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		wrongHost x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknownCA):
		return fail.New(fail.Auth, "the TLS certificate of %s is signed by an authority cfgsnap does not trust: put that CA's certificate (PEM) in the file option ca-file names", host)
	case errors.As(err, &wrongHost):
		return fail.New(fail.Auth, "the TLS certificate of %s is not for that name (%v): use a name the certificate lists", host, wrongHost)
	case errors.As(err, &invalid):
		return fail.New(fail.Auth, "the TLS certificate of %s is not valid (%v): renew it, or check the switch's clock", host, invalid)
	case errors.As(err, &verify):
		return fail.New(fail.Auth, "the TLS certificate of %s was refused (%v): check it and option ca-file", host, verify.Err)
	}
	return nil
}
