package authorizer_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/authorizer"
)

// stubKeys answers every lookup with one record, without I/O: the benchmark
// measures the authorizer's own work, not DynamoDB's.
type stubKeys struct{ rec apikey.Record }

func (s stubKeys) Lookup(context.Context, string) (apikey.Record, error) { return s.rec, nil }

// BenchmarkInvoke is one authorization as the Lambda runtime runs it: the
// sample event's JSON decoded, the header found, the key parsed and hashed,
// the record judged, the log line written and the policy encoded. Only the
// lookup is stubbed.
//
//	go test -run '^$' -bench . -benchmem ./shared/authorizer
func BenchmarkInvoke(b *testing.B) {
	benchAllow(b, func(a *authorizer.Authorizer) lambda.Handler { return a })
}

// BenchmarkNewHandler is the same through lambda.NewHandler(a.Handle), which
// decodes the whole event type: the cost Invoke avoids.
func BenchmarkNewHandler(b *testing.B) {
	benchAllow(b, func(a *authorizer.Authorizer) lambda.Handler { return lambda.NewHandler(a.Handle) })
}

func benchAllow(b *testing.B, handler func(*authorizer.Authorizer) lambda.Handler) {
	event, key := sampleEvent(b)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rec := apikey.Record{Hash: key.Hash(), ID: "key_0123456789abcdef", OrgID: "org_demo", Display: key.Display(), Created: now.Add(-time.Hour)}
	// The production logger writes JSON lines; io.Discard keeps their
	// formatting cost in the measurement and the output out of it.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := handler(authorizer.New(stubKeys{rec}, func() time.Time { return now }, log))
	ctx := context.Background()
	out, err := h.Invoke(ctx, event)
	if err != nil || !bytes.Contains(out, []byte(`"Allow"`)) {
		b.Fatalf("the sample event is not allowed: %s %v", out, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Invoke(ctx, event); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeMalformed is the price of turning away a key of the wrong
// shape, which never reaches DynamoDB.
func BenchmarkInvokeMalformed(b *testing.B) {
	event, key := sampleEvent(b)
	bad := string(key[:len(key)-1]) + "x"
	event = bytes.ReplaceAll(event, []byte(key), []byte(bad))
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := authorizer.New(stubKeys{}, time.Now, log)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Invoke(ctx, event); err == nil {
			b.Fatal("a malformed key was allowed")
		}
	}
}

// sampleEvent is events/authorizer.json with its key replaced by a
// well-formed one (the sample's key is a placeholder).
func sampleEvent(b *testing.B) ([]byte, apikey.Key) {
	b.Helper()
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "authorizer.json"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := apikey.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	const sample = "cl_kLexTS2hDEDClBaK4WuM1T3iq2UTIZ7N94TEb6TG6Wk1wRdmQ"
	if !bytes.Contains(event, []byte(sample)) {
		b.Fatalf("events/authorizer.json no longer carries the key %s", sample)
	}
	return bytes.ReplaceAll(event, []byte(sample), []byte(key)), key
}
