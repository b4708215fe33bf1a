// Command logscan checks captured output for API keys: every key-shaped
// string with a valid checksum (whoever issued it), and every key listed in
// a file of issued keys, with its body and its SHA-256 hash. `make test`
// runs it over the whole test suite's output; it exits 1 on any finding.
//
//	logscan -keys issued-keys.txt go-test.log...
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/contactlevel/metering/shared/apikey"
)

func main() {
	keysFile := flag.String("keys", "", "file with the raw keys the tests issued, one per line")
	minKeys := flag.Int("min-keys", 0, "fail when fewer keys than this were recorded (the recording itself broke)")
	flag.Parse()
	if err := run(os.Stdout, *keysFile, *minKeys, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "logscan:", err)
		os.Exit(1)
	}
}

// keyShape finds candidates; apikey.Parse then keeps only real keys.
var keyShape = regexp.MustCompile(`cl_[0-9A-Za-z]{49}`)

// Finding is one leak: where, and what (never the secret itself).
type Finding struct {
	File string
	Line int
	What string
}

// needles maps each string that must not appear to a redacted description.
func needles(keys []string) map[string]string {
	n := map[string]string{}
	for _, k := range keys {
		key := apikey.Key(k)
		n[k] = "issued key " + key.String()
		n[key.Hash()] = "SHA-256 of issued key " + key.String()
		if len(k) == apikey.Len {
			n[k[3:46]] = "random part of issued key " + key.String()
		}
	}
	return n
}

// Scan reads r line by line and reports every leak.
func Scan(name string, r io.Reader, keys []string) ([]Finding, int, error) {
	nd := needles(keys)
	var found []Finding
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lines := 0
	for sc.Scan() {
		lines++
		line := sc.Text()
		for _, m := range keyShape.FindAllString(line, -1) {
			if k, err := apikey.Parse(m); err == nil {
				found = append(found, Finding{name, lines, "key " + k.String()})
			}
		}
		for needle, what := range nd {
			if strings.Contains(line, needle) {
				found = append(found, Finding{name, lines, what})
			}
		}
	}
	return found, lines, sc.Err()
}

func run(w io.Writer, keysFile string, minKeys int, files []string) error {
	var keys []string
	if keysFile != "" {
		data, err := os.ReadFile(keysFile)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		for _, k := range strings.Fields(string(data)) {
			keys = append(keys, k)
		}
	}
	if len(keys) < minKeys {
		return fmt.Errorf("only %d issued keys recorded, want at least %d: the tests no longer record them", len(keys), minKeys)
	}
	if len(files) == 0 {
		return fmt.Errorf("no files to scan")
	}
	var all []Finding
	total := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		found, lines, err := Scan(f, fh, keys)
		fh.Close()
		if err != nil {
			return err
		}
		all = append(all, found...)
		total += lines
	}
	for _, f := range all {
		fmt.Fprintf(w, "%s:%d: %s\n", f.File, f.Line, f.What)
	}
	fmt.Fprintf(w, "log scan: %d lines scanned for %d issued keys (and their hashes) and any valid key: %d found\n", total, len(keys), len(all))
	if len(all) > 0 {
		return fmt.Errorf("%d secrets found in the output", len(all))
	}
	return nil
}
