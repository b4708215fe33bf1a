package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/idempotency"
)

// IdempotencyStore charges under an Idempotency-Key: the charge and the
// key's record are committed together, so a duplicate can never be charged.
type IdempotencyStore interface {
	// Charge debits n and claims the key; *idempotency.ExistsError when the
	// key has a live record (nothing charged).
	Charge(ctx context.Context, org string, c idempotency.Claim, n int64, now time.Time) (credits.Debit, credits.Balance, error)
	// TakeOver hands a record whose holder's lease ran out to c.
	TakeOver(ctx context.Context, org string, r idempotency.Record, c idempotency.Claim, now time.Time) (idempotency.Record, error)
	// Complete stores the response to replay.
	Complete(ctx context.Context, org string, c idempotency.Claim, status int, body []byte) error
	// Release forgets the key after failed, refunded work.
	Release(ctx context.Context, org string, c idempotency.Claim) error
}

// defaultLease bounds how long a claim is held when the request has no
// deadline (tests, local runs); on Lambda the deadline is the function's.
const defaultLease = 30 * time.Second

type claimKey struct{}

// idempotent reads the Idempotency-Key header of a charged route: it
// refuses an unusable key with 422 and, for a usable one, fingerprints the
// request (method, path, query, body) for the charge to claim. Without the
// header it does nothing, so the hot path stays one write.
func (s *server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(idempotency.Header)
		if len(values) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		key, err := idempotency.ParseKey(values[0])
		for _, v := range values[1:] {
			if v != values[0] {
				err = idempotency.ErrInvalidKey
			}
		}
		if err != nil {
			writeInvalid(w, []FieldError{{Type: "value_error", Loc: []any{"header", "idempotency-key"}, Msg: err.Error() + ", and sent once"}})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
		if err != nil {
			writeDetail(w, http.StatusBadRequest, "Could not read the request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c := idempotency.Claim{Key: key, Fingerprint: idempotency.Fingerprint(r.Method, r.URL.Path, r.URL.Query(), body)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimKey{}, c)))
	})
}

func claimOf(ctx context.Context) (idempotency.Claim, bool) {
	c, ok := ctx.Value(claimKey{}).(idempotency.Claim)
	return c, ok
}

// chargeOnce is charge for a request with an Idempotency-Key: the charge
// and the claim are one write; a duplicate replays the stored response,
// waits (409) or is refused (422), and is never charged.
func (s *server) chargeOnce(w http.ResponseWriter, r *http.Request, n int64, claim idempotency.Claim, work func(ctx context.Context, balanceAfter int64) (any, error)) {
	ctx := r.Context()
	c := callerOf(ctx)
	if s.Idempotency == nil {
		writeDetail(w, http.StatusServiceUnavailable, "Idempotency-Key is not available on this endpoint; nothing was charged")
		return
	}
	now := s.Now()
	claim.Token = c.RequestID
	if claim.Token == "" {
		claim.Token = s.NewID()
	}
	// The lease is measured on the injected clock: the Lambda cannot run
	// past its deadline, so after it a holder that never answered is gone.
	lease := defaultLease
	if dl, ok := ctx.Deadline(); ok {
		lease = time.Until(dl)
	}
	claim.LeaseUntil = now.Add(lease)

	d, after, err := s.Idempotency.Charge(ctx, c.OrgID, claim, n, now)
	var exists *idempotency.ExistsError
	switch {
	case errors.As(err, &exists):
		rec := exists.Record
		switch idempotency.Judge(rec, claim.Fingerprint, now) {
		case idempotency.Replay:
			setOutcome(ctx, "replayed")
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(idempotency.ReplayedHeader, "true")
			w.WriteHeader(rec.ResponseStatus)
			_, _ = w.Write(rec.ResponseBody)
			return
		case idempotency.Mismatch:
			setOutcome(ctx, "key_reused")
			writeDetail(w, http.StatusUnprocessableEntity, "Idempotency-Key was already used with a different request (method, path, query or body); nothing was charged")
			return
		case idempotency.TakeOver:
			taken, err := s.Idempotency.TakeOver(ctx, c.OrgID, rec, claim, now)
			if err != nil {
				setOutcome(ctx, "in_progress")
				writeDetail(w, http.StatusConflict, "A request with this Idempotency-Key is in progress; nothing was charged, retry later")
				return
			}
			// The first request's charge stands and pays for this work.
			s.Log.WarnContext(ctx, "idempotent request taken over", "request_id", c.RequestID, "org_id", c.OrgID, "amount", taken.Debit.Amount)
			d, n = taken.Debit, 0
			if b, err := s.Credits.Balance(ctx, c.OrgID); err == nil {
				after = b
			}
		default:
			setOutcome(ctx, "in_progress")
			writeDetail(w, http.StatusConflict, "A request with this Idempotency-Key is in progress; nothing was charged, retry later")
			return
		}
	case err != nil:
		s.notCharged(w, r, c, n, err)
		return
	}

	body, err := work(ctx, after.Total(now))
	if err != nil {
		s.Log.ErrorContext(ctx, "work failed after charge", "request_id", c.RequestID, "org_id", c.OrgID, "amount", d.Amount, "error", err)
		s.refund(ctx, c, d)
		if err := s.Idempotency.Release(context.WithoutCancel(ctx), c.OrgID, claim); err != nil {
			// The record then stays in progress until its lease ends, when a
			// retry takes it over under the refunded charge: logged, as it
			// means that retry runs uncharged.
			s.Log.ErrorContext(ctx, "idempotency release failed", "request_id", c.RequestID, "org_id", c.OrgID, "error", err)
		}
		setOutcome(ctx, "refunded")
		writeDetail(w, http.StatusInternalServerError, "Internal Server Error; the credits were not charged")
		return
	}
	data, err := json.Marshal(body)
	if err != nil {
		// Cannot happen for this package's response types; treated as
		// failed work would be, it would still be refunded.
		s.refund(ctx, c, d)
		_ = s.Idempotency.Release(context.WithoutCancel(ctx), c.OrgID, claim)
		writeDetail(w, http.StatusInternalServerError, "Internal Server Error; the credits were not charged")
		return
	}
	data = append(data, '\n')
	if err := s.Idempotency.Complete(context.WithoutCancel(ctx), c.OrgID, claim, http.StatusOK, data); err != nil {
		// The work is done and paid for, so the client gets its answer; a
		// retry meanwhile sees 409 until the lease ends.
		s.Log.ErrorContext(ctx, "idempotency complete failed", "request_id", c.RequestID, "org_id", c.OrgID, "error", err)
	}
	recordCharge(ctx, n)
	setOutcome(ctx, "charged")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
