package admin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/testkeys"
)

type fixture struct {
	t     *testing.T
	stack *ddbtest.Stack
	svc   *admin.Service
	now   time.Time
	logs  *bytes.Buffer
	ctx   context.Context
}

func setup(t *testing.T) *fixture {
	t.Helper()
	s := ddbtest.New(t)
	logs := &bytes.Buffer{}
	f := &fixture{t: t, stack: s, logs: logs, ctx: context.Background(),
		now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	f.svc = admin.New(s.Client, s.Tables, slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil)))
	f.svc.Now = func() time.Time { return f.now }
	return f
}

// lockedWriter lets concurrent operations share one log buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (f *fixture) create(id, plan string) admin.Created {
	f.t.Helper()
	c, err := f.svc.CreateOrg(f.ctx, admin.NewOrg{ID: id, Name: "Acme " + id, Plan: plan})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) show(id string) admin.Org {
	f.t.Helper()
	o, err := f.svc.ShowOrg(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (f *fixture) ledger(id string) []admin.Entry {
	f.t.Helper()
	p, err := f.svc.Ledger(f.ctx, id, admin.MaxPageSize, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Entries
}

// lookup reads a key's record as the authorizer does.
func (f *fixture) lookup(raw string) apikey.Record {
	f.t.Helper()
	testkeys.Record(f.t, raw) // for make test's scan of all output
	k, err := apikey.Parse(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	rec, err := (dynamo.Keys{Client: f.stack.Client, Table: f.stack.Tables.Keys}).Lookup(f.ctx, k.Hash())
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// items counts every item of every table, to prove a refused operation wrote nothing.
func (f *fixture) items() int {
	f.t.Helper()
	n := 0
	for _, table := range f.stack.Names {
		out, err := f.stack.Client.Scan(f.ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: "COUNT"})
		if err != nil {
			f.t.Fatal(err)
		}
		n += int(out.Count)
	}
	return n
}

func TestCreateOrg(t *testing.T) {
	f := setup(t)
	c := f.create("org_acme", "starter")
	if c.Org.Balance != 1000 || c.Org.Breakdown.Subscription != 1000 || c.Org.Plan != (admin.Plan{ID: "starter", Monthly: 1000, RolloverCap: 2000}) {
		t.Errorf("new org = %+v", c.Org)
	}
	if c.Org.Keys != 1 || c.Org.ActiveKeys != 1 || c.Key.Status != "active" || c.Key.Name != "default" {
		t.Errorf("first key: org %+v key %+v", c.Org, c.Key)
	}
	if rec := f.lookup(c.Key.RawKey); rec.OrgID != "org_acme" || !rec.Usable(f.now) {
		t.Errorf("first key record = %+v", rec)
	}
	entries := f.ledger("org_acme")
	if len(entries) != 1 || entries[0].Type != "grant" || entries[0].Bucket != "subscription" || entries[0].Amount != 1000 || entries[0].BalanceAfter != 1000 {
		t.Errorf("opening ledger = %+v", entries)
	}
	generated := f.create("", "free")
	if !strings.HasPrefix(generated.Org.ID, "org_") || generated.Org.Balance != 100 {
		t.Errorf("generated org = %+v", generated.Org)
	}
	list, err := f.svc.ListOrgs(f.ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	f := setup(t)
	c := f.create("org_acme", "growth")
	revoked, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeKey(f.ctx, "org_acme", revoked.ID); err != nil {
		t.Fatal(err)
	}
	before, balance := f.items(), f.show("org_acme").Balance
	past := f.now.Add(-time.Minute)
	cases := map[string]struct {
		err error
		op  func() error
	}{
		"duplicate org": {admin.ErrConflict, func() error {
			_, err := f.svc.CreateOrg(f.ctx, admin.NewOrg{ID: "org_acme", Name: "x", Plan: "free"})
			return err
		}},
		"unknown plan": {admin.ErrInvalid, func() error {
			_, err := f.svc.CreateOrg(f.ctx, admin.NewOrg{ID: "org_b", Name: "x", Plan: "gold"})
			return err
		}},
		"bad org id": {admin.ErrInvalid, func() error {
			_, err := f.svc.CreateOrg(f.ctx, admin.NewOrg{ID: "ACME", Name: "x", Plan: "free"})
			return err
		}},
		"missing name":    {admin.ErrInvalid, func() error { _, err := f.svc.CreateOrg(f.ctx, admin.NewOrg{ID: "org_b", Plan: "free"}); return err }},
		"key unknown org": {admin.ErrNotFound, func() error { _, err := f.svc.IssueKey(f.ctx, "org_nope", admin.NewKey{}); return err }},
		"key past expiry": {admin.ErrInvalid, func() error { _, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{Expires: past}); return err }},
		"key negative ttl": {admin.ErrInvalid, func() error {
			_, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{TTL: -time.Hour})
			return err
		}},
		"revoke unknown key": {admin.ErrNotFound, func() error { _, err := f.svc.RevokeKey(f.ctx, "org_acme", "key_nope"); return err }},
		"revoke other org's key": {admin.ErrNotFound, func() error {
			_, err := f.svc.RevokeKey(f.ctx, "org_nope", c.Key.ID)
			return err
		}},
		"revoke revoked key": {admin.ErrConflict, func() error { _, err := f.svc.RevokeKey(f.ctx, "org_acme", revoked.ID); return err }},
		"rotate unknown key": {admin.ErrNotFound, func() error { _, err := f.svc.RotateKey(f.ctx, "org_acme", "key_nope", 0); return err }},
		"rotate revoked key": {admin.ErrConflict, func() error { _, err := f.svc.RotateKey(f.ctx, "org_acme", revoked.ID, 0); return err }},
		"grace over 24h": {admin.ErrInvalid, func() error {
			_, err := f.svc.RotateKey(f.ctx, "org_acme", c.Key.ID, 24*time.Hour+time.Second)
			return err
		}},
		"negative grace": {admin.ErrInvalid, func() error { _, err := f.svc.RotateKey(f.ctx, "org_acme", c.Key.ID, -time.Second); return err }},
		"grant unknown org": {admin.ErrNotFound, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_nope", admin.Grant{Bucket: "purchased", Amount: 1})
			return err
		}},
		"grant zero": {admin.ErrInvalid, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: 0})
			return err
		}},
		"grant negative": {admin.ErrInvalid, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "bonus", Amount: -5})
			return err
		}},
		"grant past expiry": {admin.ErrInvalid, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "bonus", Amount: 5, Expires: past})
			return err
		}},
		"purchased with expiry": {admin.ErrInvalid, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: 5, Expires: f.now.Add(time.Hour)})
			return err
		}},
		"grant subscription": {admin.ErrInvalid, func() error {
			_, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "subscription", Amount: 5})
			return err
		}},
		"adjust without reason": {admin.ErrInvalid, func() error {
			_, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "purchased", Amount: 5})
			return err
		}},
		"adjust zero": {admin.ErrInvalid, func() error {
			_, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "purchased", Reason: "x"})
			return err
		}},
		"adjust below zero": {admin.ErrConflict, func() error {
			_, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "subscription", Amount: -10001, Reason: "x"})
			return err
		}},
		"adjust unknown org": {admin.ErrNotFound, func() error {
			_, err := f.svc.AdjustCredits(f.ctx, "org_nope", admin.Adjustment{Bucket: "purchased", Amount: 1, Reason: "x"})
			return err
		}},
		"ledger unknown org": {admin.ErrNotFound, func() error { _, err := f.svc.Ledger(f.ctx, "org_nope", 0, ""); return err }},
		"ledger bad cursor":  {admin.ErrInvalid, func() error { _, err := f.svc.Ledger(f.ctx, "org_acme", 0, "!!"); return err }},
		"ledger bad limit":   {admin.ErrInvalid, func() error { _, err := f.svc.Ledger(f.ctx, "org_acme", 101, ""); return err }},
	}
	for name, c := range cases {
		err := c.op()
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", name, err, c.err)
		} else if strings.TrimSpace(err.Error()) == c.err.Error() {
			t.Errorf("%s: error %q does not say what was wrong", name, err)
		}
	}
	if after := f.items(); after != before {
		t.Errorf("refused operations changed the item count from %d to %d", before, after)
	}
	if b := f.show("org_acme").Balance; b != balance {
		t.Errorf("balance changed from %d to %d", balance, b)
	}
}

func TestKeys(t *testing.T) {
	f := setup(t)
	c := f.create("org_acme", "starter")
	exp := f.now.Add(48 * time.Hour)
	k2, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{Name: "ci", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	k3, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{Name: "temp", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if k2.ExpiresAt == nil || !k2.ExpiresAt.Equal(exp) || k3.ExpiresAt == nil || !k3.ExpiresAt.Equal(f.now.Add(time.Hour)) {
		t.Errorf("expiries: %v %v", k2.ExpiresAt, k3.ExpiresAt)
	}
	if rec := f.lookup(k3.RawKey); rec.Usable(f.now.Add(time.Hour)) || !rec.Usable(f.now.Add(59*time.Minute)) {
		t.Errorf("a key issued for an hour: %+v", rec)
	}
	keys, err := f.svc.ListKeys(f.ctx, "org_acme")
	if err != nil || len(keys) != 3 {
		t.Fatalf("list = %+v, %v", keys, err)
	}
	for _, k := range keys {
		if k.Display == "" || len(k.Display) >= 20 {
			t.Errorf("display %q", k.Display)
		}
	}

	// Rotate with a minute's grace: both keys work, then only the new one.
	r, err := f.svc.RotateKey(f.ctx, "org_acme", c.Key.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.New.Name != "default" || r.New.OrgID != "org_acme" || r.New.ID == c.Key.ID || r.Old.RotatedAt == nil {
		t.Errorf("rotation = %+v", r)
	}
	oldRec, newRec := f.lookup(c.Key.RawKey), f.lookup(r.New.RawKey)
	if !oldRec.Usable(f.now.Add(59*time.Second)) || oldRec.Usable(f.now.Add(time.Minute)) || !newRec.Usable(f.now.Add(time.Hour)) {
		t.Errorf("after rotation: old %+v, new %+v", oldRec, newRec)
	}
	if _, err := f.svc.RotateKey(f.ctx, "org_acme", c.Key.ID, 0); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("rotating a rotated key: %v", err)
	}
	// A rotation never lengthens a key's life.
	r2, err := f.svc.RotateKey(f.ctx, "org_acme", k3.ID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Old.ExpiresAt.Equal(f.now.Add(time.Hour)) || !r2.New.ExpiresAt.Equal(f.now.Add(time.Hour)) {
		t.Errorf("rotating an expiring key: old %v new %v", r2.Old.ExpiresAt, r2.New.ExpiresAt)
	}

	// Revoking the old key in its grace period ends it now.
	rv, err := f.svc.RevokeKey(f.ctx, "org_acme", c.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Status != "revoked" || f.lookup(c.Key.RawKey).Usable(f.now) {
		t.Errorf("revoked: %+v", rv)
	}
	if !rv.ExpiresAt.Equal(f.now.Add(time.Minute)) {
		t.Errorf("revoking moved an earlier expiry: %v", rv.ExpiresAt)
	}
	// A revoked key that never expired stays listed for the retention period.
	forever, err := f.svc.IssueKey(f.ctx, "org_acme", admin.NewKey{Name: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	rv, err = f.svc.RevokeKey(f.ctx, "org_acme", forever.ID)
	if err != nil || !rv.ExpiresAt.Equal(f.now.Add(admin.RevokedRetention)) {
		t.Errorf("revoked forever key: %+v %v", rv, err)
	}
	// Active: k2, rotated k3 in its grace and its successor, c's successor.
	o := f.show("org_acme")
	if o.Keys != 6 || o.ActiveKeys != 4 {
		t.Errorf("key counts: %d keys, %d active", o.Keys, o.ActiveKeys)
	}
}

func TestGrantsAreIdempotent(t *testing.T) {
	f := setup(t)
	f.create("org_acme", "starter")
	first, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: 10, Reference: "pay_1"})
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	again, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: 10, Reference: "pay_1"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !again.Duplicate || again.Entry != first.Entry || first.Entry.BalanceAfter != 1010 {
		t.Errorf("first %+v, again %+v", first, again)
	}
	if _, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: 11, Reference: "pay_1"}); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("reusing a reference for another amount: %v", err)
	}
	if o := f.show("org_acme"); o.Balance != 1010 || o.Breakdown.Purchased != 10 {
		t.Errorf("balance = %+v", o)
	}
	if n := len(f.ledger("org_acme")); n != 2 {
		t.Errorf("%d ledger entries, want 2", n)
	}

	// Racing grants with one reference add once.
	var wg sync.WaitGroup
	results := make([]admin.Granted, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "bonus", Amount: 7, Reference: "promo"})
		})
	}
	wg.Wait()
	applied := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("racing grant: %v", errs[i])
		}
		if !results[i].Duplicate {
			applied++
		}
		if results[i].Entry != results[0].Entry {
			t.Errorf("racing grants returned different entries: %+v / %+v", results[i].Entry, results[0].Entry)
		}
	}
	if o := f.show("org_acme"); applied != 1 || o.Breakdown.Bonus != 7 || o.Balance != 1017 {
		t.Errorf("%d racing grants applied; balance %+v", applied, o)
	}
}

func TestBonusGrantAndAdjustments(t *testing.T) {
	f := setup(t)
	f.create("org_acme", "starter")
	c := &dynamo.Credits{Client: f.stack.Client, Table: f.stack.Tables.Orgs}
	before, err := c.Balance(f.ctx, "org_acme")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "bonus", Amount: 50, Expires: f.now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.Balance(f.ctx, "org_acme")
	if err != nil {
		t.Fatal(err)
	}
	if after.BonusRev != before.BonusRev+1 || len(after.Bonus) != 1 || after.Bonus[0].ID != g.Entry.GrantID || !after.Bonus[0].ExpiresAt.Equal(f.now.Add(time.Hour)) {
		t.Errorf("bonus grant stored as %+v (rev before %d)", after, before.BonusRev)
	}
	if g.Entry.BalanceAfter != 1050 {
		t.Errorf("balance after bonus grant = %d", g.Entry.BalanceAfter)
	}
	adj, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "subscription", Amount: -400, Reason: "double allotment"})
	if err != nil {
		t.Fatal(err)
	}
	if adj.BalanceAfter != 650 || adj.Reason != "double allotment" {
		t.Errorf("adjustment = %+v", adj)
	}
	if _, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "subscription", Amount: -601, Reason: "x"}); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("adjusting below zero: %v", err)
	}
	if _, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "subscription", Amount: -600, Reason: "to zero"}); err != nil {
		t.Errorf("adjusting to exactly zero: %v", err)
	}
	if o := f.show("org_acme"); o.Balance != 50 || o.Breakdown.Subscription != 0 {
		t.Errorf("balance = %+v", o)
	}
	// Past its expiry, the bonus counts for nothing in the view.
	f.now = f.now.Add(time.Hour)
	if o := f.show("org_acme"); o.Balance != 0 || len(o.BonusGrants) != 0 {
		t.Errorf("after the bonus expired: %+v", o)
	}
}

func TestLedgerPagesNewestFirst(t *testing.T) {
	f := setup(t)
	f.create("org_acme", "free")
	for i := range 4 {
		f.now = f.now.Add(time.Second)
		if _, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "purchased", Amount: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	var all []admin.Entry
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := f.svc.Ledger(f.ctx, "org_acme", 2, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Entries...)
		if cursor = p.Next; cursor == "" || pages > 5 {
			break
		}
	}
	want := []int64{4, 3, 2, 1, 100}
	wantAfter := []int64{110, 106, 103, 101, 100}
	if len(all) != len(want) {
		t.Fatalf("%d entries: %+v", len(all), all)
	}
	for i, e := range all {
		if e.Amount != want[i] || e.BalanceAfter != wantAfter[i] {
			t.Errorf("entry %d = %+v, want amount %d balance after %d", i, e, want[i], wantAfter[i])
		}
	}
}

func TestRefundsAndUsage(t *testing.T) {
	f := setup(t)
	f.create("org_acme", "starter")
	if _, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: "bonus", Amount: 3}); err != nil {
		t.Fatal(err)
	}
	c := &dynamo.Credits{Client: f.stack.Client, Table: f.stack.Tables.Orgs, Clock: func() time.Time { return f.now }}
	d, _, err := c.Debit(f.ctx, "org_acme", 5, f.now) // 3 bonus + 2 subscription
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Debit(f.ctx, "org_acme", 4, f.now); err != nil {
		t.Fatal(err)
	}
	if o := f.show("org_acme"); o.UsedThisPeriod != 9 || o.Period != "2026-11" || o.Balance != 994 {
		t.Errorf("after debits: %+v", o)
	}
	if _, err := c.Refund(f.ctx, "org_acme", d); err != nil {
		t.Fatal(err)
	}
	entries := f.ledger("org_acme")
	var refunds []admin.Entry
	for _, e := range entries {
		if e.Type == "refund" {
			refunds = append(refunds, e)
		}
	}
	if len(refunds) != 2 {
		t.Fatalf("refund entries: %+v", entries)
	}
	got := map[string]admin.Entry{refunds[0].Bucket: refunds[0], refunds[1].Bucket: refunds[1]}
	if got["bonus"].Amount != 3 || got["subscription"].Amount != 2 {
		t.Errorf("refund entries: %+v", refunds)
	}
	if max(got["bonus"].BalanceAfter, got["subscription"].BalanceAfter) != 999 {
		t.Errorf("balance after the refund: %+v", refunds)
	}
	if o := f.show("org_acme"); o.Balance != 999 {
		t.Errorf("balance = %d", o.Balance)
	}
}

// TestBalanceAfterUnderConcurrentDebits races grants and adjustments with
// debits of the same organization. Every write reports the balance right
// after it (debits from their ALL_NEW, ledger entries from their snapshot):
// if those are exact, they chain into one history, which means the
// balances before (after minus the change) are the opening balance and
// every balance after but the final one.
func TestBalanceAfterUnderConcurrentDebits(t *testing.T) {
	f := setup(t)
	f.create("org_acme", "growth") // 10000
	type step struct{ delta, after int64 }
	var mu sync.Mutex
	var steps []step
	record := func(delta, after int64) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, step{delta, after})
	}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			c := &dynamo.Credits{Client: f.stack.Client, Table: f.stack.Tables.Orgs}
			for range 30 {
				_, after, err := c.Debit(f.ctx, "org_acme", int64(w+1), f.now)
				if err != nil {
					t.Error(err)
					return
				}
				record(-int64(w+1), after.Total(f.now))
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			g, err := f.svc.GrantCredits(f.ctx, "org_acme", admin.Grant{Bucket: []string{"purchased", "bonus"}[i%2], Amount: int64(100 + i)})
			if err != nil {
				t.Error(err)
				return
			}
			record(g.Entry.Amount, g.Entry.BalanceAfter)
		}
	})
	wg.Go(func() {
		for i := range 10 {
			a, err := f.svc.AdjustCredits(f.ctx, "org_acme", admin.Adjustment{Bucket: "subscription", Amount: -int64(10 + i), Reason: "test"})
			if err != nil {
				t.Error(err)
				return
			}
			record(a.Amount, a.BalanceAfter)
		}
	})
	wg.Wait()
	final := f.show("org_acme").Balance
	befores := map[int64]int{10000: -1}
	afters := map[int64]int{final: -1}
	for _, s := range steps {
		befores[s.after-s.delta]++
		afters[s.after]++
	}
	for v, n := range afters {
		befores[v] -= n
	}
	for v, n := range befores {
		if n != 0 {
			t.Errorf("balance %d: %+d unmatched; the recorded balances do not chain into one history", v, n)
		}
	}
	var sum int64
	for _, s := range steps {
		sum += s.delta
	}
	if final != 10000+sum {
		t.Errorf("final balance %d, want %d", final, 10000+sum)
	}
}
