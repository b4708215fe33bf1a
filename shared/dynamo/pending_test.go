package dynamo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
)

// crashingSettle fails the next n transactions that would settle ledger
// entries, as a process dying after a change and before its ledger write would.
type crashingSettle struct {
	*dynamodb.Client
	n atomic.Int64
}

func (c *crashingSettle) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	settles := false
	for _, it := range in.TransactItems {
		if it.Put != nil && it.Put.Item["entry_id"] != nil {
			settles = true
		}
	}
	if settles && c.n.Add(-1) >= 0 {
		return nil, errors.New("injected crash before the ledger write")
	}
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

func ledgerOf(t *testing.T, o dynamo.Orgs, org string) []credits.Entry {
	t.Helper()
	p, err := o.Ledger(context.Background(), org, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	return p.Entries
}

func TestInterruptedChangesSettleLater(t *testing.T) {
	s := ddbtest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	crash := &crashingSettle{Client: s.Client}
	o := dynamo.Orgs{Client: crash, Table: s.Tables.Orgs}
	opening := credits.Entry{ID: "open", OrgID: "org_a", At: now, Type: credits.EntryGrant, Bucket: credits.Subscription, Amount: 100}
	if err := o.Create(ctx, "org_a", "A", credits.Plan{ID: "free", Monthly: 100, RolloverCap: 100}, opening); err != nil {
		t.Fatal(err)
	}

	// A referenced grant whose settle crashes: the retry with the same
	// reference finds it applied, settles it and adds nothing.
	grant := dynamo.Change{Entry: credits.Entry{ID: "g1", OrgID: "org_a", At: now, Type: credits.EntryGrant, Bucket: credits.Purchased, Amount: 10, Reference: "pay_1"}}
	crash.n.Store(1)
	if _, _, err := o.Apply(ctx, grant); err == nil {
		t.Fatal("the injected crash did not happen")
	}
	retry := grant
	retry.Entry.ID = "g1-retry"
	e, dup, err := o.Apply(ctx, retry)
	if err != nil || !dup || e.ID != "g1" || e.BalanceAfter != 110 {
		t.Fatalf("retry after a crash: %+v dup=%v err=%v", e, dup, err)
	}

	// An adjustment whose settle crashes is still reported as made (a
	// retry would add twice); the next read writes its ledger entry.
	crash.n.Store(1)
	adj := dynamo.Change{Entry: credits.Entry{ID: "a1", OrgID: "org_a", At: now, Type: credits.EntryAdjustment, Bucket: credits.Subscription, Amount: -30, Reason: "fix"}}
	if e, _, err := o.Apply(ctx, adj); err != nil || e.BalanceAfter != 80 {
		t.Fatalf("adjustment: %+v %v", e, err)
	}
	if _, ok := mustItem(t, s, "org_a")["pending:a1"]; !ok {
		t.Fatal("the crashed adjustment left no pending entry; was there a crash?")
	}
	// A refund whose settle crashes: the same.
	c := &dynamo.Credits{Client: crash, Table: s.Tables.Orgs, Clock: func() time.Time { return now }}
	d, _, err := c.Debit(ctx, "org_a", 5, now)
	if err != nil {
		t.Fatal(err)
	}
	crash.n.Store(1)
	if _, err := c.Refund(ctx, "org_a", d); err != nil {
		t.Fatal(err)
	}
	got := map[credits.EntryType][]credits.Entry{}
	for _, e := range ledgerOf(t, o, "org_a") {
		got[e.Type] = append(got[e.Type], e)
	}
	g, a, r := got[credits.EntryGrant], got[credits.EntryAdjustment], got[credits.EntryRefund]
	if len(g) != 2 || len(a) != 1 || len(r) != 1 || a[0].BalanceAfter != 80 || r[0].BalanceAfter != 80 || r[0].Amount != 5 {
		t.Errorf("ledger: %+v", got)
	}
	for _, e := range g {
		if e.ID == "g1" && e.BalanceAfter != 110 {
			t.Errorf("grant: %+v", e)
		}
	}
	org, err := o.Get(ctx, "org_a")
	if err != nil {
		t.Fatal(err)
	}
	if total := org.Balance.Total(now); total != 80 || org.Used[dynamo.UsagePeriod(now)] != 5 {
		t.Errorf("org after everything: %+v", org)
	}
	for name := range mustItem(t, s, "org_a") {
		if len(name) > 8 && name[:8] == "pending:" {
			t.Errorf("pending attribute %s left on the item", name)
		}
	}
}

func mustItem(t *testing.T, s *ddbtest.Stack, org string) map[string]types.AttributeValue {
	t.Helper()
	out, err := s.Client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(s.Tables.Orgs),
		Key: map[string]types.AttributeValue{
			"org_id": &types.AttributeValueMemberS{Value: org},
			"sk":     &types.AttributeValueMemberS{Value: dynamo.OrgSK},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// conflicting refuses the next n UpdateItems as DynamoDB does while a
// transaction holds the item.
type conflicting struct {
	*dynamodb.Client
	n atomic.Int64
}

func (c *conflicting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.n.Add(-1) >= 0 {
		return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return c.Client.UpdateItem(ctx, in, opts...)
}

func TestDebitRetriesATransactionConflict(t *testing.T) {
	s := ddbtest.New(t)
	ctx := context.Background()
	now := time.Now()
	cc := &conflicting{Client: s.Client}
	c := &dynamo.Credits{Client: cc, Table: s.Tables.Orgs}
	if err := c.Open(ctx, "org_a", "A", credits.Plan{}, credits.Balance{Subscription: 10}, now); err != nil {
		t.Fatal(err)
	}
	cc.n.Store(2)
	_, after, err := c.Debit(ctx, "org_a", 3, now)
	if err != nil || after.Subscription != 7 {
		t.Fatalf("debit through two conflicts: %+v %v", after, err)
	}
	if b, _ := c.Balance(ctx, "org_a"); b.Subscription != 7 {
		t.Errorf("charged %d, want 3 once", 10-b.Subscription)
	}
}
