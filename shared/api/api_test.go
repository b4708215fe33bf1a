package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/contactlevel/metering/shared/api"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	stack    *ddbtest.Stack
	credits  *dynamo.Credits
	adapter  *httpadapter.HandlerAdapter
	failPuts bool
	logs     bytes.Buffer
}

// failingContacts stands for a contacts table that is down after the charge.
type failingContacts struct {
	dynamo.Contacts
	f *fixture
}

func (c failingContacts) Put(ctx context.Context, x crm.Contact) error {
	if c.f.failPuts {
		return errors.New("injected: contacts table unavailable")
	}
	return c.Contacts.Put(ctx, x)
}

func newFixture(t *testing.T, orgs map[string]credits.Balance) *fixture {
	f := &fixture{t: t, stack: ddbtest.New(t)}
	f.credits = &dynamo.Credits{Client: f.stack.Client, Table: f.stack.Tables.Orgs}
	for org, b := range orgs {
		if err := f.credits.Open(context.Background(), org, org, credits.Plan{}, b, now); err != nil {
			t.Fatal(err)
		}
	}
	h := api.New(api.Deps{
		Credits:   f.credits,
		Contacts:  failingContacts{dynamo.Contacts{Client: f.stack.Client, Table: f.stack.Tables.Contacts}, f},
		Audiences: dynamo.Audiences{Client: f.stack.Client, Table: f.stack.Tables.Audiences},
		Now:       func() time.Time { return now },
		Log:       slog.New(slog.NewJSONHandler(io.MultiWriter(&f.logs, t.Output()), nil)),
	})
	f.adapter = httpadapter.New(h)
	return f
}

type response struct {
	status int
	body   map[string]any
	raw    string
}

// call sends an API Gateway proxy event as the gateway would after the
// authorizer allowed org ("" for an event without authorizer context).
func (f *fixture) call(method, path, query, body, org string) response {
	f.t.Helper()
	req := events.APIGatewayProxyRequest{
		HTTPMethod: method, Path: path, Resource: path, Body: body,
		Headers:        map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-1", Stage: "prod"},
	}
	if query != "" {
		k, v, _ := strings.Cut(query, "=")
		req.QueryStringParameters = map[string]string{k: v}
		req.MultiValueQueryStringParameters = map[string][]string{k: {v}}
	}
	if org != "" {
		req.RequestContext.Authorizer = map[string]any{"org_id": org, "key_id": "key_1", "principalId": "key_1"}
	}
	res, err := f.adapter.ProxyWithContext(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	out := response{status: res.StatusCode, raw: res.Body}
	_ = json.Unmarshal([]byte(res.Body), &out.body)
	return out
}

func (f *fixture) total(org string) int64 {
	f.t.Helper()
	b, err := f.credits.Balance(context.Background(), org)
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Total(now)
}

const contact = `{"organization_id":"org_a","first_name":"Ada","last_name":"Lovelace","work_emails":["ada@example.com"],"age":36}`

func TestCreditsShowsBreakdown(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {
		Subscription: 10, Purchased: 5, BonusRev: 1,
		Bonus: []credits.Grant{{ID: "promo", Remaining: 3, ExpiresAt: now.Add(24 * time.Hour)}, {ID: "old", Remaining: 9, ExpiresAt: now}, {ID: "gift", Remaining: 2}},
	}})
	r := f.call("GET", "/api/credits", "", "", "org_a")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	want := `{"organization_id":"org_a","balance":20,"breakdown":{"subscription":10,"purchased":5,"bonus":5},"bonus_grants":[{"id":"promo","remaining":3,"expires_at":"2026-11-28T12:00:00Z"},{"id":"gift","remaining":2,"expires_at":null}]}`
	if strings.TrimSpace(r.raw) != want {
		t.Fatalf("got  %s\nwant %s", r.raw, want)
	}
}

func TestCreditsIsFreeAtZero(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {}})
	r := f.call("GET", "/api/credits", "", "", "org_a")
	if r.status != 200 || r.body["balance"] != float64(0) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestCreateContactCharges(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	r := f.call("POST", "/api/contacts/create", "required_credits=3", contact, "org_a")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r.body["credits_consumed"] != float64(3) || r.body["credit_balance"] != float64(7) || r.body["contact_id"] == "" {
		t.Fatalf("body %s", r.raw)
	}
	c := r.body["contact"].(map[string]any)
	if c["first_name"] != "Ada" || c["organization_id"] != "org_a" || c["id"] != r.body["contact_id"] || c["phones"] == nil {
		t.Fatalf("contact %v", c)
	}
	if f.total("org_a") != 7 {
		t.Fatal("balance not charged")
	}
	if !strings.Contains(f.logs.String(), `"credits_charged":3`) {
		t.Fatalf("log lacks the charge: %s", f.logs.String())
	}
}

func TestCreateAudience(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Purchased: 1}})
	r := f.call("POST", "/api/audiences/create", "", `{"organization_id":"org_a","name":"Q4 Buyers!","google":true}`, "org_a")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	a := r.body["audience"].(map[string]any)
	if a["name"] != "Q4 Buyers!" || a["google"] != true || a["facebook"] != false || a["linkedin"] != false || a["description"] != nil {
		t.Fatalf("audience %v", a)
	}
	if utm, _ := a["tracking_utm_value"].(string); !strings.HasPrefix(utm, "cl-q4-buyers-") {
		t.Fatalf("utm %q", utm)
	}
	if f.total("org_a") != 0 {
		t.Fatal("not charged")
	}
	if r := f.call("POST", "/api/audiences/create", "", `{"organization_id":"org_a","name":"x"}`, "org_a"); r.status != 402 || r.raw != "{\"detail\":\"Insufficient credits\"}\n" {
		t.Fatalf("%d %q", r.status, r.raw)
	}
}

func TestInsufficientCredits(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 2}})
	r := f.call("POST", "/api/contacts/create", "required_credits=3", contact, "org_a")
	if r.status != 402 || r.body["detail"] != "Insufficient credits" || len(r.body) != 1 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if f.total("org_a") != 2 {
		t.Fatal("balance changed")
	}
}

func TestInvalidRequestsCostNothing(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	cases := []struct {
		name, query, body string
		status            int
		loc               string
	}{
		{"zero credits", "required_credits=0", contact, 422, `["query","required_credits"]`},
		{"too many credits", "required_credits=1001", contact, 422, `["query","required_credits"]`},
		{"not a number", "required_credits=abc", contact, 422, `["query","required_credits"]`},
		{"fractional", "required_credits=1.5", contact, 422, `["query","required_credits"]`},
		{"missing org", "", `{"first_name":"x"}`, 422, `["body","organization_id"]`},
		{"malformed json", "", `{"organization_id":`, 422, `["body",`},
		{"not an object", "", `[1,2]`, 422, `["body"]`},
		{"wrong type", "", `{"organization_id":"org_a","age":"old"}`, 422, `["body","age"]`},
		{"list of wrong type", "", `{"organization_id":"org_a","phones":"555"}`, 422, `["body","phones"]`},
		{"bad email", "", `{"organization_id":"org_a","work_emails":["nope"]}`, 422, `["body","work_emails",0]`},
		{"empty body", "", ``, 422, `["body"]`},
		{"long string", "", `{"organization_id":"org_a","city":"` + strings.Repeat("x", 1001) + `"}`, 422, `["body","city"]`},
		{"too large", "", `{"organization_id":"org_a","city":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, 413, ``},
		{"other org", "", `{"organization_id":"org_b"}`, 403, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.call("POST", "/api/contacts/create", c.query, c.body, "org_a")
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.raw)
			}
			if _, ok := r.body["detail"]; !ok {
				t.Fatalf("no detail: %s", r.raw)
			}
			if c.loc != "" && !strings.Contains(r.raw, `"loc":`+c.loc) {
				t.Fatalf("loc %s not in %s", c.loc, r.raw)
			}
		})
	}
	if f.total("org_a") != 10 {
		t.Fatalf("invalid requests were charged: balance %d", f.total("org_a"))
	}
}

func TestFailedWorkIsRefunded(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 4, Purchased: 4, BonusRev: 1, Bonus: []credits.Grant{{ID: "b", Remaining: 1}}}})
	f.failPuts = true
	r := f.call("POST", "/api/contacts/create", "required_credits=6", contact, "org_a")
	if r.status != 500 || r.body["detail"] == nil {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if f.total("org_a") != 9 {
		t.Fatalf("balance %d after a failed request, want 9", f.total("org_a"))
	}
	if !strings.Contains(f.logs.String(), `"credits_charged":0`) {
		t.Fatal("log claims a charge")
	}
}

func TestNoAuthorizerContextIs401(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/api/credits", "/api/contacts/create"} {
		r := f.call("POST", p, "", contact, "")
		if r.status != 401 || strings.TrimSpace(r.raw) != `{"detail":"Invalid or missing API key"}` {
			t.Fatalf("%s: %d %s", p, r.status, r.raw)
		}
	}
}

func TestUnknownRouteIs404(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range [][2]string{{"GET", "/api/nope"}, {"DELETE", "/api/credits"}, {"GET", "/api/contacts/create"}} {
		r := f.call(c[0], c[1], "", "", "org_a")
		if r.status != 404 || r.body["detail"] != "Not Found" {
			t.Fatalf("%v: %d %s", c, r.status, r.raw)
		}
	}
}

func TestContactIsStoredUnderTheKeysOrganization(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 5}, "org_b": {Subscription: 5}})
	r := f.call("POST", "/api/contacts/create", "", contact, "org_a")
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	if f.total("org_b") != 5 || f.total("org_a") != 4 {
		t.Fatal("wrong organization charged")
	}
}

// API Gateway may serve a cached authorizer answer after the key expired;
// the expiry travels in the context and the endpoint compares it itself.
func TestKeyExpiredSinceTheAuthorizerCachedItIs401(t *testing.T) {
	f := newFixture(t, map[string]credits.Balance{"org_a": {Subscription: 5}})
	for _, c := range []struct {
		expires string
		status  int
	}{
		{strconv.FormatInt(now.Unix(), 10), 401},                 // at its expiry
		{strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), 401}, // past it
		{"soon", 401}, // unreadable: refuse rather than guess
		{strconv.FormatInt(now.Add(time.Second).Unix(), 10), 200},
	} {
		req := events.APIGatewayProxyRequest{
			HTTPMethod: "GET", Path: "/api/credits", Resource: "/api/credits",
			RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-exp", Authorizer: map[string]any{
				"org_id": "org_a", "key_id": "key_1", "key_expires": c.expires, "principalId": "key_1",
			}},
		}
		res, err := f.adapter.ProxyWithContext(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != c.status {
			t.Fatalf("key_expires %s: %d %s, want %d", c.expires, res.StatusCode, res.Body, c.status)
		}
		if c.status == 401 && strings.TrimSpace(res.Body) != `{"detail":"Invalid or missing API key"}` {
			t.Fatalf("body %s", res.Body)
		}
	}
}
