package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
)

// creditsResponse is the body of GET /api/credits.
type creditsResponse struct {
	OrganizationID string          `json:"organization_id"`
	Balance        int64           `json:"balance"`
	Breakdown      breakdown       `json:"breakdown"`
	BonusGrants    []bonusGrantOut `json:"bonus_grants"`
}

type breakdown struct {
	Subscription int64 `json:"subscription"`
	Purchased    int64 `json:"purchased"`
	Bonus        int64 `json:"bonus"`
}

type bonusGrantOut struct {
	ID        string  `json:"id"`
	Remaining int64   `json:"remaining"`
	ExpiresAt *string `json:"expires_at"` // RFC 3339 UTC; null when it never expires
}

func (s *server) getCredits(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	b, err := s.Credits.Balance(r.Context(), c.OrgID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "balance", "request_id", c.RequestID, "org_id", c.OrgID, "error", err)
		writeDetail(w, http.StatusServiceUnavailable, "Could not read the balance; try again")
		return
	}
	now := s.Now()
	out := creditsResponse{
		OrganizationID: c.OrgID,
		Balance:        b.Total(now),
		Breakdown:      breakdown{Subscription: b.Subscription, Purchased: b.Purchased, Bonus: b.LiveBonus(now)},
		BonusGrants:    []bonusGrantOut{},
	}
	for _, g := range b.LiveGrants(now) {
		o := bonusGrantOut{ID: g.ID, Remaining: g.Remaining}
		if !g.ExpiresAt.IsZero() {
			t := g.ExpiresAt.UTC().Format(time.RFC3339)
			o.ExpiresAt = &t
		}
		out.BonusGrants = append(out.BonusGrants, o)
	}
	writeJSON(w, http.StatusOK, out)
}

// contactResponse is the body of POST /api/contacts/create.
type contactResponse struct {
	OrganizationID  string      `json:"organization_id"`
	ContactID       string      `json:"contact_id"`
	Contact         crm.Contact `json:"contact"`
	CreditsConsumed int64       `json:"credits_consumed"`
	CreditBalance   int64       `json:"credit_balance"`
}

func (s *server) createContact(w http.ResponseWriter, r *http.Request) {
	n, errs := requiredCredits(r)
	var in crm.Contact
	if !decodeBody(w, r, &in) {
		return
	}
	errs = append(errs, required("organization_id", in.OrgID)...)
	errs = append(errs, checkLimits(&in)...)
	errs = append(errs, checkEmails("work_emails", in.WorkEmails)...)
	errs = append(errs, checkEmails("personal_emails", in.PersonalEmails)...)
	if in.Age != nil && (*in.Age < 0 || *in.Age > 150) {
		errs = append(errs, FieldError{Type: "value_error", Loc: []any{"body", "age"}, Msg: "Input should be between 0 and 150"})
	}
	if len(errs) > 0 {
		writeInvalid(w, errs)
		return
	}
	if !s.sameOrg(w, r, in.OrgID) {
		return
	}
	in.ID = s.NewID()
	in.CreatedAt = s.Now().UTC().Format(time.RFC3339)
	// Lists are always lists in responses, so clients need no null checks.
	for _, l := range []*[]string{&in.WorkEmails, &in.PersonalEmails, &in.Phones} {
		if *l == nil {
			*l = []string{}
		}
	}
	s.charge(w, r, n, func(ctx context.Context, after int64) (any, error) {
		if err := s.Contacts.Put(ctx, in); err != nil {
			return nil, err
		}
		return contactResponse{OrganizationID: in.OrgID, ContactID: in.ID, Contact: in, CreditsConsumed: n, CreditBalance: after}, nil
	})
}

// audienceResponse is the body of POST /api/audiences/create.
type audienceResponse struct {
	OrganizationID string       `json:"organization_id"`
	Audience       crm.Audience `json:"audience"`
}

func (s *server) createAudience(w http.ResponseWriter, r *http.Request) {
	var in crm.Audience
	if !decodeBody(w, r, &in) {
		return
	}
	errs := required("organization_id", in.OrgID)
	errs = append(errs, required("name", in.Name)...)
	errs = append(errs, checkLimits(&in)...)
	if len(errs) > 0 {
		writeInvalid(w, errs)
		return
	}
	if !s.sameOrg(w, r, in.OrgID) {
		return
	}
	in.ID = s.NewID()
	in.TrackingUTMValue = utmValue(in.Name, in.ID)
	in.CreatedAt = s.Now().UTC().Format(time.RFC3339)
	s.charge(w, r, 1, func(ctx context.Context, _ int64) (any, error) {
		if err := s.Audiences.Put(ctx, in); err != nil {
			return nil, err
		}
		return audienceResponse{OrganizationID: in.OrgID, Audience: in}, nil
	})
}

// sameOrg refuses a body that names another organization than the key's: the
// key decides whose data and balance a request touches.
func (s *server) sameOrg(w http.ResponseWriter, r *http.Request, org string) bool {
	if org != callerOf(r.Context()).OrgID {
		writeDetail(w, http.StatusForbidden, "organization_id does not match the API key's organization")
		return false
	}
	return true
}

// charge takes n credits from the caller's organization, then does the work.
// Validation has happened already, so a request that cannot succeed costs
// nothing; if the work fails on our side the charge is given back.
func (s *server) charge(w http.ResponseWriter, r *http.Request, n int64, work func(ctx context.Context, balanceAfter int64) (any, error)) {
	ctx := r.Context()
	if claim, ok := claimOf(ctx); ok {
		s.chargeOnce(w, r, n, claim, work)
		return
	}
	c := callerOf(ctx)
	now := s.Now()
	d, after, err := s.Credits.Debit(ctx, c.OrgID, n, now)
	if err != nil {
		s.notCharged(w, r, c, n, err)
		return
	}
	body, err := work(ctx, after.Total(now))
	if err != nil {
		s.Log.ErrorContext(ctx, "work failed after charge", "request_id", c.RequestID, "org_id", c.OrgID, "amount", n, "error", err)
		s.refund(ctx, c, d)
		setOutcome(ctx, "refunded")
		writeDetail(w, http.StatusInternalServerError, "Internal Server Error; the credits were not charged")
		return
	}
	recordCharge(ctx, n)
	setOutcome(ctx, "charged")
	writeJSON(w, http.StatusOK, body)
}

// refundAttempts bounds how often a refund is retried within the request.
const refundAttempts = 3

// refundBudget bounds a refund's attempts together. The request's own
// deadline does not apply: the refund must outlive a client that hung up,
// and DynamoDB calls stop short of the Lambda's deadline to leave it room.
const refundBudget = 3 * time.Second

// refund gives a failed request's credits back. It runs even if the client
// has gone away, and every failure is logged with what is owed; the last
// one says the credits are owed, for an operator (or an alarm on the
// "refund abandoned" message) to settle.
func (s *server) refund(ctx context.Context, c caller, d credits.Debit) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundBudget)
	defer cancel()
	for attempt := 1; attempt <= refundAttempts; attempt++ {
		_, err := s.Credits.Refund(ctx, c.OrgID, d)
		if err == nil {
			return
		}
		s.Log.ErrorContext(ctx, "refund failed", "request_id", c.RequestID, "org_id", c.OrgID, "key_id", c.KeyID, "amount", d.Amount, "attempt", attempt, "error", err)
		if attempt < refundAttempts {
			select {
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	s.Log.ErrorContext(ctx, "refund abandoned; credits owed", "request_id", c.RequestID, "org_id", c.OrgID, "key_id", c.KeyID,
		"amount", d.Amount, "takes", d.Takes)
}

// notCharged answers a charge that was refused: 402 when the balance is too
// small, 503 when storage failed (debitFailed).
func (s *server) notCharged(w http.ResponseWriter, r *http.Request, c caller, n int64, err error) {
	if errors.Is(err, credits.ErrInsufficient) {
		setOutcome(r.Context(), "insufficient")
		writeDetail(w, http.StatusPaymentRequired, "Insufficient credits")
		return
	}
	s.debitFailed(w, r, c, n, err)
}

// debitFailed answers a charge that could not be made, or whose outcome is
// unknown: DynamoDB throttled past the SDK's retries, timed out, or failed.
func (s *server) debitFailed(w http.ResponseWriter, r *http.Request, c caller, n int64, err error) {
	ctx := r.Context()
	if errors.Is(err, credits.ErrUnconfirmed) {
		// Retrying the write could charge twice, and refunding a write
		// that may not have landed could give credits away: the outcome is
		// logged for reconciliation and the client is told the truth.
		s.Log.ErrorContext(ctx, "debit unconfirmed", "request_id", c.RequestID, "org_id", c.OrgID, "key_id", c.KeyID, "amount", n, "error", err)
		setOutcome(ctx, "unconfirmed")
		writeDetail(w, http.StatusServiceUnavailable, "Could not confirm the charge: it was made at most once. Retry with an Idempotency-Key header to be charged at most once across retries")
		return
	}
	s.Log.ErrorContext(ctx, "debit failed", "request_id", c.RequestID, "org_id", c.OrgID, "key_id", c.KeyID, "amount", n, "error", err)
	setOutcome(ctx, "not_charged")
	writeDetail(w, http.StatusServiceUnavailable, "Could not charge credits; nothing was charged, try again")
}

var notSlug = regexp.MustCompile(`[^a-z0-9]+`)

// utmValue is a readable, unique utm value for an audience: its name as a
// slug and the first characters of its id.
func utmValue(name, id string) string {
	slug := strings.Trim(notSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(slug) > 40 {
		slug = strings.TrimRight(slug[:40], "-")
	}
	short := strings.ReplaceAll(id, "-", "")
	if len(short) > 12 {
		short = short[len(short)-12:]
	}
	if slug == "" {
		return "cl-" + short
	}
	return "cl-" + slug + "-" + short
}
