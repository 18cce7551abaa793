// Package atomicfile writes a file so that a reader, or a process that dies mid-write, sees the
// old contents or the new ones whole (the SNS signing key and certificate, the self-signed TLS
// certificate and key).
package atomicfile

import "os"

// Write makes path hold b with mode perm: it writes path+".tmp" and renames it over path.
func Write(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
