// Package build turns a function's directory into a Lambda deployment package. A source
// directory (Go, Python or Node.js) is built: Build detects the language, runs the host's own
// toolchain (go, pip, npm) in a staging directory, prunes what a function never needs at run
// time and zips the stage. A ready directory (IsReady: a bootstrap at its root) or a layer is
// zipped as it is (ZipDir). Either way the same directory gives byte-identical ZIPs and the same
// CodeSha256, whether it goes through flint build, flint deploy DIR or a stack (flint deploy -f):
// all of them use this package's one zipper.
//
// The zipper's format, for every package Flint makes:
//   - Entries are sorted by name, byte by byte; a directory's entry ("lib/") sorts before its
//     contents. Nothing is left out but .git (a directory, or a worktree's .git file).
//   - Every directory has an entry, empty ones included (code may expect a directory to exist).
//     Directories are 0755.
//   - Regular files are 0755 if any execute bit is set on disk, else 0644 (a bootstrap must be
//     executable: chmod +x it). Other permission bits, owners and umask do not matter; this is
//     also how Flint unpacks a package.
//   - Symlinks are stored as links (like zip -y, not zip -r's copy of the target), whether they
//     lead to a file or a directory, and are never followed; a symlink given as the directory
//     itself is. A link must be relative and lead to a place inside the package, following the
//     package's other links on the way: an absolute link, one that leaves the directory, or a
//     cycle is an error naming the link, at zip time, by the same rules (artifact's) the server
//     applies, so the zipper never makes a package Flint refuses. A link may dangle inside.
//   - Sockets, pipes and devices are an error naming the file.
//   - Every entry's time is 1980-01-01 00:00:00 (the zip epoch), as MS-DOS date and time fields
//     with no extended-timestamp extra field; entries are made by Unix (3) with their mode in
//     the external attributes; files are deflated (Go's compress/flate, default level),
//     directories and links stored.
//   - Lambda's limits hold: 50 MB zipped, 250 MB unzipped (files plus link targets), checked
//     before anything is sent.
//
// Build stages sources first and the stage is what is zipped: copying the sources follows
// symlinks to files (so sources may link to shared code outside the directory) and refuses
// links to directories; links that pip or npm create in the stage are zipped by the rules above.
//
// The package owns the package format and Lambda's package size limits. It must not talk to
// Flint or any other API, and it never modifies the source directory: every tool runs in a
// temporary copy.
package build
