// Package git is the destination for a git repository: each snapshot becomes a
// commit of one file per switch on one branch, so that git log -p and git blame
// on that file show the switch's history, and who changed what.
//
// Targets:
//
//	git+ssh://user@host[:port]/path/repo.git  (also ssh://; /~/repo.git is below the login folder)
//	user@host:path/repo.git                   (scp-like, as git takes it: path relative to the login folder)
//	https://[user@]host/path/repo.git         (http:// for labs; git+https:// when the URL does not end in .git)
//
// SSH uses package sshclient, so keys, known_hosts, pinned host keys and
// insecure-skip-host-key work as for SFTP. HTTPS sends the token or password
// from option git-password-file or $CFGSNAP_GIT_PASSWORD with the URL's user
// (default "cfgsnap"), and verifies the server's certificate against the
// system's CAs plus option ca-file. Every connection is made by the Dial it is
// given, inside the management namespace.
//
// A Save reads the snapshot into memory, fetches the branch's tip at depth 1
// (its commit and tree, no history) into memory, replaces the one file
// (option git-path, default {host}.json), and pushes a commit whose author is
// the switch user and whose dates are last-change. Nothing is kept between
// Saves, so time and memory do not grow with the history; they grow with the
// size of the tip's tree, i.e. all files on the branch. A snapshot identical to
// the file on the branch makes no commit (a reboot, a reload).
//
// Many switches push to one branch. A push names the tip it builds on and the
// server updates the branch only if it is still there (never a force push); if
// another switch pushed first, the Save fetches the new tip, applies its file
// again and pushes again, a bounded number of times.
//
// go-git's Repository API finds its transports in a process-wide table
// (client.InstallProtocol) and its SSH transport dials by itself, so this
// package drives go-git's transport sessions directly: go-git's HTTP transport
// with an http.Client of its own, and for SSH the pack protocol over a session
// of an sshclient connection (sshproto.go). No global state is changed.
package git

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/cfgsnap/cfgsnap/handler/destination"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/option"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/cfgsnap/cfgsnap/handler/sshsig"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// tries bounds the pushes of one Save when other switches keep moving the
// branch; the pause before each retry is random, up to a cap that doubles, so
// that switches that collided do not collide again.
const (
	tries    = 10
	pause    = 50 * time.Millisecond
	maxPause = 2 * time.Second
)

// Destination commits snapshots to a branch of a git repository. Like every
// Destination, it is used by one goroutine at a time.
type Destination struct {
	display string
	branch  plumbing.ReferenceName
	path    template // option git-path
	email   template // option author-email
	logf    func(string, ...any)
	link    link
	signer  *sshsig.Signer // option sign-key; nil: commits are not signed
}

// New returns the destination for u, a git target as target.Parse gives it
// (SCPURL for the scp-like form). It reads options branch, git-path,
// author-email, git-password-file, ca-file and sign-key, and for SSH those of
// sshclient.
// Every connection goes through dial (nil: a plain net.Dialer); logf gets warnings and what a Save did
// besides committing (no change, a retry). New does not connect.
func New(u *url.URL, c *option.Config, dial destination.Dial, logf func(string, ...any)) (*Destination, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	e, err := parseEndpoint(u)
	if err != nil {
		return nil, err
	}
	d := &Destination{display: e.display, logf: logf, branch: plumbing.NewBranchReferenceName(c.Branch)}
	if c.Branch == "" || d.branch.Validate() != nil {
		return nil, fail.New(fail.Usage, "option branch: %q is not a valid branch name: use letters, digits, '-', '_', '.' and '/' (git check-ref-format --branch checks one)", c.Branch)
	}
	if d.path, err = parseTemplate("git-path", c.GitPath, "host", "name"); err != nil {
		return nil, err
	}
	if d.email, err = parseTemplate("author-email", c.AuthorEmail, "user", "host"); err != nil {
		return nil, err
	}
	if strings.HasPrefix(c.GitPath, "/") {
		return nil, fail.New(fail.Usage, "option git-path: %q is absolute; make it relative to the top of the repository", c.GitPath)
	}
	if _, err := d.filePath(snapshot.Record{Host: "leaf1", Name: "leaf1/leaf1.json"}); err != nil {
		return nil, err
	}
	if d.signer, err = sshsig.FromOptions(c); err != nil {
		return nil, err
	}
	if e.ssh {
		d.link, err = newSSHLink(e, c, dial, logf)
	} else {
		d.link, err = newHTTPLink(e, c, dial, logf)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// String is the target as written, which holds no secret.
func (d *Destination) String() string { return d.display }

// Location is where the snapshot lives in the repository, in git's own
// revision:path form after the target: git@host:org/configs.git#main:leaf1.json.
func (d *Destination) Location(rec snapshot.Record) string {
	p, err := d.filePath(rec)
	if err != nil {
		return d.display
	}
	return d.display + "#" + d.branch.Short() + ":" + p
}

var _ destination.Locator = (*Destination)(nil)

// Close closes the connection, if any.
func (d *Destination) Close() error { return d.link.close() }

// Save commits the snapshot as the file git-path names, unless the branch has
// it already. It reads r before it connects: a failing or short reader, or a
// cancelled ctx, leaves the repository untouched.
func (d *Destination) Save(ctx context.Context, rec snapshot.Record, r io.Reader) error {
	p, err := d.filePath(rec)
	if err != nil {
		return err
	}
	what := p + " on branch " + d.branch.Short()
	blob, sum, err := readBlob(ctx, r, rec.Size)
	if err != nil {
		return fail.New(fail.Deliver, "%s: saving %s: reading the snapshot: %w", d.display, what, err)
	}
	return d.link.do(ctx, what, func(ctx context.Context, s sessions) error {
		return d.commit(ctx, s, rec, p, blob, sum)
	})
}

// readBlob reads exactly size bytes of r into a blob, and their sha256.
func readBlob(ctx context.Context, r io.Reader, size int64) (*plumbing.MemoryObject, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	blob := &plumbing.MemoryObject{}
	blob.SetType(plumbing.BlobObject)
	h := sha256.New()
	if err := destination.Copy(ctx, io.MultiWriter(blob, h), r, size); err != nil {
		return nil, "", err
	}
	return blob, hex.EncodeToString(h.Sum(nil)), nil
}

// errMoved says the branch is no longer at the tip a change was built on.
var errMoved = errors.New("another push moved the branch first")

// refused is a push the server turned down: a moved branch, or a hook or a
// protection rule, which only a fresh fetch tells apart.
type refused struct{ err error }

func (r *refused) Error() string { return r.err.Error() }

// commit fetches the tip, builds the change and pushes it, again on a new tip
// while other pushers move the branch.
func (d *Destination) commit(ctx context.Context, s sessions, rec snapshot.Record, p string, blob *plumbing.MemoryObject, sum string) error {
	var last error // why the previous try did not land
	var lastTip plumbing.Hash
	ceiling := pause
	for try := 1; ; try++ {
		tip, store, err := fetch(ctx, s, d.branch)
		if err != nil {
			return fmt.Errorf("fetching branch %s: %w", d.branch.Short(), err)
		}
		var r *refused
		if errors.As(last, &r) && tip == lastTip {
			// The branch did not move, so the server refused for a reason of
			// its own, which a retry would meet again.
			return fmt.Errorf("the server refused the push: %w: check the repository's hooks and branch protection, and that the account may push to %s", r, d.branch.Short())
		}
		c, err := d.build(store, tip, rec, p, blob, sum)
		if err != nil {
			return err
		}
		if c == nil {
			if last == nil {
				d.logf("%s: %s is unchanged on branch %s: no commit", d.display, p, d.branch.Short())
			}
			return nil // unchanged, or a push whose report was lost had landed
		}
		err = push(ctx, s, d.branch, tip, c)
		if err == nil {
			d.logf("%s: committed %s as %s on branch %s", d.display, p, c.commit.String()[:12], d.branch.Short())
			return nil
		}
		if !errors.Is(err, errMoved) && !errors.As(err, &r) {
			return fmt.Errorf("pushing to branch %s: %w", d.branch.Short(), err)
		}
		if try == tries {
			return fmt.Errorf("branch %s moved under each of %d pushes (other switches pushing at the same time): the next run tries again", d.branch.Short(), tries)
		}
		last, lastTip = err, tip
		d.logf("%s: pushing %s to branch %s: %v; fetching the branch again (try %d of %d)", d.display, p, d.branch.Short(), err, try+1, tries)
		wait := time.Duration(rand.Int64N(int64(ceiling)))
		ceiling = min(2*ceiling, maxPause)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// fetch returns the branch's tip and its objects at depth 1, in memory; a
// missing branch, or an empty repository, is a zero tip.
func fetch(ctx context.Context, s sessions, branch plumbing.ReferenceName) (plumbing.Hash, *memory.Storage, error) {
	store := memory.NewStorage()
	up, err := s.upload(ctx)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	defer up.Close()
	ar, err := up.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, store, nil
	}
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	tip, ok := ar.References[branch.String()]
	if !ok || tip.IsZero() {
		return plumbing.ZeroHash, store, nil
	}
	if !ar.Capabilities.Supports(capability.Shallow) {
		return plumbing.ZeroHash, nil, errors.New("the server cannot send a shallow fetch (no shallow capability), which keeps each snapshot's cost independent of the history")
	}
	req := packp.NewUploadPackRequestFromCapabilities(ar.Capabilities)
	req.Wants = []plumbing.Hash{tip}
	req.Depth = packp.DepthCommits(1)
	_ = req.Capabilities.Set(capability.Shallow)
	// A thin pack would lean on objects we do not have.
	req.Capabilities.Delete(capability.ThinPack)
	if ar.Capabilities.Supports(capability.NoProgress) {
		_ = req.Capabilities.Set(capability.NoProgress)
	}
	resp, err := up.UploadPack(ctx, req)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := packfile.UpdateObjectStorage(store, pack); err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("reading the fetched objects: %w", err)
	}
	return tip, store, nil
}

// build makes the commit that puts blob at p on top of tip, with the objects
// it adds in store; nil if the file at p holds blob already.
func (d *Destination) build(store *memory.Storage, tip plumbing.Hash, rec snapshot.Record, p string, blob *plumbing.MemoryObject, sum string) (*change, error) {
	var root plumbing.Hash
	var parents []plumbing.Hash
	if !tip.IsZero() {
		c, err := object.GetCommit(store, tip)
		if err != nil {
			return nil, fmt.Errorf("reading the tip %s: %w", tip, err)
		}
		root, parents = c.TreeHash, []plumbing.Hash{tip}
	}
	e := &treeEditor{store: store}
	newRoot, old, err := e.put(root, strings.Split(p, "/"), blob.Hash())
	if err != nil {
		return nil, err
	}
	if old == blob.Hash() {
		return nil, nil
	}
	if _, err := store.SetEncodedObject(blob); err != nil {
		return nil, err
	}
	var changes *snapshot.Changes
	var changesErr error
	if !old.IsZero() {
		changes, changesErr = summarise(store, old, blob.Hash())
	}
	author, committer := d.signatures(rec)
	cm := &object.Commit{
		Author:       author,
		Committer:    committer,
		Message:      message(rec, sum, d.branch.Short(), changes, changesErr, old.IsZero(), d.coAuthors(rec)),
		TreeHash:     newRoot,
		ParentHashes: parents,
	}
	if err := d.sign(cm); err != nil {
		return nil, err
	}
	obj := store.NewEncodedObject()
	if err := cm.Encode(obj); err != nil {
		return nil, err
	}
	h, err := store.SetEncodedObject(obj)
	if err != nil {
		return nil, err
	}
	objects := append([]plumbing.Hash{blob.Hash()}, e.written...)
	return &change{commit: h, objects: append(objects, h), store: store, first: old.IsZero()}, nil
}

// sign puts the signature of option sign-key in cm's gpgsig header, as git
// commit -S does with gpg.format ssh: an SSH signature in namespace "git" over
// the commit as it is encoded without that header.
func (d *Destination) sign(cm *object.Commit) error {
	if d.signer == nil {
		return nil
	}
	payload := &plumbing.MemoryObject{}
	if err := cm.EncodeWithoutSignature(payload); err != nil {
		return err
	}
	r, err := payload.Reader()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sig, err := d.signer.Sign("git", b)
	if err != nil {
		return fmt.Errorf("signing the commit with option sign-key: %w", err)
	}
	cm.PGPSignature = sig
	return nil
}

// push updates branch from old to c's commit, sending c's objects. The server
// applies it only if the branch is still at old; errMoved when it is not
// before anything is sent, *refused when the server turns the update down.
func push(ctx context.Context, s sessions, branch plumbing.ReferenceName, old plumbing.Hash, c *change) error {
	rp, err := s.receive(ctx)
	if err != nil {
		return err
	}
	defer rp.Close()
	ar, err := rp.AdvertisedReferencesContext(ctx)
	if err != nil {
		return err
	}
	if ar.References[branch.String()] != old {
		return errMoved
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: branch, Old: old, New: c.commit}}
	// With a side band, what the server's hooks say comes back with the report,
	// so a refusal can say why.
	said := &tail{}
	if ar.Capabilities.Supports(capability.Sideband64k) {
		_ = req.Capabilities.Set(capability.Sideband64k)
		req.Progress = said
	}
	var pack bytes.Buffer
	// Window 0: no deltas. The objects are one blob and a few trees that have
	// nothing in common with each other worth the time on a switch's CPU.
	if _, err := packfile.NewEncoder(&pack, c.store, false).Encode(c.objects, 0); err != nil {
		return fmt.Errorf("packing the commit: %w", err)
	}
	req.Packfile = io.NopCloser(&pack)
	report, err := rp.ReceivePack(ctx, req)
	switch {
	case report != nil && report.Error() != nil:
		if msg := said.String(); msg != "" {
			return &refused{fmt.Errorf("%w (the server said: %s)", report.Error(), msg)}
		}
		return &refused{report.Error()}
	case err != nil:
		return err
	case report == nil:
		// No report (an HTTP server that sent none): whether it landed is
		// seen on the next fetch.
		return &refused{errors.New("the server sent no report on the push")}
	}
	return nil
}
