package api_test

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
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/contactlevel/metering/shared/api"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
)

// Stubs without I/O: the benchmark measures the endpoint's own work, not
// DynamoDB's. Behaviour is tested against DynamoDB Local elsewhere.
type stubCredits struct{}

func (stubCredits) Balance(context.Context, string) (credits.Balance, error) {
	return credits.Balance{Subscription: 1000}, nil
}

func (stubCredits) Debit(_ context.Context, _ string, n int64, now time.Time) (credits.Debit, credits.Balance, error) {
	return credits.Debit{Amount: n, At: now, Takes: []credits.Take{{Bucket: credits.Subscription, Amount: n}}}, credits.Balance{Subscription: 1000 - n}, nil
}

func (stubCredits) Refund(context.Context, string, credits.Debit) (credits.Balance, error) {
	return credits.Balance{}, nil
}

type stubContacts struct{}

func (stubContacts) Put(context.Context, crm.Contact) error { return nil }

// BenchmarkContactsCreate is one POST /api/contacts/create as the Lambda
// runtime runs it (lambdas.Endpoints' wiring): the sample proxy event's JSON
// decoded by lambda.NewHandler, turned into an http.Request by
// aws-lambda-go-api-proxy, validated, charged, stored, logged and answered.
//
//	go test -run '^$' -bench . -benchmem ./shared/api
func BenchmarkContactsCreate(b *testing.B) {
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "contacts-create.json"))
	if err != nil {
		b.Fatal(err)
	}
	h := api.New(api.Deps{
		Credits:  stubCredits{},
		Contacts: stubContacts{},
		NewID:    func() string { return "0193a5e0-0000-7000-8000-000000000000" },
		Log:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	handler := lambda.NewHandler(httpadapter.New(h).ProxyWithContext)
	ctx := context.Background()
	out, err := handler.Invoke(ctx, event)
	if err != nil || !bytes.Contains(out, []byte(`"statusCode":200`)) {
		b.Fatalf("the sample event failed: %s %v", out, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handler.Invoke(ctx, event); err != nil {
			b.Fatal(err)
		}
	}
}
