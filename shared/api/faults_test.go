package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/contactlevel/metering/shared/api"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
)

// Tallies over every fault test, printed by TestMain for the closing note.
var tally struct {
	requests, faults, lost, unconfirmed, owed atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tally.requests.Load() == 0 {
		os.Exit(code) // a fuzzing run: nothing to report
	}
	fmt.Printf("api fault tally: requests=%d faults_injected=%d credits_lost=%d unconfirmed_debits_charged_once=%d refunds_abandoned_and_logged=%d\n",
		tally.requests.Load(), tally.faults.Load(), tally.lost.Load(), tally.unconfirmed.Load(), tally.owed.Load())
	os.Exit(code)
}

// faulty is a fixture whose every DynamoDB call goes through injected faults.
type faulty struct {
	*fixture
	faults *ddbtest.Faults
	clock  atomic.Int64 // seconds after now
	reqs   atomic.Int64
}

func newFaulty(t *testing.T, orgs map[string]credits.Balance) *faulty {
	f := &faulty{fixture: &fixture{t: t, stack: ddbtest.New(t)}, faults: &ddbtest.Faults{}}
	client := f.stack.ClientWith(f.faults)
	f.credits = &dynamo.Credits{Client: f.stack.Client, Table: f.stack.Tables.Orgs}
	for org, b := range orgs {
		if err := f.credits.Open(context.Background(), org, org, credits.Plan{}, b, now); err != nil {
			t.Fatal(err)
		}
	}
	balances := &dynamo.Credits{Client: client, Table: f.stack.Tables.Orgs}
	h := api.New(api.Deps{
		Credits:     balances,
		Idempotency: &dynamo.Idempotency{Client: client, Table: f.stack.Tables.Idempotency, Credits: balances},
		Contacts:    dynamo.Contacts{Client: client, Table: f.stack.Tables.Contacts},
		Audiences:   dynamo.Audiences{Client: client, Table: f.stack.Tables.Audiences},
		Now:         func() time.Time { return now.Add(time.Duration(f.clock.Load()) * time.Second) },
		Log:         slog.New(slog.NewJSONHandler(&lockedBuffer{b: io.MultiWriter(&f.logs, t.Output())}, nil)),
	})
	f.adapter = httpadapter.New(h)
	t.Cleanup(func() { tally.faults.Add(f.faults.Injected()); tally.requests.Add(f.reqs.Load()) })
	return f
}

type lockedBuffer struct {
	mu sync.Mutex
	b  interface{ Write([]byte) (int, error) }
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

type reply struct {
	status   int
	body     string
	replayed bool
}

// post sends a charged request as the gateway would after the authorizer
// allowed org, with the Idempotency-Key idemKey unless it is "".
func (f *faulty) post(path, query, body, org, idemKey, requestID string) reply {
	f.t.Helper()
	return f.postCtx(context.Background(), path, query, body, org, idemKey, requestID)
}

func (f *faulty) postCtx(ctx context.Context, path, query, body, org, idemKey, requestID string) reply {
	f.t.Helper()
	f.reqs.Add(1)
	req := events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: path, Resource: path, Body: body,
		Headers:        map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: requestID, Stage: "prod"},
	}
	if idemKey != "" {
		req.Headers["Idempotency-Key"] = idemKey
	}
	if query != "" {
		k, v, _ := strings.Cut(query, "=")
		req.QueryStringParameters = map[string]string{k: v}
		req.MultiValueQueryStringParameters = map[string][]string{k: {v}}
	}
	req.RequestContext.Authorizer = map[string]any{"org_id": org, "key_id": "key_1", "principalId": "key_1"}
	res, err := f.adapter.ProxyWithContext(ctx, req)
	if err != nil {
		f.t.Fatal(err)
	}
	replayed := res.Headers["Idempotent-Replayed"] == "true" || len(res.MultiValueHeaders["Idempotent-Replayed"]) > 0
	return reply{status: res.StatusCode, body: res.Body, replayed: replayed}
}

func (f *faulty) contacts(org string) int32 {
	f.t.Helper()
	out, err := f.stack.Client.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(f.stack.Tables.Contacts),
		KeyConditionExpression:    aws.String("org_id = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: org}},
		Select:                    types.SelectCount,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out.Count
}

// expect checks the balance against what the successful requests should
// have cost, and counts any difference as lost credits.
func (f *faulty) expect(org string, want int64) {
	f.t.Helper()
	if got := f.total(org); got != want {
		tally.lost.Add(abs(got - want))
		f.t.Fatalf("balance %d, want %d", got, want)
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

const body = `{"organization_id":"org_a","first_name":"Ada"}`

func TestIdempotencyKeyReplaysWithoutCharging(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	first := f.post("/api/contacts/create", "required_credits=3", body, "org_a", "order-1", "r1")
	if first.status != 200 || first.replayed {
		t.Fatalf("%d %s", first.status, first.body)
	}
	again := f.post("/api/contacts/create", "required_credits=3", body, "org_a", "order-1", "r2")
	if again.status != 200 || !again.replayed || again.body != first.body {
		t.Fatalf("replay %d %v %s\nfirst %s", again.status, again.replayed, again.body, first.body)
	}
	f.expect("org_a", 7)
	if f.contacts("org_a") != 1 {
		t.Fatal("the replay did the work again")
	}

	for name, c := range map[string][2]string{
		"other body":  {"required_credits=3", `{"organization_id":"org_a","first_name":"Bob"}`},
		"other query": {"required_credits=2", body},
	} {
		r := f.post("/api/contacts/create", c[0], c[1], "org_a", "order-1", "r3")
		if r.status != 422 || !strings.Contains(r.body, "already used with a different request") {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	r := f.post("/api/audiences/create", "", `{"organization_id":"org_a","name":"x"}`, "org_a", "order-1", "r4")
	if r.status != 422 {
		t.Fatalf("other path: %d %s", r.status, r.body)
	}
	f.expect("org_a", 7)

	// After 24 hours the key is new again.
	f.clock.Store(int64(24 * time.Hour / time.Second))
	if r := f.post("/api/contacts/create", "required_credits=3", body, "org_a", "order-1", "r5"); r.status != 200 || r.replayed {
		t.Fatalf("after the window: %d %v", r.status, r.replayed)
	}
	f.expect("org_a", 4)
}

// Without the header a warm charge is one UpdateItem and the work's one
// PutItem: no transaction, no read, nothing in the idempotency table.
func TestNoHeaderCostsNoExtraCall(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	f.post("/api/contacts/create", "", body, "org_a", "", "warm")
	ops := []string{"UpdateItem", "PutItem", "GetItem", "TransactWriteItems", "DeleteItem", "Query"}
	before := map[string]int{}
	for _, op := range ops {
		before[op] = f.faults.Calls(op)
	}
	if r := f.post("/api/contacts/create", "", body, "org_a", "", "plain"); r.status != 200 {
		t.Fatal(r.body)
	}
	for _, op := range ops {
		want := 0
		if op == "UpdateItem" || op == "PutItem" {
			want = 1
		}
		if got := f.faults.Calls(op) - before[op]; got != want {
			t.Errorf("%s: %d calls, want %d", op, got, want)
		}
	}
	// With the header: one transaction, one read of the balance after it,
	// the work's PutItem and the UpdateItem storing the response.
	for _, op := range ops {
		before[op] = f.faults.Calls(op)
	}
	if r := f.post("/api/contacts/create", "", body, "org_a", "k", "keyed"); r.status != 200 {
		t.Fatal(r.body)
	}
	for op, want := range map[string]int{"TransactWriteItems": 1, "GetItem": 1, "PutItem": 1, "UpdateItem": 1, "DeleteItem": 0} {
		if got := f.faults.Calls(op) - before[op]; got != want {
			t.Errorf("keyed %s: %d calls, want %d", op, got, want)
		}
	}
}

func TestIdempotencyKeyValidation(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	for name, k := range map[string]string{
		"too long":  strings.Repeat("k", 256),
		"non-ascii": "ключ",
		"control":   "a\tb",
		"newline":   "a\nb",
	} {
		r := f.post("/api/contacts/create", "", body, "org_a", k, "r")
		if r.status != 422 || !strings.Contains(r.body, `"loc":["header","idempotency-key"]`) {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := f.post("/api/contacts/create", "", body, "org_a", strings.Repeat("k", 255), "r"); r.status != 200 {
		t.Errorf("255 characters: %d %s", r.status, r.body)
	}
	f.expect("org_a", 9)
}

func TestIdempotencyKeyAfterInsufficientCanBeRetried(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 1}})
	if r := f.post("/api/contacts/create", "required_credits=2", body, "org_a", "k", "r1"); r.status != 402 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if _, err := f.credits.Refund(context.Background(), "org_a", credits.Debit{Amount: 1, Takes: []credits.Take{{Bucket: credits.Purchased, Amount: 1}}}); err != nil {
		t.Fatal(err)
	}
	if r := f.post("/api/contacts/create", "required_credits=2", body, "org_a", "k", "r2"); r.status != 200 {
		t.Fatalf("after a top-up: %d %s", r.status, r.body)
	}
	f.expect("org_a", 0)
}

// The acceptance test of the issue: 100 concurrent requests with one key on
// an organization with 5 credits.
func TestConcurrentDuplicatesChargeOnce(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 5}})
	var fresh, replays, conflicts, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.post("/api/contacts/create", "", body, "org_a", "same-key", fmt.Sprintf("req-%d", i))
			switch {
			case r.status == 200 && !r.replayed:
				fresh.Add(1)
			case r.status == 200:
				replays.Add(1)
			case r.status == 409 && strings.Contains(r.body, "in progress"):
				conflicts.Add(1)
			default:
				other.Add(1)
				t.Errorf("%d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	t.Logf("100 concurrent duplicates: %d charged, %d replayed, %d 409, %d other", fresh.Load(), replays.Load(), conflicts.Load(), other.Load())
	if fresh.Load() != 1 || replays.Load()+conflicts.Load() != 99 {
		t.Fatalf("%d fresh, %d replays, %d conflicts", fresh.Load(), replays.Load(), conflicts.Load())
	}
	f.expect("org_a", 4)
	if f.contacts("org_a") != 1 {
		t.Fatalf("%d contacts", f.contacts("org_a"))
	}
}

// TestFaults injects a fault at each step of a charged request, with and
// without an Idempotency-Key, and checks the answer and that the balance is
// exactly what the delivered work cost.
func TestFaults(t *testing.T) {
	type step struct {
		name  string
		rules func(s *ddbtest.Stack) []ddbtest.Rule
		key   bool
		// status is the answer; charged is whether the credit was taken.
		status  int
		charged bool
		detail  string
	}
	orgs := func(s *ddbtest.Stack) string { return s.Tables.Orgs }
	contacts := func(s *ddbtest.Stack) string { return s.Tables.Contacts }
	idem := func(s *ddbtest.Stack) string { return s.Tables.Idempotency }
	rule := func(op string, table func(*ddbtest.Stack) string, fault ddbtest.Fault, times int) func(*ddbtest.Stack) []ddbtest.Rule {
		return func(s *ddbtest.Stack) []ddbtest.Rule {
			return []ddbtest.Rule{{Op: op, Table: table(s), Fault: fault, Times: times}}
		}
	}
	steps := []step{
		// The debit, without a key: one UpdateItem, retried only when
		// DynamoDB certainly did not apply it.
		{"debit throttled twice", rule("UpdateItem", orgs, ddbtest.Throttle, 2), false, 200, true, ""},
		{"debit throttled throughout", rule("UpdateItem", orgs, ddbtest.Throttle, 99), false, 503, false, "nothing was charged"},
		{"debit 500 before landing", rule("UpdateItem", orgs, ddbtest.Unavailable, 1), false, 503, false, "at most once"},
		{"debit landed, answer lost", rule("UpdateItem", orgs, ddbtest.LostAnswer, 1), false, 503, true, "at most once"},
		{"debit landed, timed out", rule("UpdateItem", orgs, ddbtest.TimeoutAfter, 1), false, 503, true, "at most once"},
		// The debit with a key: one TransactWriteItems, which the SDK
		// retries safely, and whose record tells whether it landed.
		{"keyed debit throttled twice", rule("TransactWriteItems", orgs, ddbtest.Throttle, 2), true, 200, true, ""},
		{"keyed debit throttled throughout", rule("TransactWriteItems", orgs, ddbtest.Throttle, 99), true, 503, false, "nothing was charged"},
		{"keyed debit 500 before landing", rule("TransactWriteItems", orgs, ddbtest.Unavailable, 1), true, 200, true, ""},
		{"keyed debit landed, answer lost", rule("TransactWriteItems", orgs, ddbtest.LostAnswer, 1), true, 200, true, ""},
		{"keyed debit landed, timed out", rule("TransactWriteItems", orgs, ddbtest.TimeoutAfter, 1), true, 200, true, ""},
		// A conflicting transaction holds the organization item: nothing
		// was applied, so both paths try again and charge once.
		{"debit meets a transaction", rule("UpdateItem", orgs, ddbtest.Conflict, 2), false, 200, true, ""},
		{"keyed debit meets a transaction", rule("TransactWriteItems", orgs, ddbtest.Conflict, 3), true, 200, true, ""},
		{"keyed debit lost for good", rule("TransactWriteItems", orgs, ddbtest.LostAnswer, 99), true, 200, true, ""},
		// Right after the debit: the work's first write fails before it lands.
		{"after the debit", rule("PutItem", contacts, ddbtest.Unavailable, 99), false, 500, false, "not charged"},
		{"keyed, after the debit", rule("PutItem", contacts, ddbtest.Unavailable, 99), true, 500, false, "not charged"},
		// During the work: the write lands but its answer is lost once (the
		// SDK retries a Put, which is idempotent), or every time.
		{"during the work, once", rule("PutItem", contacts, ddbtest.LostAnswer, 1), false, 200, true, ""},
		{"during the work, throughout", rule("PutItem", contacts, ddbtest.TimeoutAfter, 99), false, 500, false, "not charged"},
		{"keyed, during the work", rule("PutItem", contacts, ddbtest.TimeoutAfter, 99), true, 500, false, "not charged"},
		// While writing the response: storing it for replays fails.
		{"keyed, storing the response", rule("UpdateItem", idem, ddbtest.Unavailable, 99), true, 200, true, ""},
		// The refund itself (a transaction on the orgs table) fails: 3 SDK
		// attempts of the first refund call, then the first attempt of the
		// second; its retry lands.
		{"refund fails, then succeeds", func(s *ddbtest.Stack) []ddbtest.Rule {
			return []ddbtest.Rule{
				{Op: "PutItem", Table: s.Tables.Contacts, Fault: ddbtest.Unavailable, Times: 99},
				{Op: "TransactWriteItems", Table: s.Tables.Orgs, Fault: ddbtest.Throttle, Times: 4},
			}
		}, false, 500, false, "not charged"},
		// The refund lands but its answer is lost every time: retried by
		// the SDK and by the caller, it is still made exactly once.
		{"refund lands, answers lost", func(s *ddbtest.Stack) []ddbtest.Rule {
			return []ddbtest.Rule{
				{Op: "PutItem", Table: s.Tables.Contacts, Fault: ddbtest.Unavailable, Times: 99},
				{Op: "TransactWriteItems", Table: s.Tables.Orgs, Fault: ddbtest.LostAnswer, Times: 99},
			}
		}, false, 500, false, "not charged"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
			// Warm the container's view so the debit is one write, as in
			// steady state; a cold one would make two.
			if r := f.post("/api/contacts/create", "", body, "org_a", "", "warm"); r.status != 200 {
				t.Fatal(r.body)
			}
			key := ""
			if s.key {
				key = "k-" + s.name
			}
			for _, r := range s.rules(f.stack) {
				f.faults.Add(r)
			}
			r := f.post("/api/contacts/create", "", body, "org_a", key, "req-"+s.name)
			if r.status != s.status || !strings.Contains(r.body, s.detail) {
				t.Fatalf("got %d %s, want %d with %q", r.status, r.body, s.status, s.detail)
			}
			want := int64(9)
			if s.charged {
				want = 8
			}
			if s.status != 200 && s.charged {
				tally.unconfirmed.Add(1)
				if !strings.Contains(f.logs.String(), `"msg":"debit unconfirmed"`) || !strings.Contains(f.logs.String(), `"request_id":"req-`+s.name+`"`) {
					t.Fatalf("an unconfirmed charge was not logged: %s", f.logs.String())
				}
			}
			f.expect("org_a", want)
			delivered := int32(1)
			if s.status == 200 {
				delivered = 2
			}
			if n := f.contacts("org_a"); n != delivered && s.status == 200 {
				t.Fatalf("%d contacts stored, want %d", n, delivered)
			}
			if s.key {
				// A retry with the same key after the faults are gone: a
				// replay if the first answer was stored, the work done once
				// more (and charged) if the first failed and was refunded.
				f.faults.Clear()
				f.clock.Store(60) // past any lease
				again := f.post("/api/contacts/create", "", body, "org_a", key, "retry-"+s.name)
				if again.status != 200 {
					t.Fatalf("retry: %d %s", again.status, again.body)
				}
				if !s.charged {
					want--
				}
				f.expect("org_a", want)
			}
		})
	}
}

// A DynamoDB that goes silent cannot hold a request past the invocation's
// deadline: the debit's call ends DeadlineReserve before it, and the client
// gets a 503 while the Lambda still has time to send it.
func TestSilentDynamoDBEndsBeforeTheInvocationDeadline(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	f.post("/api/contacts/create", "", body, "org_a", "", "warm")
	f.faults.Add(ddbtest.Rule{Op: "UpdateItem", Fault: ddbtest.Hang, Times: 99})
	// As the Lambda runtime would set it: the function's remaining time.
	ctx, cancel := context.WithTimeout(context.Background(), lambdas.DeadlineReserve+200*time.Millisecond)
	defer cancel()
	r := f.postCtx(ctx, "/api/contacts/create", "", body, "org_a", "", "silent")
	if r.status != 503 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if ctx.Err() != nil {
		t.Fatal("the answer came only after the invocation's deadline")
	}
	f.expect("org_a", 9) // the hung write never reached DynamoDB
}

func TestRefundFailureIsLoggedWithWhatIsOwed(t *testing.T) {
	f := newFaulty(t, map[string]credits.Balance{"org_a": {Subscription: 10}})
	if r := f.post("/api/contacts/create", "", body, "org_a", "", "warm"); r.status != 200 {
		t.Fatal(r.body)
	}
	// The work fails, and so does every refund attempt after the debit.
	f.faults.Add(ddbtest.Rule{Op: "PutItem", Table: f.stack.Tables.Contacts, Fault: ddbtest.Unavailable, Times: 99})
	f.faults.Add(ddbtest.Rule{Op: "TransactWriteItems", Table: f.stack.Tables.Orgs, Fault: ddbtest.Unavailable, Times: 99})
	r := f.post("/api/contacts/create", "required_credits=3", body, "org_a", "", "req-owed")
	if r.status != 500 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var owed map[string]any
	for _, line := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(line, "refund abandoned") {
			_ = json.Unmarshal([]byte(line), &owed)
		}
	}
	if owed["org_id"] != "org_a" || owed["amount"] != float64(3) || owed["request_id"] != "req-owed" || owed["level"] != "ERROR" {
		t.Fatalf("no complete record of the credits owed: %v\n%s", owed, f.logs.String())
	}
	if n := strings.Count(f.logs.String(), `"msg":"refund failed"`); n != 3 {
		t.Fatalf("%d refund attempts logged, want 3", n)
	}
	// The debit stands and is owed, not lost: the log says exactly what.
	if got := f.total("org_a"); got != 6 {
		t.Fatalf("balance %d", got)
	}
	tally.owed.Add(3)
}
