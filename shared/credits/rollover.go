package credits

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// Period is one calendar month in UTC, the unit of a subscription rollover.
// Its text form is "YYYY-MM", which also sorts like time.
type Period struct {
	start time.Time // first instant of the month, UTC
}

// ErrInvalidPeriod means a period is not a "YYYY-MM" month.
var ErrInvalidPeriod = errors.New(`period must be a month written YYYY-MM, e.g. 2026-12`)

// ParsePeriod reads a "YYYY-MM" month. Anything else (other widths, days,
// months outside 01..12) is refused rather than guessed at, because a
// wrong period grants a whole month's credits.
func ParsePeriod(s string) (Period, error) {
	if len(s) != 7 || s[4] != '-' {
		return Period{}, fmt.Errorf("%w: got %q", ErrInvalidPeriod, s)
	}
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Year() < 2000 {
		return Period{}, fmt.Errorf("%w: got %q", ErrInvalidPeriod, s)
	}
	return Period{start: t}, nil
}

// PeriodOf is the month that contains t, in UTC. The scheduler fires at
// 00:00 UTC on the 1st, so the clock at that moment names the new month.
func PeriodOf(t time.Time) Period {
	t = t.UTC()
	return Period{start: time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)}
}

// String is the "YYYY-MM" form stored on organizations and ledger entries.
func (p Period) String() string {
	if p.start.IsZero() {
		return ""
	}
	return p.start.Format("2006-01")
}

// IsZero reports whether p is the zero Period, which names no month.
func (p Period) IsZero() bool { return p.start.IsZero() }

// Start is the first instant of the month, UTC.
func (p Period) Start() time.Time { return p.start }

// Next is the following month.
func (p Period) Next() Period { return Period{start: p.start.AddDate(0, 1, 0)} }

// RolloverAmount is how many subscription credits the monthly rollover adds
// to an organization on plan p whose subscription balance is subscription:
// the plan's allotment, cut so that the subscription does not exceed the
// plan's cap when it has one. A rollover never takes credits away: when the
// subscription already holds the cap or more (credits granted by hand, or a
// cap lowered since), it adds nothing and leaves the excess alone.
func (p Plan) RolloverAmount(subscription int64) int64 {
	if p.Monthly <= 0 {
		return 0
	}
	if p.RolloverCap <= 0 {
		return p.Monthly
	}
	return max(0, min(p.Monthly, p.RolloverCap-subscription))
}

// ExpiredGrants lists the grants of b that have expired at now, whatever is
// left of them, in ID order. Debits already never spend them; removing them
// makes the stored balance say so too.
func (b Balance) ExpiredGrants(now time.Time) []Grant {
	var out []Grant
	for _, g := range b.Bonus {
		if g.Expired(now) {
			out = append(out, g)
		}
	}
	return out
}

// RolloverShard is the shard, from 0 to shards-1, in which an organization
// waits for its rollover. The hash spreads organizations evenly whatever
// their IDs look like and never changes for an organization, so raising the
// shard count later only needs the new shards to be read as well.
func RolloverShard(org string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(org))
	return int(h.Sum32() % uint32(shards))
}

// Rollover is what one organization's rollover for a period changes: the
// subscription credits added and the expired bonus grants removed.
type Rollover struct {
	Period Period
	Plan   Plan
	Before Balance
	// Amount is the subscription credits added, possibly 0 at the cap.
	Amount int64
	// Expired are the grants removed, with what was left of them.
	Expired []Grant
	At      time.Time
}

// maxExpiredPerRollover keeps one organization's rollover within one
// DynamoDB transaction (100 items, one for the organization and one ledger
// entry per grant); any further expired grants go at the next rollover, and
// count for nothing meanwhile.
const maxExpiredPerRollover = 90

// PlanRollover decides the rollover for period p of an organization on plan
// with balance b, at now.
func PlanRollover(plan Plan, b Balance, p Period, now time.Time) Rollover {
	exp := b.ExpiredGrants(now)
	if len(exp) > maxExpiredPerRollover {
		exp = exp[:maxExpiredPerRollover]
	}
	return Rollover{Period: p, Plan: plan, Before: b, Amount: plan.RolloverAmount(b.Subscription), Expired: exp, At: now}
}

// After is the balance once r is applied.
func (r Rollover) After() Balance {
	out := r.Before
	out.Subscription += r.Amount
	out.Bonus = nil
	for _, g := range r.Before.Bonus {
		if !slices.ContainsFunc(r.Expired, func(e Grant) bool { return e.ID == g.ID }) {
			out.Bonus = append(out.Bonus, g)
		}
	}
	return out
}

// Entries are the ledger lines that record r for org: one expiry per
// removed grant that still held credits, then the rollover itself (even when
// the cap made it 0, so that the ledger shows the period was handled).
func (r Rollover) Entries(org string) []Entry {
	total := r.Before.Total(r.At) // expired grants already counted for nothing
	var out []Entry
	for _, g := range r.Expired {
		if g.Remaining == 0 {
			continue
		}
		out = append(out, Entry{
			ID: "expiry-" + r.Period.String() + "-" + g.ID, OrgID: org, At: r.At, Type: EntryExpiry,
			Bucket: Bonus, GrantID: g.ID, Amount: -g.Remaining, Period: r.Period.String(), BalanceAfter: total,
		})
	}
	return append(out, Entry{
		ID: "rollover-" + r.Period.String(), OrgID: org, At: r.At, Type: EntryRollover,
		Bucket: Subscription, Amount: r.Amount, Period: r.Period.String(), BalanceAfter: total + r.Amount,
	})
}
