package jetstream

import (
	"os"
)

// ciRun reports whether the tests run in CI, where ../shared must exist.
func ciRun() bool { return os.Getenv("CI") == "true" }

// readShared reads a file of ../shared, given relative to this package.
func readShared(path string) ([]byte, error) { return os.ReadFile(path) }
