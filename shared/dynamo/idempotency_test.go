package dynamo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/idempotency"
)

func idem(s *ddbtest.Stack) *dynamo.Idempotency {
	return &dynamo.Idempotency{Client: s.Client, Table: s.Tables.Idempotency, Credits: &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}}
}

func claim(key, token string) idempotency.Claim {
	return idempotency.Claim{Key: key, Fingerprint: "fp", Token: token, LeaseUntil: now.Add(10 * time.Second)}
}

func total(t *testing.T, s *ddbtest.Stack, org string) int64 {
	t.Helper()
	b, err := (&dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}).Balance(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	return b.Total(now)
}

func TestIdempotentChargeClaimsAndCharges(t *testing.T) {
	// Purchased only: the cold guess (subscription pays) is wrong, so the
	// transaction must replan from the item its cancellation returns.
	s, org := open(t, credits.Balance{Purchased: 5})
	i := idem(s)
	ctx := context.Background()
	d, after, err := i.Charge(ctx, org, claim("k1", "req-1"), 2, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Amount != 2 || after.Total(now) != 3 || total(t, s, org) != 3 {
		t.Fatalf("debit %+v, after %d, stored %d", d, after.Total(now), total(t, s, org))
	}
	rec, found, err := i.Get(ctx, org, "k1")
	if err != nil || !found || rec.Status != idempotency.InProgress || rec.Token != "req-1" || rec.Debit.Amount != 2 || !rec.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("record %+v %v %v", rec, found, err)
	}

	// A duplicate is refused with the record and charges nothing.
	_, _, err = i.Charge(ctx, org, claim("k1", "req-2"), 2, now)
	var ex *idempotency.ExistsError
	if !errors.As(err, &ex) || ex.Record.Token != "req-1" {
		t.Fatalf("duplicate: %v", err)
	}
	if total(t, s, org) != 3 {
		t.Fatal("duplicate charged")
	}

	if err := i.Complete(ctx, org, claim("k1", "req-2"), 200, []byte("x")); !errors.Is(err, idempotency.ErrLost) {
		t.Fatalf("complete by a non-holder: %v", err)
	}
	if err := i.Complete(ctx, org, claim("k1", "req-1"), 200, []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	rec, _, _ = i.Get(ctx, org, "k1")
	if rec.Status != idempotency.Done || rec.ResponseStatus != 200 || string(rec.ResponseBody) != `{"ok":true}` || !rec.LeaseUntil.IsZero() {
		t.Fatalf("completed record %+v", rec)
	}

	// Another organization's identical key is its own.
	s2org := org + "_other"
	if err := i.Credits.Open(ctx, s2org, "x", credits.Plan{}, credits.Balance{Subscription: 1}, now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := i.Charge(ctx, s2org, claim("k1", "req-3"), 1, now); err != nil {
		t.Fatalf("other org's same key: %v", err)
	}
}

func TestDuplicateAtZeroBalanceIsStillADuplicate(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 1})
	i := idem(s)
	ctx := context.Background()
	if _, _, err := i.Charge(ctx, org, claim("k", "a"), 1, now); err != nil {
		t.Fatal(err)
	}
	// Both conditions fail now; the record's must win, or a replay would be a 402.
	i2 := idem(s) // a cold container
	_, _, err := i2.Charge(ctx, org, claim("k", "b"), 1, now)
	var ex *idempotency.ExistsError
	if !errors.As(err, &ex) {
		t.Fatalf("got %v, want ExistsError", err)
	}
	_, _, err = i.Charge(ctx, org, claim("k", "c"), 1, now) // a warm one, whose plan already says 402
	if !errors.As(err, &ex) {
		t.Fatalf("warm: %v", err)
	}
}

func TestInsufficientLeavesNoRecord(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 1})
	i := idem(s)
	if _, _, err := i.Charge(context.Background(), org, claim("k", "a"), 2, now); !errors.Is(err, credits.ErrInsufficient) {
		t.Fatalf("got %v", err)
	}
	if _, found, _ := i.Get(context.Background(), org, "k"); found {
		t.Fatal("a refused charge left a record")
	}
}

func TestExpiredRecordIsReplaced(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 5})
	i := idem(s)
	ctx := context.Background()
	if _, _, err := i.Charge(ctx, org, claim("k", "a"), 1, now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(idempotency.Window)
	if _, _, err := i.Charge(ctx, org, claim("k", "b"), 1, later); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	rec, _, _ := i.Get(ctx, org, "k")
	if rec.Token != "b" || total(t, s, org) != 3 {
		t.Fatalf("record %+v, balance %d", rec, total(t, s, org))
	}
}

func TestReleaseAndTakeOver(t *testing.T) {
	s, org := open(t, credits.Balance{Subscription: 5})
	i := idem(s)
	ctx := context.Background()
	if _, _, err := i.Charge(ctx, org, claim("k", "a"), 1, now); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := i.Get(ctx, org, "k")
	if _, err := i.TakeOver(ctx, org, rec, claim("k", "b"), now); !errors.Is(err, idempotency.ErrLost) {
		t.Fatalf("take-over within the lease: %v", err)
	}
	got, err := i.TakeOver(ctx, org, rec, claim("k", "b"), now.Add(10*time.Second))
	if err != nil || got.Token != "b" || got.Debit.Amount != 1 {
		t.Fatalf("take-over: %+v %v", got, err)
	}
	if err := i.Release(ctx, org, claim("k", "a")); !errors.Is(err, idempotency.ErrLost) {
		t.Fatalf("release by the old holder: %v", err)
	}
	if err := i.Release(ctx, org, claim("k", "b")); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := i.Get(ctx, org, "k"); found {
		t.Fatal("released record still there")
	}
}
