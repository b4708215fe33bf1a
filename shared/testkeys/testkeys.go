// Package testkeys lets tests declare the raw API keys they issue, so that
// `make test` can check that none of them appears anywhere in the test
// suite's output (infra/logscan). It has no dependencies, so that any
// package's tests can use it.
package testkeys

import (
	"os"
	"sync"
	"testing"
)

// EnvVar names the file the keys are appended to; `make test` sets it. Unset,
// Record does nothing.
const EnvVar = "TEST_ISSUED_KEYS"

var mu sync.Mutex

// Record appends key to the file EnvVar names, one per line. Test binaries of
// several packages run at once, and each line is one O_APPEND write, so
// lines never interleave.
func Record(t testing.TB, key string) {
	t.Helper()
	path := os.Getenv(EnvVar)
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("record issued key: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(key + "\n"); err != nil {
		t.Fatalf("record issued key: %v", err)
	}
}
