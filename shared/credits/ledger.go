package credits

import "time"

// Plan is a subscription plan's terms, copied onto each organization on it
// so that a rollover reads one item.
type Plan struct {
	ID string
	// Monthly is the subscription credits added at each monthly rollover.
	Monthly int64
	// RolloverCap bounds the subscription balance a rollover may leave; 0
	// means no cap.
	RolloverCap int64
}

// EntryType says what moved credits in a ledger entry.
type EntryType string

// The kinds of ledger entry. Per-request debits are deliberately not among
// them: they would double the writes on the hot path; usage counters on the
// organization item record them instead.
const (
	EntryGrant      EntryType = "grant"      // purchased or bonus credits added
	EntryAdjustment EntryType = "adjustment" // an operator's signed correction
	EntryRefund     EntryType = "refund"     // a failed request's charge given back
	EntryRollover   EntryType = "rollover"   // the monthly subscription allotment
	EntryExpiry     EntryType = "expiry"     // an expired bonus grant's unspent rest removed
)

// Entry is one immutable ledger line of an organization.
type Entry struct {
	ID      string
	OrgID   string
	At      time.Time
	Type    EntryType
	Bucket  Bucket
	GrantID string // for bonus credits
	// Amount is signed: positive adds credits, negative removes them.
	Amount    int64
	Reference string // external reference, e.g. a payment id; makes grants idempotent
	Reason    string // required for adjustments
	Period    string // YYYY-MM, for rollovers and their grants
	// BalanceAfter is the organization's total live balance right after this entry.
	BalanceAfter int64
}
