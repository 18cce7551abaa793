// Package artifact owns Lambda deployment packages (zip files) between the API and the sandbox:
// it validates a package before Flint accepts it, and keeps unpacked packages in an on-disk
// cache, one directory per content hash, written once and never modified, from which sandboxes
// mount function code.
//
// Validate checks a package without writing anything: its size before and after decompression
// (counted while decompressing, never taken from headers, so a zip bomb stops at the limit), the
// number of entries, every entry's name and type, and every symlink's target. A package is
// rejected with an error that wraps exactly one sentinel (ErrCorrupt, ErrZippedTooLarge,
// ErrUnzippedTooLarge, ErrUnsafePath, ErrUnsafeSymlink, ErrTooManyFiles) and names the entry.
//
// The rules, beyond "is a well-formed zip":
//   - Names are slash-separated and relative. An empty name, a NUL byte, a backslash, a leading
//     "/", a Windows drive ("C:"), or any ".." component is ErrUnsafePath, even when ".."
//     would stay inside the root ("a/../b"); so is a name longer than 4096 bytes or with a
//     component longer than 255. "." and empty components are ignored ("./a//b" is "a/b"); a
//     directory entry naming the root itself ("./") is ignored.
//   - Regular files, directories and symlinks are allowed; other file types (devices, pipes,
//     sockets) are ErrUnsafePath. Encrypted entries and unknown compression methods are
//     ErrCorrupt.
//   - Duplicate names (after cleaning) are rejected with ErrCorrupt, except a directory listed
//     twice: extracting "the later one wins" would let a package show a scanner one file and
//     run another. A name that needs a regular file as its directory is ErrCorrupt too.
//   - MaxFiles bounds the zip's entries and also the paths they make, implied directories
//     included, since each costs work to check and to create.
//   - A symlink's target must be relative, at most 4096 bytes, and resolve inside the root when
//     followed from the link's directory, following the package's other symlinks on the way
//     (so "a" -> "." then "b" -> "a/.." escapes); otherwise, and for link cycles and chains
//     of more than 40 links, the error is ErrUnsafeSymlink. No entry may have a symlink as a
//     parent directory ("a" -> "." then "a/x" is ErrUnsafePath), so extraction never writes
//     through a link.
//   - An empty zip (no entries) is a valid, empty package.
//
// Checks cost time linear in the package's size, however its names and links are shaped.
//
// Cache unpacks with the same checks (defence in depth), verifies the content hash, extracts
// into a temporary directory beneath the cache directory through os.Root, fsyncs, and renames
// into place, so a directory under its hash is always complete. File modes are normalised:
// 0755 if the zip gave any execute bit, else 0644; entries without Unix mode information (zips
// made on Windows) get 0644, except a root-level file named "bootstrap", which gets 0755.
// Directories get 0755. Owners, times, setuid and the like are not kept.
//
// Merge lays several unpacked packages over each other (a function's layers, into /opt) with
// hard links, into one directory per combination. Each package's links were checked alone, but
// laying packages together changes where a link leads (one layer's "esc" -> "s/s/../.." leaves
// the tree once another layer adds "s" -> "."), so the combined tree is checked as a whole
// (CheckMerge, which callers also use when a function's layers are set), and what Merge wrote is
// read back from disk, without following any link, and checked again before it is published.
// List and Remove let callers collect packages and merged directories nothing references.
//
// The package must not know about functions, layers, the store or the API's error catalogue:
// callers fetch the bytes, decide when a package is no longer referenced, and map the sentinels
// to AWS errors. It must not follow symlinks, trust header sizes, or write outside its
// directory.
package artifact
