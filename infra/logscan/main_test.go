package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/contactlevel/metering/shared/apikey"
)

// The scan must be able to fail: each way a key can leak is planted once.
func TestScanFindsEveryFormOfLeak(t *testing.T) {
	issued, _ := apikey.New(nil)
	stranger, _ := apikey.New(nil) // issued by no one the scan knows of
	k := string(issued)
	for name, line := range map[string]string{
		"raw key":         `{"msg":"authorize","key":"` + k + `"}`,
		"hash":            `{"key_hash":"` + issued.Hash() + `"}`,
		"random part":     "got " + k[3:46],
		"unrecorded key":  "X-Api-Key: " + string(stranger),
		"key in a header": "x-api-key=" + k + "&next",
	} {
		found, _, err := Scan("log", strings.NewReader("ok line\n"+line+"\n"), []string{k})
		if err != nil || len(found) == 0 || found[0].Line != 2 {
			t.Errorf("%s: found %v (%v)", name, found, err)
		}
		for _, f := range found {
			if strings.Contains(f.What, k) {
				t.Errorf("the report itself leaks the key: %s", f.What)
			}
		}
	}
	clean := `{"msg":"request","key_id":"key_0123456789abcdef","display":"` + issued.Display() + `"}` + "\ncl_" + strings.Repeat("a", 49)
	if found, _, _ := Scan("log", strings.NewReader(clean), []string{k}); len(found) != 0 {
		t.Errorf("false positives: %v", found)
	}
}

func TestRunFailsOnALeakAndWhenNothingWasRecorded(t *testing.T) {
	dir := t.TempDir()
	k, _ := apikey.New(nil)
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte(string(k)+"\n"), 0o600)
	log := filepath.Join(dir, "log")
	os.WriteFile(log, []byte("leaked "+k.Hash()+"\n"), 0o600)
	var out bytes.Buffer
	if err := run(&out, keys, 1, []string{log}); err == nil || !strings.Contains(out.String(), "1 found") {
		t.Fatalf("leak not reported: %v %s", err, out.String())
	}
	os.WriteFile(log, []byte("clean\n"), 0o600)
	if err := run(&out, keys, 1, []string{log}); err != nil {
		t.Fatal(err)
	}
	if err := run(&out, filepath.Join(dir, "none"), 1, []string{log}); err == nil {
		t.Fatal("an empty record of keys passed")
	}
}
