package rollover_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/rollover"
)

var (
	opened = time.Date(2026, 11, 15, 9, 0, 0, 0, time.UTC)
	now    = time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC)
	dec    = mustPeriod("2026-12")
	plan   = credits.Plan{ID: "pro", Monthly: 1000}
)

func mustPeriod(s string) credits.Period {
	p, err := credits.ParsePeriod(s)
	if err != nil {
		panic(err)
	}
	return p
}

type env struct {
	t     *testing.T
	s     *ddbtest.Stack
	store dynamo.Rollovers
	bal   *dynamo.Credits
}

func newEnv(t *testing.T) *env {
	s := ddbtest.New(t)
	return &env{t: t, s: s, store: dynamo.Rollovers{Client: s.Client, Table: s.Tables.Orgs},
		bal: &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}}
}

// open creates n organizations on p with balance b and returns their IDs.
func (e *env) open(prefix string, n int, p credits.Plan, b credits.Balance) []string {
	e.t.Helper()
	var orgs []string
	for i := range n {
		org := fmt.Sprintf("%s_%03d", prefix, i)
		if err := e.bal.Open(context.Background(), org, org, p, b, opened); err != nil {
			e.t.Fatal(err)
		}
		orgs = append(orgs, org)
	}
	return orgs
}

func (e *env) runner() *rollover.Runner {
	// Few shards, so that tests exercise several organizations per shard
	// and several shards at once.
	return &rollover.Runner{Store: e.store, Shards: dynamo.RolloverShards, Parallel: 4, Now: func() time.Time { return now }}
}

func (e *env) balance(org string) credits.Balance {
	e.t.Helper()
	b, err := e.bal.Balance(context.Background(), org)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// ledger lists an organization's ledger entries, oldest first.
func (e *env) ledger(org string) []credits.Entry {
	e.t.Helper()
	key := expression.Key("org_id").Equal(expression.Value(org)).And(expression.Key("sk").BeginsWith(dynamo.LedgerPrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := e.s.Client.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(e.s.Tables.Orgs), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var entries []credits.Entry
	for _, it := range out.Items {
		en, err := dynamo.DecodeEntry(it)
		if err != nil {
			e.t.Fatal(err)
		}
		entries = append(entries, en)
	}
	return entries
}

// grantedOnce checks that org got period dec exactly once: its
// subscription is want and its ledger holds one rollover entry for dec.
func (e *env) grantedOnce(org string, want int64, amount int64) {
	e.t.Helper()
	if got := e.balance(org).Subscription; got != want {
		e.t.Errorf("%s: subscription %d, want %d", org, got, want)
	}
	var n int
	for _, en := range e.ledger(org) {
		if en.Type == credits.EntryRollover {
			n++
			if en.Period != "2026-12" || en.Amount != amount || en.Bucket != credits.Subscription {
				e.t.Errorf("%s: rollover entry %+v", org, en)
			}
		}
	}
	if n != 1 {
		e.t.Errorf("%s: %d rollover entries, want 1", org, n)
	}
}

func TestRunTwiceGrantsOnce(t *testing.T) {
	e := newEnv(t)
	orgs := e.open("org", 40, plan, credits.Balance{Subscription: 250, Purchased: 7})
	rep, err := e.runner().Run(context.Background(), dec)
	if err != nil || !rep.Done || rep.Granted != 40 || rep.Credits != 40_000 {
		t.Fatalf("first run: %+v, %v", rep, err)
	}
	rep, err = e.runner().Run(context.Background(), dec)
	if err != nil || !rep.Done || rep.Granted != 0 {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
	for _, org := range orgs {
		e.grantedOnce(org, 1250, 1000)
		if b := e.balance(org); b.Purchased != 7 {
			t.Errorf("%s: purchased %d", org, b.Purchased)
		}
	}
	// The organizations are now due next month, and only then.
	if rep, err := e.runner().Run(context.Background(), dec.Next()); err != nil || rep.Granted != 40 {
		t.Fatalf("next month: %+v, %v", rep, err)
	}
	if got := e.balance(orgs[0]).Subscription; got != 2250 {
		t.Fatalf("after January: %d", got)
	}
}

func TestConcurrentRunsGrantOnce(t *testing.T) {
	e := newEnv(t)
	orgs := e.open("org", 60, plan, credits.Balance{Subscription: 10})
	var wg sync.WaitGroup
	var granted atomic.Int64
	for range 4 {
		wg.Go(func() {
			rep, err := e.runner().Run(context.Background(), dec)
			if err != nil || !rep.Done {
				t.Errorf("run: %+v, %v", rep, err)
			}
			granted.Add(int64(rep.Granted))
		})
	}
	wg.Wait()
	if granted.Load() != 60 {
		t.Errorf("runs granted %d organizations in all, want 60", granted.Load())
	}
	for _, org := range orgs {
		e.grantedOnce(org, 1010, 1000)
	}
}

func TestKilledHalfWayThenRerunGrantsEachOnce(t *testing.T) {
	e := newEnv(t)
	orgs := e.open("org", 50, plan, credits.Balance{Subscription: 5})
	const k = 12
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	var seen atomic.Int64
	r := e.runner()
	r.OnOutcome = func(o dynamo.RolloverOutcome) {
		if o.Status == dynamo.Granted && seen.Add(1) == k {
			kill()
		}
	}
	rep, err := r.Run(ctx, dec)
	if !errors.Is(err, rollover.ErrIncomplete) || rep.Done || rep.Granted < k || rep.Granted >= 50 {
		t.Fatalf("killed run: %+v, %v", rep, err)
	}
	rep2, err := e.runner().Run(context.Background(), dec)
	if err != nil || !rep2.Done {
		t.Fatalf("re-run: %+v, %v", rep2, err)
	}
	// A write cut off by the kill may have landed without being counted,
	// so the two runs' counts may not add up; the items are the truth.
	if rep.Granted+rep2.Granted > 50 {
		t.Errorf("granted %d + %d", rep.Granted, rep2.Granted)
	}
	for _, org := range orgs {
		e.grantedOnce(org, 1005, 1000)
	}
}

func TestDebitsDuringRolloverAreKept(t *testing.T) {
	e := newEnv(t)
	p := credits.Plan{ID: "pro", Monthly: 1000, RolloverCap: 1_000_000}
	orgs := e.open("org", 8, p, credits.Balance{Subscription: 300, Purchased: 500})
	var debited [8]atomic.Int64
	stop := make(chan struct{})
	var wg, ready sync.WaitGroup
	for i, org := range orgs {
		for range 2 {
			ready.Add(1)
			wg.Go(func() {
				first := sync.OnceFunc(ready.Done)
				// Separate Credits values are separate containers, each
				// with its own (soon stale) view of the balance.
				c := &dynamo.Credits{Client: e.s.Client, Table: e.s.Tables.Orgs}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := c.Debit(context.Background(), org, 3, now); err == nil {
						debited[i].Add(3)
						first()
					} else if !errors.Is(err, dynamo.ErrContention) {
						t.Error(err)
						first()
						return
					}
				}
			})
		}
	}
	// Let every debitor land at least one charge before the rollover, so
	// that the rollover meets balances that move.
	ready.Wait()
	rep, err := e.runner().Run(context.Background(), dec)
	close(stop)
	wg.Wait()
	if err != nil || rep.Granted != len(orgs) {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	for i, org := range orgs {
		b := e.balance(org)
		if got, want := b.Subscription+b.Purchased, int64(300+500+1000)-debited[i].Load(); got != want {
			t.Errorf("%s: balance %d, want 300+500+1000-%d = %d", org, got, debited[i].Load(), want)
		}
		var n int
		for _, en := range e.ledger(org) {
			if en.Type == credits.EntryRollover {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d rollover entries", org, n)
		}
	}
}

func TestCapIsRespected(t *testing.T) {
	e := newEnv(t)
	p := credits.Plan{ID: "capped", Monthly: 1000, RolloverCap: 3000}
	under := e.open("under", 1, p, credits.Balance{Subscription: 1500})[0]
	near := e.open("near", 1, p, credits.Balance{Subscription: 2500})[0]
	over := e.open("over", 1, p, credits.Balance{Subscription: 4000})[0]
	if rep, err := e.runner().Run(context.Background(), dec); err != nil || rep.Granted != 3 || rep.Credits != 1500 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	e.grantedOnce(under, 2500, 1000)
	e.grantedOnce(near, 3000, 500)
	// Above the cap already: nothing added, nothing taken, and the ledger
	// says the period was handled.
	e.grantedOnce(over, 4000, 0)
}

func TestExpiredBonusIsRemovedWithItsLedgerEntry(t *testing.T) {
	e := newEnv(t)
	b := credits.Balance{Subscription: 100, BonusRev: 2, Bonus: []credits.Grant{
		{ID: "gone", Remaining: 40, ExpiresAt: now.Add(-time.Hour)},
		{ID: "spent", Remaining: 0, ExpiresAt: now.Add(-time.Hour)},
		{ID: "later", Remaining: 25, ExpiresAt: now.Add(24 * time.Hour)},
		{ID: "forever", Remaining: 5},
	}}
	org := e.open("org", 1, plan, b)[0]
	rep, err := e.runner().Run(context.Background(), dec)
	if err != nil || rep.ExpiredGrants != 2 || rep.ExpiredCredits != 40 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	got := e.balance(org)
	want := credits.Balance{Subscription: 1100, BonusRev: 2, Bonus: []credits.Grant{
		{ID: "forever", Remaining: 5},
		{ID: "later", Remaining: 25, ExpiresAt: now.Add(24 * time.Hour)},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("balance\n got %+v\nwant %+v", got, want)
	}
	entries := e.ledger(org)
	if len(entries) != 2 {
		t.Fatalf("ledger %+v", entries)
	}
	exp, roll := entries[0], entries[1]
	if exp.Type != credits.EntryExpiry || exp.GrantID != "gone" || exp.Amount != -40 || exp.Bucket != credits.Bonus ||
		exp.Period != "2026-12" || exp.BalanceAfter != 130 {
		t.Errorf("expiry entry %+v", exp)
	}
	if roll.Type != credits.EntryRollover || roll.Amount != 1000 || roll.BalanceAfter != 1130 {
		t.Errorf("rollover entry %+v", roll)
	}
}

func TestOrganizationWithoutPlanIsUntouched(t *testing.T) {
	e := newEnv(t)
	b := credits.Balance{Subscription: 100, Bonus: []credits.Grant{{ID: "gone", Remaining: 40, ExpiresAt: now.Add(-time.Hour)}}}
	org := e.open("free", 1, credits.Plan{}, b)[0]
	e.open("paid", 3, plan, credits.Balance{})
	before := e.item(org)
	rep, err := e.runner().Run(context.Background(), dec)
	if err != nil || rep.Granted != 3 || rep.Skipped != 0 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	if after := e.item(org); !reflect.DeepEqual(before, after) {
		t.Fatalf("item changed\nbefore %v\n after %v", before, after)
	}
	if l := e.ledger(org); len(l) != 0 {
		t.Fatalf("ledger %+v", l)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	orgs := e.open("org", 5, plan, credits.Balance{Subscription: 1, Bonus: []credits.Grant{{ID: "g", Remaining: 3, ExpiresAt: now.Add(-time.Hour)}}})
	before := e.item(orgs[0])
	r := e.runner()
	r.DryRun = true
	var mu sync.Mutex
	var outs []dynamo.RolloverOutcome
	r.OnOutcome = func(o dynamo.RolloverOutcome) { mu.Lock(); outs = append(outs, o); mu.Unlock() }
	rep, err := r.Run(context.Background(), dec)
	if err != nil || rep.Granted != 5 || rep.Credits != 5000 || rep.ExpiredCredits != 15 || len(outs) != 5 {
		t.Fatalf("dry run: %+v, %v, %d outcomes", rep, err, len(outs))
	}
	if a := outs[0].Rollover.After(); a.Subscription != 1001 || len(a.Bonus) != 0 {
		t.Fatalf("dry outcome after %+v", a)
	}
	if after := e.item(orgs[0]); !reflect.DeepEqual(before, after) || len(e.ledger(orgs[0])) != 0 {
		t.Fatal("dry run wrote")
	}
	if rep, err := e.runner().Run(context.Background(), dec); err != nil || rep.Granted != 5 {
		t.Fatalf("real run after dry run: %+v, %v", rep, err)
	}
}

// item is the whole organization item, for before/after comparisons.
func (e *env) item(org string) map[string]any {
	e.t.Helper()
	out, err := e.s.Client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.s.Tables.Orgs), ConsistentRead: aws.Bool(true), Key: map[string]types.AttributeValue{
			"org_id": &types.AttributeValueMemberS{Value: org}, "sk": &types.AttributeValueMemberS{Value: dynamo.OrgSK},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil || len(m) == 0 {
		e.t.Fatalf("item %v: %v", out.Item, err)
	}
	return m
}
