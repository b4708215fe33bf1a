// Package credits holds the rules of prepaid credits: what a balance is made
// of, the order in which a charge consumes it, when a bonus grant stops
// counting, and how a charge is undone. It knows nothing of DynamoDB; package
// dynamo turns its plans into conditional writes.
package credits

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// Bucket names one kind of credit.
type Bucket string

// The kinds of credit an organization holds.
const (
	// Subscription credits come with the plan and roll over monthly.
	Subscription Bucket = "subscription"
	// Purchased credits never expire.
	Purchased Bucket = "purchased"
	// Bonus credits are promotional grants that may expire.
	Bonus Bucket = "bonus"
)

// ErrInsufficient means the live balance is smaller than the charge; nothing was taken.
var ErrInsufficient = errors.New("insufficient credits")

// ErrInvalidAmount means a charge or grant amount is not a positive number of credits.
var ErrInvalidAmount = errors.New("credit amount must be positive")

// Grant is one bonus grant with what is left of it.
type Grant struct {
	ID        string
	Remaining int64
	// ExpiresAt is when the grant stops counting; the zero time means never.
	ExpiresAt time.Time
}

// Live reports whether the grant can still be spent at now: an expired grant
// is never spent, even before anything sweeps it from storage.
func (g Grant) Live(now time.Time) bool {
	return g.Remaining > 0 && !g.Expired(now)
}

// Expired reports whether the grant's expiry is at or before now.
func (g Grant) Expired(now time.Time) bool {
	return !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now)
}

// Balance is an organization's credits by kind.
type Balance struct {
	Subscription int64
	Purchased    int64
	Bonus        []Grant
	// BonusRev changes whenever a bonus grant is added. A charge planned
	// against one revision is only valid while it holds, which is how a
	// charge planned from a stale view can never skip a newer grant that
	// should have been spent first.
	BonusRev int64
}

// LiveBonus is the sum of the bonus grants that can still be spent at now.
func (b Balance) LiveBonus(now time.Time) int64 {
	var n int64
	for _, g := range b.Bonus {
		if g.Live(now) {
			n += g.Remaining
		}
	}
	return n
}

// Total is what can be spent at now.
func (b Balance) Total(now time.Time) int64 {
	return b.Subscription + b.Purchased + b.LiveBonus(now)
}

// LiveGrants lists the grants that can be spent at now, in the order a
// charge consumes them.
func (b Balance) LiveGrants(now time.Time) []Grant {
	var live []Grant
	for _, g := range b.Bonus {
		if g.Live(now) {
			live = append(live, g)
		}
	}
	slices.SortFunc(live, spendOrder)
	return live
}

// spendOrder puts grants that expire first, soonest first, then grants that
// never expire; ties go by ID so that every process plans the same way.
func spendOrder(a, b Grant) int {
	switch {
	case a.ExpiresAt.IsZero() != b.ExpiresAt.IsZero():
		if a.ExpiresAt.IsZero() {
			return 1
		}
		return -1
	case !a.ExpiresAt.Equal(b.ExpiresAt):
		return a.ExpiresAt.Compare(b.ExpiresAt)
	}
	return cmp.Compare(a.ID, b.ID)
}

// Take is one part of a charge: how much comes out of one bucket (one grant
// for bonus credits), and what must still be true of the bucket for the
// plan to be right.
type Take struct {
	Bucket  Bucket
	GrantID string // for Bonus
	Amount  int64
	// Exact means the plan empties the bucket, so it must hold exactly
	// Amount: if it holds more, the view the plan came from is stale and an
	// earlier bucket would be skipped. Otherwise it must hold at least Amount.
	Exact bool
	// ExpiresAt is the grant's expiry, which must still lie after the
	// charge's time; zero for buckets that do not expire.
	ExpiresAt time.Time
}

// Debit is a planned charge: the takes, in consumption order, that together
// make up Amount, valid only while the balance's bonus revision is BonusRev.
type Debit struct {
	Amount   int64
	Takes    []Take
	BonusRev int64
	At       time.Time
	// ID names a charge once storage has made it, so that giving it back
	// can be recognised and done at most once, however often it is retried.
	ID string
}

// PlanDebit decides how a charge of n credits at now is taken from b: bonus grants
// that expire, soonest first; then bonus grants without expiry; then
// subscription; then purchased. The result is valid for b only; the
// conditions in each Take let storage detect that b has changed.
func PlanDebit(b Balance, n int64, now time.Time) (Debit, error) {
	if n <= 0 {
		return Debit{}, ErrInvalidAmount
	}
	if b.Total(now) < n {
		return Debit{}, ErrInsufficient
	}
	d := Debit{Amount: n, BonusRev: b.BonusRev, At: now}
	left := n
	take := func(t Take, have int64) {
		t.Amount = min(have, left)
		t.Exact = t.Amount == have
		left -= t.Amount
		d.Takes = append(d.Takes, t)
	}
	for _, g := range b.LiveGrants(now) {
		if left == 0 {
			return d, nil
		}
		take(Take{Bucket: Bonus, GrantID: g.ID, ExpiresAt: g.ExpiresAt}, g.Remaining)
	}
	if left == 0 {
		return d, nil
	}
	// Subscription is recorded even when empty: the plan then relies on it
	// staying empty, and a rollover landing meanwhile must make it replan.
	take(Take{Bucket: Subscription}, b.Subscription)
	if left > 0 {
		take(Take{Bucket: Purchased}, b.Purchased)
	}
	return d, nil
}

// Apply returns b after d, for callers that want the new balance without a
// read; it trusts d was planned against b.
func (b Balance) Apply(d Debit) Balance {
	return b.add(d, -1)
}

// Undo returns b after d is given back.
func (b Balance) Undo(d Debit) Balance {
	return b.add(d, 1)
}

func (b Balance) add(d Debit, sign int64) Balance {
	out := b
	out.Bonus = slices.Clone(b.Bonus)
	for _, t := range d.Takes {
		switch t.Bucket {
		case Subscription:
			out.Subscription += sign * t.Amount
		case Purchased:
			out.Purchased += sign * t.Amount
		case Bonus:
			for i := range out.Bonus {
				if out.Bonus[i].ID == t.GrantID {
					out.Bonus[i].Remaining += sign * t.Amount
				}
			}
		}
	}
	return out
}
