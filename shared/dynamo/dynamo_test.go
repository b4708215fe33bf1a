package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/testkeys"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// counting wraps the real client to count the writes a charge costs.
type counting struct {
	dynamo.Client
	updates atomic.Int64
	gets    atomic.Int64
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.updates.Add(1)
	return c.Client.UpdateItem(ctx, in, opts...)
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.Client.GetItem(ctx, in, opts...)
}

func open(t *testing.T, b credits.Balance) (*ddbtest.Stack, string) {
	t.Helper()
	s := ddbtest.New(t)
	org := "org_" + t.Name()
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	if err := c.Open(context.Background(), org, "Test", credits.Plan{}, b, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Open(context.Background(), org, "Test", credits.Plan{}, b, now); !errors.Is(err, dynamo.ErrExists) {
		t.Fatalf("second open: %v", err)
	}
	return s, org
}

func balance(t *testing.T, s *ddbtest.Stack, org string) credits.Balance {
	t.Helper()
	b, err := (&dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}).Balance(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDebitCommonCaseIsOneWrite(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 10, Purchased: 5})
	cc := &counting{Client: s.Client}
	c := &dynamo.Credits{Client: cc, Table: s.Tables.Orgs}
	for i := 0; i < 3; i++ {
		_, after, err := c.Debit(context.Background(), org, 2, now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := after.Subscription, int64(10-2*(i+1)); got != want {
			t.Fatalf("after %d: subscription %d, want %d", i, got, want)
		}
	}
	if n := cc.updates.Load(); n != 3 {
		t.Fatalf("%d UpdateItem calls for 3 charges, want 3", n)
	}
	if cc.gets.Load() != 0 {
		t.Fatal("a charge read the item")
	}
}

func TestDebitSpansBucketsInOrderAndSkipsExpired(t *testing.T) {
	s, org := open(t, credits.Balance{
		Subscription: 3, Purchased: 10, BonusRev: 1,
		Bonus: []credits.Grant{
			{ID: "expired", Remaining: 100, ExpiresAt: now},
			{ID: "soon", Remaining: 2, ExpiresAt: now.Add(time.Hour)},
			{ID: "forever", Remaining: 1},
		},
	})
	cc := &counting{Client: s.Client}
	c := &dynamo.Credits{Client: cc, Table: s.Tables.Orgs}
	// Cold: the first write guesses subscription only, fails, and the
	// returned item lets the second write take the right buckets.
	d, after, err := c.Debit(context.Background(), org, 7, now)
	if err != nil {
		t.Fatal(err)
	}
	if cc.updates.Load() != 2 {
		t.Fatalf("%d writes, want 2 (guess + replan)", cc.updates.Load())
	}
	if len(d.Takes) != 4 {
		t.Fatalf("takes %+v", d.Takes)
	}
	got := balance(t, s, org)
	if got.Subscription != 0 || got.Purchased != 9 || got.Total(now) != 9 {
		t.Fatalf("balance %+v", got)
	}
	for _, g := range got.Bonus {
		want := map[string]int64{"expired": 100, "soon": 0, "forever": 0}[g.ID]
		if g.Remaining != want {
			t.Fatalf("grant %s has %d, want %d", g.ID, g.Remaining, want)
		}
	}
	if after.Total(now) != 9 {
		t.Fatalf("returned balance %d", after.Total(now))
	}
}

func TestGrantExpiringBetweenPlanAndWriteIsNotSpent(t *testing.T) {
	s, org := open(t, credits.Balance{Purchased: 5, BonusRev: 1, Bonus: []credits.Grant{{ID: "g", Remaining: 5, ExpiresAt: now.Add(time.Second)}}})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	if _, _, err := c.Debit(context.Background(), org, 1, now); err != nil {
		t.Fatal(err)
	}
	// The warm view still lists the grant; at its expiry the write's own
	// condition refuses it and the charge falls through to purchased.
	later := now.Add(time.Second)
	if _, _, err := c.Debit(context.Background(), org, 1, later); err != nil {
		t.Fatal(err)
	}
	got := balance(t, s, org)
	if got.Bonus[0].Remaining != 4 || got.Purchased != 4 {
		t.Fatalf("balance %+v", got)
	}
}

func TestStaleViewNeverSkipsANewGrant(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 10})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	if _, _, err := c.Debit(context.Background(), org, 1, now); err != nil {
		t.Fatal(err)
	}
	// Someone else adds a bonus grant; c's view does not know it.
	item, _ := dynamo.EncodeBalance(credits.Balance{Subscription: 9, BonusRev: 1, Bonus: []credits.Grant{{ID: "new", Remaining: 3}}})
	replace(t, s, org, item)
	if _, _, err := c.Debit(context.Background(), org, 2, now); err != nil {
		t.Fatal(err)
	}
	got := balance(t, s, org)
	if got.Subscription != 9 || got.Bonus[0].Remaining != 1 {
		t.Fatalf("charge skipped the new grant: %+v", got)
	}
}

func TestInsufficientChangesNothing(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 1, Purchased: 1, BonusRev: 2, Bonus: []credits.Grant{{ID: "b", Remaining: 1}}})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	before := balance(t, s, org)
	if _, _, err := c.Debit(context.Background(), org, 4, now); !errors.Is(err, credits.ErrInsufficient) {
		t.Fatalf("got %v", err)
	}
	if after := balance(t, s, org); after.Total(now) != before.Total(now) || after.Subscription != 1 {
		t.Fatalf("balance changed: %+v", after)
	}
	if _, _, err := c.Debit(context.Background(), "org_missing", 1, now); !errors.Is(err, credits.ErrInsufficient) {
		t.Fatalf("unknown org: %v", err)
	}
}

func TestConcurrentDebitsNeverOverspend(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 20, Purchased: 20, BonusRev: 1, Bonus: []credits.Grant{
		{ID: "a", Remaining: 7, ExpiresAt: now.Add(time.Hour)}, {ID: "b", Remaining: 9},
	}})
	start := balance(t, s, org).Total(now)
	var charged atomic.Int64
	var wg sync.WaitGroup
	for i := range 120 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A container each, as Lambda would run them, some warm, some cold.
			c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
			n := int64(i%3 + 1)
			_, _, err := c.Debit(context.Background(), org, n, now)
			switch {
			case err == nil:
				charged.Add(n)
			case errors.Is(err, credits.ErrInsufficient):
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	end := balance(t, s, org)
	if end.Total(now) != start-charged.Load() {
		t.Fatalf("start %d - charged %d != end %d", start, charged.Load(), end.Total(now))
	}
	if end.Subscription < 0 || end.Purchased < 0 || end.Bonus[0].Remaining < 0 || end.Bonus[1].Remaining < 0 {
		t.Fatalf("negative bucket: %+v", end)
	}
	if end.Total(now) > 2 {
		t.Fatalf("requests were refused while %d credits were left", end.Total(now))
	}
}

func TestRefundRestoresEveryBucket(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 2, Purchased: 5, BonusRev: 1, Bonus: []credits.Grant{{ID: "g", Remaining: 1}}})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	d, _, err := c.Debit(context.Background(), org, 5, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refund(context.Background(), org, d); err != nil {
		t.Fatal(err)
	}
	got := balance(t, s, org)
	if got.Subscription != 2 || got.Purchased != 5 || got.Bonus[0].Remaining != 1 {
		t.Fatalf("after refund %+v", got)
	}
}

func TestRefundSkipsSweptGrant(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 2, BonusRev: 1, Bonus: []credits.Grant{{ID: "g", Remaining: 1, ExpiresAt: now.Add(time.Minute)}}})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	d, _, err := c.Debit(context.Background(), org, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	item, _ := dynamo.EncodeBalance(credits.Balance{Subscription: 1, BonusRev: 1})
	replace(t, s, org, item)
	if _, err := c.Refund(context.Background(), org, d); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, s, org); got.Subscription != 2 || len(got.Bonus) != 0 {
		t.Fatalf("after refund %+v", got)
	}
}

func TestKeysLookup(t *testing.T) {
	s := ddbtest.New(t)
	keys := dynamo.Keys{Client: s.Client, Table: s.Tables.Keys}
	k, rec, err := apikey.Issue("org_1", "ci", now, now.Add(90*time.Minute+500*time.Millisecond))
	testkeys.Record(t, string(k))
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := keys.Put(context.Background(), rec); !errors.Is(err, dynamo.ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	got, err := keys.Lookup(context.Background(), k.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if got.OrgID != "org_1" || got.ID != rec.ID || got.Display != k.Display() || !got.Created.Equal(now) {
		t.Fatalf("record %+v", got)
	}
	// Stored TTL is whole seconds, rounded up so the key never dies early.
	if want := now.Add(91 * time.Minute); !got.Expires.Equal(now.Add(90*time.Minute + time.Second)) {
		t.Fatalf("expires %v (want just after %v)", got.Expires, want)
	}
	if _, err := keys.Lookup(context.Background(), apikey.Key("nope").Hash()); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestRefundIsMadeOnceHoweverOftenItIsCalled(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 5, Purchased: 5})
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	d, _, err := c.Debit(context.Background(), org, 7, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" {
		t.Fatal("a made charge has no ID")
	}
	// The second call comes after the first was settled into the ledger,
	// the third as a fresh container would make it.
	for _, cc := range []*dynamo.Credits{c, c, {Client: s.Client, Table: s.Tables.Orgs}} {
		if _, err := cc.Refund(context.Background(), org, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := balance(t, s, org); got.Subscription != 5 || got.Purchased != 5 {
		t.Fatalf("after three refunds of one charge: %+v", got)
	}
}

func TestRefundWithALostAnswerIsMadeOnce(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 5})
	faults := &ddbtest.Faults{}
	c := &dynamo.Credits{Client: s.ClientWith(faults), Table: s.Tables.Orgs}
	d, _, err := c.Debit(context.Background(), org, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	// The refund's transaction lands but its answer is lost, every time:
	// the SDK's retries and the caller's must not give the credits twice.
	faults.Add(ddbtest.Rule{Op: "TransactWriteItems", Fault: ddbtest.LostAnswer, Times: 99})
	for range 2 {
		_, _ = c.Refund(context.Background(), org, d)
	}
	faults.Clear()
	if _, err := c.Refund(context.Background(), org, d); err != nil {
		t.Fatal(err)
	}
	if got := balance(t, s, org); got.Subscription != 5 {
		t.Fatalf("subscription %d after a refund of 3 from 2, want 5", got.Subscription)
	}
	if faults.Injected() == 0 {
		t.Fatal("no fault was injected")
	}
}
