// Package snapshot describes one captured running configuration: the Record that
// travels with it (host, last-change, user, commits, checksum) and the file name
// built from it, which never leaves the destination's folder whatever the user
// names, comments and timestamps hold.
package snapshot
