package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/contactlevel/metering/shared/ddbtest"
)

// TestRunPrintsTheTable runs the whole benchmark briefly against the tests'
// DynamoDB Local and checks what it reports, never how fast anything was.
func TestRunPrintsTheTable(t *testing.T) {
	endpoint := os.Getenv(ddbtest.EndpointVar)
	if endpoint == "" {
		t.Fatalf("%s is not set: run the tests with `make test`", ddbtest.EndpointVar)
	}
	// run points the SDK at its DynamoDB through the environment; restore it.
	for _, k := range []string{ddbtest.EndpointVar, "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(k, os.Getenv(k))
	}
	var out bytes.Buffer
	args := []string{
		"-ddb-endpoint", endpoint, "-template", filepath.Join("..", "..", "template.yaml"),
		"-duration", "100ms", "-rounds", "2", "-warmup", "0s", "-jvm-warmup", "50ms", "-concurrency", "1,2", "-malformed", "30",
	}
	if err := run(context.Background(), args, &out, io.Discard, os.Getenv); err != nil {
		t.Fatalf("%v\n%s", err, &out)
	}
	report := out.String()
	for _, want := range []string{
		`contacts/create, cache off\s+20\s+60\s+3\.00\s+\d+\s+GetItem 20, PutItem 20, UpdateItem 20`,
		`contacts/create, cache warm\s+20\s+40\s+2\.00\s+\d+\s+PutItem 20, UpdateItem 20`,
		`malformed key \(7 shapes\), cache off\s+30\s+0\s+0\.00\s+0\s`,
		`(?m)^\s+1\s+1 ceiling: UpdateItem\s+\d+`,
		`(?m)^\s+2\s+3 e2e, cache warm\s+\d+\s+[\d.]+\s+[\d.]+\s+\d+\s+0\s+[\d.]+`,
	} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("the report does not match %q:\n%s", want, report)
		}
	}
}
