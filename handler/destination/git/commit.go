package git

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cfgsnap/cfgsnap/handler/diff"
	"github.com/cfgsnap/cfgsnap/handler/fail"
	"github.com/cfgsnap/cfgsnap/handler/snapshot"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// template is a git-path or author-email template: literal text and {field}s.
type template struct {
	option string // the option it comes from, for messages
	text   string
}

// parseTemplate checks text, the value of option, against the fields it may
// use and the characters a path or address may hold. Literal text is limited
// to snapshot names' safe alphabet (and '/'), so what the user writes can never
// form ".git", a control character or a '<' that would break a signature.
func parseTemplate(option, text string, fields ...string) (template, error) {
	t := template{option: option, text: text}
	if text == "" {
		return t, fail.New(fail.Usage, "option %s is empty: set it (its default is a good start)", option)
	}
	folders := option == "git-path" // a path may make folders
	slashes := ""
	if folders {
		slashes = ", '/' for folders,"
	}
	rest := text
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		lit := rest
		if i >= 0 {
			lit = rest[:i]
		}
		for _, r := range lit {
			if !safeRune(r) && !(r == '/' && folders) {
				return t, fail.New(fail.Usage, "option %s: %q holds %q; use letters, digits, '.', '_', '+', '@', '-'%s and the fields {%s}",
					option, text, r, slashes, strings.Join(fields, "} {"))
			}
		}
		if i < 0 {
			break
		}
		end := strings.IndexByte(rest[i:], '}')
		if rest[i] == '}' || end < 0 || !slices.Contains(fields, rest[i+1:i+end]) {
			return t, fail.New(fail.Usage, "option %s: %q has an unknown or unclosed field; its fields are {%s}", option, text, strings.Join(fields, "} {"))
		}
		rest = rest[i+end+1:]
	}
	return t, nil
}

func safeRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._+@-", r)
}

// expand replaces each {field} by its value.
func (t template) expand(values map[string]string) string {
	var b strings.Builder
	rest := t.text
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		end := strings.IndexByte(rest[i:], '}') + i
		b.WriteString(rest[:i])
		b.WriteString(values[rest[i+1:end]])
		rest = rest[end+1:]
	}
}

// field is a record's value as snapshot names have it: the safe alphabet only,
// at most 64 characters, "unknown" when empty.
func field(name string, rec snapshot.Record) string {
	v, err := snapshot.Name("{"+name+"}", rec)
	if err != nil {
		return "unknown" // cannot happen: the template is constant
	}
	return v
}

// filePath is the file rec goes to in the repository: the git-path template
// with {host} and {name}. The result is checked as git checks tree entries: no
// empty, "." or ".." element, and no ".git", which git refuses to check out.
func (d *Destination) filePath(rec snapshot.Record) (string, error) {
	p := d.path.expand(map[string]string{"host": field("host", rec), "name": rec.Name})
	bad := func(why string) error {
		return fail.New(fail.Usage, "option git-path: %q gives %q for %s, which %s; change the template", d.path.text, p, rec.Name, why)
	}
	if len(p) > 4096 {
		return "", bad("is too long")
	}
	for _, elem := range strings.Split(p, "/") {
		switch {
		case elem == "" || elem == "." || elem == "..":
			return "", bad("has an empty, '.' or '..' element")
		case strings.EqualFold(elem, ".git"):
			return "", bad("has a .git element")
		case strings.ContainsFunc(elem, isControl):
			return "", bad("holds control characters")
		}
	}
	return p, nil
}

// change is a commit ready to push: its hash, and the objects the server does
// not have yet (the blob, the trees on its path, the commit), all in store.
type change struct {
	commit  plumbing.Hash
	objects []plumbing.Hash
	store   storer.EncodedObjectStorer
	first   bool // the file is new on the branch
}

// treeEditor writes the trees that change when one file is replaced.
type treeEditor struct {
	store   storer.EncodedObjectStorer
	written []plumbing.Hash
}

// put returns tree (zero: an empty one) with the file at elems set to blob,
// and the hash of the blob that was there (zero if none). When the file holds
// blob already, tree is returned as it is and nothing is written.
func (e *treeEditor) put(tree plumbing.Hash, elems []string, blob plumbing.Hash) (newTree, old plumbing.Hash, err error) {
	var entries []object.TreeEntry
	if !tree.IsZero() {
		t, err := object.GetTree(e.store, tree)
		if err != nil {
			return plumbing.ZeroHash, plumbing.ZeroHash, fmt.Errorf("reading tree %s of the branch: %w", tree, err)
		}
		entries = slices.Clone(t.Entries)
	}
	name := elems[0]
	i := slices.IndexFunc(entries, func(te object.TreeEntry) bool { return te.Name == name })
	entry := object.TreeEntry{Name: name}
	if len(elems) == 1 {
		if i >= 0 {
			if entries[i].Mode == filemode.Dir || entries[i].Mode == filemode.Submodule {
				return plumbing.ZeroHash, plumbing.ZeroHash, fail.New(fail.Usage, "%s is a folder in the repository, not a file: set option git-path to another name", strings.Join(elems, "/"))
			}
			old = entries[i].Hash
			if old == blob {
				return tree, old, nil
			}
		}
		entry.Mode, entry.Hash = filemode.Regular, blob
	} else {
		var sub plumbing.Hash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, plumbing.ZeroHash, fail.New(fail.Usage, "%s is a file in the repository, not a folder: set option git-path to another name", name)
			}
			sub = entries[i].Hash
		}
		newSub, o, err := e.put(sub, elems[1:], blob)
		if err != nil || newSub == sub {
			return tree, o, err
		}
		old = o
		entry.Mode, entry.Hash = filemode.Dir, newSub
	}
	if i >= 0 {
		entries[i] = entry
	} else {
		entries = append(entries, entry)
	}
	// Git orders entries as if folder names ended in '/'; fsck checks it.
	sort.Sort(object.TreeEntrySorter(entries))
	obj := e.store.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, plumbing.ZeroHash, err
	}
	h, err := e.store.SetEncodedObject(obj)
	e.written = append(e.written, h)
	return h, old, err
}

// when is the time a commit carries: last-change, or for a manual snapshot that
// no change triggered, when it was taken.
func when(rec snapshot.Record) time.Time {
	switch {
	case !rec.LastChange.IsZero():
		return rec.LastChange
	case !rec.Taken.IsZero():
		return rec.Taken
	}
	return time.Now()
}

// signatures are the commit's author, the switch user who made the newest
// change (or took the manual snapshot), and committer, cfgsnap on that switch.
func (d *Destination) signatures(rec snapshot.Record) (author, committer object.Signature) {
	at := when(rec)
	name, email := d.person(rec, rec.User)
	host := field("host", rec)
	author = object.Signature{Name: name, Email: email, When: at}
	committer = object.Signature{Name: "cfgsnap", Email: "cfgsnap@" + host, When: at}
	return author, committer
}

// person is a switch user as git shows one: a name safe in a signature, and
// the address author-email makes of it.
func (d *Destination) person(rec snapshot.Record, user string) (name, email string) {
	name = oneLine(user, 128, "<>")
	if name == "" {
		name = "unknown"
	}
	as := rec
	as.User = user
	return name, d.email.expand(map[string]string{"user": field("user", as), "host": field("host", rec)})
}

// coAuthors are "Co-authored-by" trailers for every other user whose commit
// the snapshot holds, so that git log and hosting sites show everyone whose
// change it is. Commits it only possibly holds (an unsettled read) are not
// credited: the next snapshot names them.
func (d *Destination) coAuthors(rec snapshot.Record) []string {
	author, _ := d.person(rec, rec.User)
	seen := map[string]bool{author: true}
	var out []string
	for _, c := range rec.Commits {
		name, email := d.person(rec, c.Username)
		if !seen[name] {
			seen[name] = true
			out = append(out, fmt.Sprintf("Co-authored-by: %s <%s>", name, email))
		}
	}
	return out
}

// message is the commit message: a subject that says whose change it was and
// why, then last-change, every commit it holds, the snapshot's sha256, what
// changed since the previous version of the file, and trailers.
func message(rec snapshot.Record, sum, branch string, changes *snapshot.Changes, changesErr error, first bool, trailers []string) string {
	host := field("host", rec)
	user := oneLine(rec.User, 64, "")
	if user == "" {
		user = "unknown"
	}
	var b strings.Builder
	newest := newestCommit(rec.Commits)
	switch {
	case rec.Manual:
		fmt.Fprintf(&b, "%s: manual snapshot by %s", host, user)
	case newest != nil:
		fmt.Fprintf(&b, "%s: commit %d by %s", host, newest.ID, user)
	default:
		fmt.Fprintf(&b, "%s: change by %s (commit unknown)", host, user)
	}
	if c := oneLine(rec.Comment, 120, ""); c != "" {
		fmt.Fprintf(&b, ": %s", c)
	}
	b.WriteString("\n\n")
	if !rec.LastChange.IsZero() {
		fmt.Fprintf(&b, "Last change: %s\n", stamp(rec.LastChange))
	}
	if rec.Manual && !rec.Taken.IsZero() {
		fmt.Fprintf(&b, "Taken: %s\n", stamp(rec.Taken))
	}
	if len(rec.Commits) > 0 {
		fmt.Fprintf(&b, "Commits (%d):\n", len(rec.Commits))
		writeCommits(&b, rec.Commits)
	}
	if rec.Unsettled {
		b.WriteString("Unsettled: the switch kept committing while it was read; it may also hold:\n")
		writeCommits(&b, rec.Possibly)
	}
	if rec.Redacted {
		fmt.Fprintf(&b, "Redacted values: %d, replaced by keyed hashes (option redact); not restorable as it is\n", rec.RedactedValues)
	}
	fmt.Fprintf(&b, "SHA-256: %s\n", sum)
	switch {
	case first:
		fmt.Fprintf(&b, "Changes: first snapshot of this file on branch %s\n", branch)
	case changesErr != nil:
		fmt.Fprintf(&b, "Changes: not summarised (%s); git diff shows them\n", oneLine(changesErr.Error(), 200, ""))
	default:
		fmt.Fprintf(&b, "Changes: %d added, %d removed, %d changed\n", changes.Added, changes.Removed, changes.Changed)
		for _, p := range changes.Paths {
			fmt.Fprintf(&b, "  %s\n", oneLine(p, 300, ""))
		}
		if n := changes.Added + changes.Removed + changes.Changed; n > len(changes.Paths) && len(changes.Paths) > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", n-len(changes.Paths))
		}
	}
	if len(trailers) > 0 {
		b.WriteString("\n" + strings.Join(trailers, "\n") + "\n")
	}
	return b.String()
}

// writeCommits lists commits oldest first, one a line: id, user, when it
// started, comment.
func writeCommits(b *strings.Builder, commits []snapshot.Commit) {
	commits = slices.Clone(commits)
	slices.SortFunc(commits, func(x, y snapshot.Commit) int { return cmp.Compare(x.ID, y.ID) })
	for _, c := range commits {
		fmt.Fprintf(b, "  %d by %s", c.ID, orUnknown(oneLine(c.Username, 64, "")))
		if !c.Started.IsZero() {
			fmt.Fprintf(b, " at %s", stamp(c.Started))
		}
		if s := oneLine(c.Comment, 200, ""); s != "" {
			fmt.Fprintf(b, ": %s", s)
		}
		b.WriteByte('\n')
	}
}

// summarise says what changed from old to new, both blobs in store.
func summarise(store storer.EncodedObjectStorer, old, new plumbing.Hash) (*snapshot.Changes, error) {
	open := func(h plumbing.Hash) (io.ReadCloser, error) {
		o, err := store.EncodedObject(plumbing.BlobObject, h)
		if err != nil {
			return nil, err
		}
		return o.Reader()
	}
	or, err := open(old)
	if err != nil {
		return nil, err
	}
	defer or.Close()
	nr, err := open(new)
	if err != nil {
		return nil, err
	}
	defer nr.Close()
	return diff.Compare(or, nr)
}

func newestCommit(cs []snapshot.Commit) *snapshot.Commit {
	var n *snapshot.Commit
	for i := range cs {
		if n == nil || cs[i].ID > n.ID {
			n = &cs[i]
		}
	}
	return n
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// oneLine makes s, which comes from a switch user, safe on one line of a
// commit: control characters and those in drop become spaces, runs of spaces
// one, and it is cut at limit runes.
func oneLine(s string, limit int, drop string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if isControl(r) || r == '\u2028' || r == '\u2029' || strings.ContainsRune(drop, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit-1]) + "…"
	}
	return s
}
