package credits

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestPlanOrder(t *testing.T) {
	b := Balance{
		Subscription: 10,
		Purchased:    100,
		BonusRev:     3,
		Bonus: []Grant{
			{ID: "forever", Remaining: 5},
			{ID: "late", Remaining: 2, ExpiresAt: now.Add(48 * time.Hour)},
			{ID: "soon", Remaining: 1, ExpiresAt: now.Add(time.Hour)},
			{ID: "gone", Remaining: 50, ExpiresAt: now},
		},
	}
	d, err := PlanDebit(b, 20, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Take{
		{Bucket: Bonus, GrantID: "soon", Amount: 1, Exact: true, ExpiresAt: now.Add(time.Hour)},
		{Bucket: Bonus, GrantID: "late", Amount: 2, Exact: true, ExpiresAt: now.Add(48 * time.Hour)},
		{Bucket: Bonus, GrantID: "forever", Amount: 5, Exact: true},
		{Bucket: Subscription, Amount: 10, Exact: true},
		{Bucket: Purchased, Amount: 2},
	}
	if !reflect.DeepEqual(d.Takes, want) {
		t.Fatalf("takes\n got %+v\nwant %+v", d.Takes, want)
	}
	if d.BonusRev != 3 || d.Amount != 20 {
		t.Fatalf("debit %+v", d)
	}
	after := b.Apply(d)
	if got := after.Total(now); got != b.Total(now)-20 {
		t.Fatalf("total after %d", got)
	}
	if after.Undo(d).Total(now) != b.Total(now) {
		t.Fatal("undo does not restore")
	}
}

func TestPlanCommonCaseTouchesOneBucket(t *testing.T) {
	d, err := PlanDebit(Balance{Subscription: 50, Purchased: 5}, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Takes) != 1 || d.Takes[0] != (Take{Bucket: Subscription, Amount: 1}) {
		t.Fatalf("%+v", d.Takes)
	}
}

func TestPlanEmptySubscriptionIsStillConditioned(t *testing.T) {
	d, err := PlanDebit(Balance{Purchased: 5}, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Take{{Bucket: Subscription, Amount: 0, Exact: true}, {Bucket: Purchased, Amount: 2}}
	if !reflect.DeepEqual(d.Takes, want) {
		t.Fatalf("%+v", d.Takes)
	}
}

func TestExpiredGrantNeverCounts(t *testing.T) {
	b := Balance{Bonus: []Grant{{ID: "g", Remaining: 10, ExpiresAt: now}}}
	if b.Total(now) != 0 {
		t.Fatal("expired grant counted at its expiry instant")
	}
	if b.Total(now.Add(-time.Nanosecond)) != 10 {
		t.Fatal("grant not live just before expiry")
	}
	if _, err := PlanDebit(b, 1, now); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("got %v", err)
	}
}

func TestPlanRejects(t *testing.T) {
	if _, err := PlanDebit(Balance{Subscription: 3}, 4, now); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("got %v", err)
	}
	for _, n := range []int64{0, -1} {
		if _, err := PlanDebit(Balance{Subscription: 3}, n, now); !errors.Is(err, ErrInvalidAmount) {
			t.Fatalf("n=%d: got %v", n, err)
		}
	}
}

func TestPlanExactlyAll(t *testing.T) {
	b := Balance{Subscription: 2, Purchased: 3, Bonus: []Grant{{ID: "a", Remaining: 1}}}
	d, err := PlanDebit(b, 6, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.Apply(d).Total(now) != 0 {
		t.Fatal("not drained")
	}
	for _, tk := range d.Takes {
		if !tk.Exact {
			t.Fatalf("take %+v should be exact", tk)
		}
	}
}
