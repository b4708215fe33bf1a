package localstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/apigateway"
	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/localstack"
	"github.com/contactlevel/metering/shared/testkeys"
)

const unauthorized = `{"detail": "Invalid or missing API key"}`

type env struct {
	t     *testing.T
	stack *ddbtest.Stack
	url   string
	calls *atomic.Int64 // DynamoDB requests made by the functions
}

// start serves the template's API over fresh tables. The functions reach
// DynamoDB Local through a proxy that counts their calls.
func start(t *testing.T, params map[string]string) *env {
	t.Helper()
	s := ddbtest.New(t)
	target, err := url.Parse(os.Getenv(ddbtest.EndpointVar))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	counter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(counter.Close)
	t.Setenv(ddbtest.EndpointVar, counter.URL)
	gw, err := localstack.Gateway(context.Background(), s.Template, s.Names, params, apigateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &env{t: t, stack: s, url: srv.URL, calls: &calls}
}

func (e *env) org(id string, b credits.Balance) {
	e.t.Helper()
	c := &dynamo.Credits{Client: e.stack.Client, Table: e.stack.Tables.Orgs}
	if err := c.Open(context.Background(), id, id, credits.Plan{}, b, time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) key(org string, mutate func(*apikey.Record)) string {
	e.t.Helper()
	k, rec, err := apikey.Issue(org, "test", time.Now(), time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	testkeys.Record(e.t, string(k))
	if mutate != nil {
		mutate(&rec)
	}
	if err := (dynamo.Keys{Client: e.stack.Client, Table: e.stack.Tables.Keys}).Put(context.Background(), rec); err != nil {
		e.t.Fatal(err)
	}
	return string(k)
}

func (e *env) do(method, path, key, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *env) balance(key string) int64 {
	e.t.Helper()
	status, body := e.do("GET", "/api/credits", key, "")
	if status != 200 {
		e.t.Fatalf("credits: %d %s", status, body)
	}
	var out struct{ Balance int64 }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Balance
}

func TestAcceptance(t *testing.T) {
	e := start(t, nil)
	e.org("org_a", credits.Balance{Subscription: 100, Purchased: 10, BonusRev: 1, Bonus: []credits.Grant{{ID: "promo", Remaining: 5, ExpiresAt: time.Now().Add(time.Hour)}}})
	e.org("org_zero", credits.Balance{})
	key := e.key("org_a", nil)

	if got := e.balance(key); got != 115 {
		t.Fatalf("balance %d", got)
	}
	status, body := e.do("POST", "/api/contacts/create?required_credits=7", key, `{"organization_id":"org_a","first_name":"Ada"}`)
	if status != 200 || !strings.Contains(body, `"credit_balance":108`) || !strings.Contains(body, `"credits_consumed":7`) {
		t.Fatalf("create: %d %s", status, body)
	}
	if got := e.balance(key); got != 108 {
		t.Fatalf("balance after create %d, want 108", got)
	}
	status, body = e.do("POST", "/api/audiences/create", key, `{"organization_id":"org_a","name":"VIP"}`)
	if status != 200 || !strings.Contains(body, `"tracking_utm_value"`) {
		t.Fatalf("audience: %d %s", status, body)
	}

	rejected := map[string]string{
		"no key":      "",
		"unknown key": func() string { k, _ := apikey.New(nil); return string(k) }(),
		"malformed":   "not-a-key",
		"expired key": e.key("org_a", func(r *apikey.Record) { r.Expires = time.Now().Add(-time.Second) }),
		"revoked key": e.key("org_a", func(r *apikey.Record) { r.Revoked = time.Now().Add(-time.Second) }),
	}
	for name, k := range rejected {
		for _, p := range [][2]string{{"GET", "/api/credits"}, {"POST", "/api/contacts/create"}} {
			status, body := e.do(p[0], p[1], k, `{"organization_id":"org_a"}`)
			if status != 401 || body != unauthorized {
				t.Errorf("%s %s: %d %s", name, p[1], status, body)
			}
		}
	}

	zero := e.key("org_zero", nil)
	status, body = e.do("POST", "/api/contacts/create", zero, `{"organization_id":"org_zero"}`)
	if status != 402 || strings.TrimSpace(body) != `{"detail":"Insufficient credits"}` {
		t.Fatalf("zero: %d %s", status, body)
	}
	if got := e.balance(zero); got != 0 {
		t.Fatalf("zero balance %d", got)
	}

	status, body = e.do("GET", "/api/nothing", key, "")
	if status != 404 || body != `{"detail": "Not Found"}` {
		t.Fatalf("unknown path: %d %s", status, body)
	}
}

func TestConcurrentCreatesChargeExactly(t *testing.T) {
	e := start(t, nil)
	e.org("org_c", credits.Balance{Subscription: 50})
	key := e.key("org_c", nil)
	var ok, poor, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := e.do("POST", "/api/contacts/create", key, fmt.Sprintf(`{"organization_id":"org_c","first_name":"n%d"}`, i))
			switch status {
			case 200:
				ok.Add(1)
			case 402:
				poor.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 50 || poor.Load() != 150 || other.Load() != 0 {
		t.Fatalf("200s %d, 402s %d, other %d", ok.Load(), poor.Load(), other.Load())
	}
	if got := e.balance(key); got != 0 {
		t.Fatalf("final balance %d", got)
	}
	out, err := e.stack.Client.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(e.stack.Tables.Contacts),
		KeyConditionExpression:    aws.String("org_id = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "org_c"}},
		Select:                    types.SelectCount,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 50 {
		t.Fatalf("%d contacts stored, want 50", out.Count)
	}
}

func TestMalformedKeysCostNoDynamoDBCall(t *testing.T) {
	e := start(t, map[string]string{"AuthorizerCacheTtl": "0"})
	good := e.key("org_m", nil)
	bad := []string{
		"x", "cl_", strings.Repeat("a", 52), strings.Repeat("a", 5000), "cl_" + strings.Repeat("é", 24),
		good[:len(good)-1] + "0", // checksum no longer matches
		good[:10] + "-" + good[11:],
	}
	before := e.calls.Load()
	for _, k := range bad {
		if status, body := e.do("GET", "/api/credits", k, ""); status != 401 || body != unauthorized {
			t.Fatalf("%q: %d %s", k, status, body)
		}
	}
	if n := e.calls.Load() - before; n != 0 {
		t.Fatalf("%d malformed keys made %d DynamoDB calls, want 0", len(bad), n)
	}
	unknown, _ := apikey.New(nil)
	e.do("GET", "/api/credits", string(unknown), "")
	if n := e.calls.Load() - before; n != 1 {
		t.Fatalf("a well-formed unknown key made %d calls, want exactly 1 GetItem", n)
	}
}
