// Package snapshot describes one captured running configuration: the Record that
// travels with it (host, last-change, user, commits, checksum) and the file name
// built from it, which never leaves the destination's folder whatever the user
// names, comments and timestamps hold.
//
// Name is the only way a Record becomes a path. Every field value is first
// reduced to a safe alphabet (letters, digits and . _ + @ -), so that nothing a
// switch user controls, such as a user name, a host name or a look-alike Unicode
// slash, can add a folder, climb out of the target or hide a file. The template
// is the operator's and is checked strictly instead: a bad template is a usage
// error, never a silently rewritten name.
//
// HostName reads the host name from a configuration as a stream, so a large
// configuration costs no more memory than a small one.
package snapshot
