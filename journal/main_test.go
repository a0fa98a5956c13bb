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
