package journal_test

import (
	"os"
	"testing"
)

// Environment variables that turn the test binary into a helper process.
const (
	envCrashWriter = "IMON_JOURNAL_TEST_CRASH_WRITER" // journal path: append until killed
	envTmpfsChild  = "IMON_JOURNAL_TEST_TMPFS_CHILD"  // "1": disk-full scenario on a private tmpfs
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envCrashWriter); path != "" {
		os.Exit(crashWriter(path))
	}
	if os.Getenv(envTmpfsChild) != "" {
		os.Exit(tmpfsChild())
	}
	code := m.Run()
	removeFixture()
	os.Exit(code)
}

// requireRoot skips a test that needs root, or fails it when CI=true (CI
// must run every test).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root, and CI=true: failing instead of skipping")
	}
	t.Skip("needs root")
}
