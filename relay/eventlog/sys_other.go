//go:build !unix

package eventlog

import "os"

// lockDir opens the LOCK file; other platforms get no advisory lock.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(dir+string(os.PathSeparator)+"LOCK", os.O_RDWR|os.O_CREATE, 0o644)
}

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
