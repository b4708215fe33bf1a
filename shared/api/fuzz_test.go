package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/contactlevel/metering/shared/api"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
)

// memoryCredits is an api.Credits for fuzzing, where DynamoDB's behaviour is
// not what is under test (it is, against DynamoDB Local, everywhere else):
// only whether decoding lets a bad request reach the charge.
type memoryCredits struct {
	mu      sync.Mutex
	balance int64
}

func (m *memoryCredits) Balance(context.Context, string) (credits.Balance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return credits.Balance{Purchased: m.balance}, nil
}

func (m *memoryCredits) Debit(_ context.Context, _ string, n int64, now time.Time) (credits.Debit, credits.Balance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := credits.Balance{Purchased: m.balance}
	d, err := credits.PlanDebit(b, n, now)
	if err != nil {
		return credits.Debit{}, b, err
	}
	m.balance -= n
	return d, b.Apply(d), nil
}

func (m *memoryCredits) Refund(_ context.Context, _ string, d credits.Debit) (credits.Balance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.balance += d.Amount
	return credits.Balance{Purchased: m.balance}, nil
}

type discardStore struct{}

func (discardStore) Put(context.Context, crm.Contact) error { return nil }

type discardAudiences struct{}

func (discardAudiences) Put(context.Context, crm.Audience) error { return nil }

const fuzzBalance = 1 << 20

// fuzzEndpoint checks one charged endpoint against arbitrary query strings,
// bodies and Idempotency-Key values: it never panics; it answers 200, or
// 402, 403, 413, 422 with the documented error shapes; and only a 200
// changes the balance, by exactly the credits asked for.
func fuzzEndpoint(f *testing.F, path string, seeds [][3]string) {
	for _, s := range seeds {
		f.Add(s[0], []byte(s[1]), s[2])
	}
	m := &memoryCredits{balance: fuzzBalance}
	h := httpadapter.New(api.New(api.Deps{
		Credits: m, Contacts: discardStore{}, Audiences: discardAudiences{},
		Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler),
	}))
	f.Fuzz(func(t *testing.T, query string, body []byte, idemKey string) {
		req := events.APIGatewayProxyRequest{
			HTTPMethod: "POST", Path: path, Resource: path, Body: string(body),
			Headers:        map[string]string{"Content-Type": "application/json"},
			RequestContext: events.APIGatewayProxyRequestContext{RequestID: "fuzz", Stage: "prod", Authorizer: map[string]any{"org_id": "org_a", "key_id": "key_1"}},
		}
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			req.MultiValueQueryStringParameters = q
			req.QueryStringParameters = map[string]string{}
			for k, v := range q {
				req.QueryStringParameters[k] = v[len(v)-1]
			}
		}
		if idemKey != "" {
			req.Headers["Idempotency-Key"] = idemKey
		}
		before := m.balance
		res, err := h.ProxyWithContext(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal([]byte(res.Body), &out); err != nil {
			t.Fatalf("%d: body is not a JSON object: %q", res.StatusCode, res.Body)
		}
		spent := before - m.balance
		switch res.StatusCode {
		case 200:
			want := int64(1)
			if path == "/api/contacts/create" {
				if v := req.MultiValueQueryStringParameters["required_credits"]; len(v) > 0 {
					want, _ = strconv.ParseInt(v[0], 10, 64)
				}
			}
			if spent != want {
				t.Fatalf("200 charged %d, want %d", spent, want)
			}
		case 422:
			var errs []api.FieldError
			if err := json.Unmarshal(out["detail"], &errs); err != nil || len(errs) == 0 {
				t.Fatalf("422 without a list of field errors: %s", res.Body)
			}
			for _, e := range errs {
				if len(e.Loc) == 0 || (e.Loc[0] != "body" && e.Loc[0] != "query" && e.Loc[0] != "header") || e.Type == "" || e.Msg == "" {
					t.Fatalf("undocumented field error %+v", e)
				}
			}
		case 403, 413, 402:
			var detail string
			if err := json.Unmarshal(out["detail"], &detail); err != nil || detail == "" {
				t.Fatalf("%d without a detail: %s", res.StatusCode, res.Body)
			}
		case 503:
			// Idempotency-Key without a store: documented, charges nothing.
			if idemKey == "" {
				t.Fatalf("503 without a key: %s", res.Body)
			}
		default:
			t.Fatalf("status %d: %s", res.StatusCode, res.Body)
		}
		if res.StatusCode != 200 && spent != 0 {
			t.Fatalf("%d charged %d", res.StatusCode, spent)
		}
		if m.balance < fuzzBalance/2 {
			m.balance = fuzzBalance
		}
	})
}

func FuzzCreateContact(f *testing.F) {
	fuzzEndpoint(f, "/api/contacts/create", [][3]string{
		{"", `{"organization_id":"org_a","first_name":"Ada","work_emails":["ada@example.com"],"age":36}`, ""},
		{"required_credits=3", `{"organization_id":"org_a"}`, ""},
		{"required_credits=0", `{"organization_id":"org_a"}`, ""},
		{"required_credits=1e3", `{"organization_id":"org_a"}`, ""},
		{"required_credits=2&required_credits=9", `{"organization_id":"org_a"}`, ""},
		{"", `{"organization_id":"org_b"}`, ""},
		{"", `{"organization_id":"org_a","age":"x","phones":"1"}`, ""},
		{"", `{"organization_id":"org_a","work_emails":["a@b.c",7]}`, ""},
		{"", `[]`, ""},
		{"", `{"organization_id":"org_a"`, ""},
		{"", `{"organization_id":"org_a"} trailing`, ""},
		{"", "\xff\xfe", ""},
		{"", `{"organization_id":"org_a"}`, "key\n"},
	})
}

func FuzzCreateAudience(f *testing.F) {
	fuzzEndpoint(f, "/api/audiences/create", [][3]string{
		{"", `{"organization_id":"org_a","name":"Q4 Buyers","google":true}`, ""},
		{"", `{"organization_id":"org_a","name":""}`, ""},
		{"", `{"organization_id":"org_a","name":"x","facebook":"yes"}`, ""},
		{"", `{"organization_id":"org_a","name":"x","description":null}`, ""},
		{"", `{"name":"x"}`, ""},
		{"", `null`, ""},
		{"", `"string"`, ""},
	})
}
