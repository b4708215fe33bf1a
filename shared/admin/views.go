package admin

import (
	"sort"
	"time"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
)

// The views below are what the operations return, in the shapes the admin
// API and the CLI's --json print, so that both surfaces say the same thing.

// Plan is a subscription plan's terms.
type Plan struct {
	ID          string `json:"id"`
	Monthly     int64  `json:"monthly"`
	RolloverCap int64  `json:"rollover_cap"` // 0: no cap
}

// Breakdown is a balance by kind of credit.
type Breakdown struct {
	Subscription int64 `json:"subscription"`
	Purchased    int64 `json:"purchased"`
	Bonus        int64 `json:"bonus"`
}

// BonusGrant is one live bonus grant.
type BonusGrant struct {
	ID        string     `json:"id"`
	Remaining int64      `json:"remaining"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Org is an organization with its balance, usage and keys.
type Org struct {
	ID          string       `json:"organization_id"`
	Name        string       `json:"name"`
	Plan        Plan         `json:"plan"`
	CreatedAt   time.Time    `json:"created_at"`
	Balance     int64        `json:"balance"`
	Breakdown   Breakdown    `json:"breakdown"`
	BonusGrants []BonusGrant `json:"bonus_grants"`
	// Period is the current usage period (YYYY-MM, UTC) and UsedThisPeriod
	// the credits requests were charged in it: debits are counted on the
	// organization rather than written to the ledger.
	Period         string `json:"period"`
	UsedThisPeriod int64  `json:"used_this_period"`
	Keys           int    `json:"keys"`
	ActiveKeys     int    `json:"active_keys"`
}

// Key describes a key without the key itself or its hash.
type Key struct {
	ID        string     `json:"key_id"`
	OrgID     string     `json:"organization_id"`
	Name      string     `json:"name"`
	Display   string     `json:"display"` // the key's first characters, to tell keys apart
	Status    string     `json:"status"`  // active, expired or revoked
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	RotatedAt *time.Time `json:"rotated_at"`
}

// IssuedKey is a new key with the raw key, which is shown this once: it is
// not stored and cannot be read again.
type IssuedKey struct {
	Key
	RawKey string `json:"key"`
}

// Entry is one ledger entry.
type Entry struct {
	ID           string    `json:"entry_id"`
	At           time.Time `json:"at"`
	Type         string    `json:"type"`
	Bucket       string    `json:"bucket"`
	GrantID      string    `json:"grant_id,omitempty"`
	Amount       int64     `json:"amount"`
	Reference    string    `json:"reference,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Period       string    `json:"period,omitempty"`
	BalanceAfter int64     `json:"balance_after"`
}

// Created is what creating an organization returns: it and its first key.
type Created struct {
	Org Org       `json:"organization"`
	Key IssuedKey `json:"key"`
}

// Rotated is what rotating a key returns: the new key and the old one with
// the end of its grace period as its expiry.
type Rotated struct {
	New IssuedKey `json:"new_key"`
	Old Key       `json:"old_key"`
}

// Granted is the result of a grant; Duplicate says the reference had
// already been granted and Entry is that first grant.
type Granted struct {
	Entry     Entry `json:"entry"`
	Duplicate bool  `json:"duplicate"`
}

// LedgerPage is a page of ledger entries, newest first; Next is the cursor
// of the following page, empty on the last.
type LedgerPage struct {
	Entries []Entry `json:"entries"`
	Next    string  `json:"next_cursor,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func orgView(o dynamo.Org, keys []apikey.Record, now time.Time) Org {
	b := o.Balance
	v := Org{
		ID: o.ID, Name: o.Name, CreatedAt: o.Created.UTC(),
		Plan:      Plan{ID: o.Plan.ID, Monthly: o.Plan.Monthly, RolloverCap: o.Plan.RolloverCap},
		Balance:   b.Total(now),
		Breakdown: Breakdown{Subscription: b.Subscription, Purchased: b.Purchased, Bonus: b.LiveBonus(now)},
		Period:    dynamo.UsagePeriod(now),
		Keys:      len(keys),
	}
	v.UsedThisPeriod = o.Used[v.Period]
	v.BonusGrants = []BonusGrant{}
	for _, g := range b.LiveGrants(now) {
		v.BonusGrants = append(v.BonusGrants, BonusGrant{ID: g.ID, Remaining: g.Remaining, ExpiresAt: timePtr(g.ExpiresAt)})
	}
	for _, k := range keys {
		if k.Usable(now) {
			v.ActiveKeys++
		}
	}
	return v
}

func keyView(r apikey.Record, now time.Time) Key {
	status := "active"
	switch {
	case !r.Revoked.IsZero():
		status = "revoked"
	case !r.Usable(now):
		status = "expired"
	}
	return Key{
		ID: r.ID, OrgID: r.OrgID, Name: r.Name, Display: r.Display, Status: status,
		CreatedAt: r.Created.UTC(), ExpiresAt: timePtr(r.Expires), RevokedAt: timePtr(r.Revoked), RotatedAt: timePtr(r.Rotated),
	}
}

func keyViews(recs []apikey.Record, now time.Time) []Key {
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.Before(recs[j].Created) })
	out := make([]Key, 0, len(recs))
	for _, r := range recs {
		out = append(out, keyView(r, now))
	}
	return out
}

func entryView(e credits.Entry) Entry {
	return Entry{
		ID: e.ID, At: e.At.UTC(), Type: string(e.Type), Bucket: string(e.Bucket), GrantID: e.GrantID,
		Amount: e.Amount, Reference: e.Reference, Reason: e.Reason, Period: e.Period, BalanceAfter: e.BalanceAfter,
	}
}
