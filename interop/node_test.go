package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeDir holds package.json, the committed package-lock.json and the
// scripts; node_modules is created there by npm ci and not committed.
const nodeDir = "node"

// npmTimeout bounds "npm ci"; nodeTimeout bounds one script run.
const (
	npmTimeout  = 5 * time.Minute
	nodeTimeout = 2 * time.Minute
)

var (
	npmOnce sync.Once
	npmErr  error
	npmLog  []byte
)

// inCI reports whether missing tools must fail the run instead of
// skipping it.
func inCI() bool { return os.Getenv("CI") == "true" }

// requireNode skips the test (or fails it in CI) when node or npm is not
// installed, and installs the locked packages once per test binary.
func requireNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := "INTEROP TESTS NOT RUN: " + tool + " is not installed; install Node.js (with npm) to run them"
			if inCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	npmOnce.Do(func() { npmLog, npmErr = npmInstall() })
	if npmErr != nil {
		t.Fatalf("npm ci in %s: %v\n%s", nodeDir, npmErr, npmLog)
	}
}

// npmInstall runs "npm ci" when node_modules is missing or older than
// package-lock.json. npm records what it installed in
// node_modules/.package-lock.json, whose time stamp is that of the install.
func npmInstall() ([]byte, error) {
	lock, err := os.Stat(filepath.Join(nodeDir, "package-lock.json"))
	if err != nil {
		return nil, err
	}
	installed, err := os.Stat(filepath.Join(nodeDir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = nodeDir
	return cmd.CombinedOutput()
}

// runNode runs "node plc.js args..." in nodeDir with stdin and returns its
// stdout. A non-zero exit is returned as an error carrying stderr.
func runNode(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, &nodeError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type nodeError struct {
	args   []string
	err    error
	stderr string
}

func (e *nodeError) Error() string {
	return "node " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}
