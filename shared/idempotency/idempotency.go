// Package idempotency holds the rules of the Idempotency-Key header: which
// keys are acceptable, what makes two requests "the same", how long a first
// response is kept, and what a duplicate gets. It knows nothing of
// DynamoDB or HTTP plumbing; package dynamo stores records and package api
// answers requests.
package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/contactlevel/metering/shared/credits"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// ReplayedHeader marks a response that repeats a stored first response.
const ReplayedHeader = "Idempotent-Replayed"

// MaxKeyLen is the longest key accepted.
const MaxKeyLen = 255

// Window is how long a first response is replayed; after it the key may be
// used again as if new.
const Window = 24 * time.Hour

// ErrInvalidKey means the header's value is not 1 to MaxKeyLen printable
// ASCII characters.
var ErrInvalidKey = fmt.Errorf("%s must be 1 to %d printable ASCII characters", Header, MaxKeyLen)

// ParseKey checks a header value. Unlike X-Api-Key, surrounding spaces are
// not trimmed: a key is opaque, and " a" and "a" being one key would surprise.
func ParseKey(s string) (string, error) {
	if len(s) == 0 || len(s) > MaxKeyLen {
		return "", ErrInvalidKey
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", ErrInvalidKey
		}
	}
	return s, nil
}

// Fingerprint identifies a request's content: its method, path, query
// (parameters sorted, so their order does not matter) and body, byte for
// byte. A key reused with another fingerprint is a client bug, not a retry.
func Fingerprint(method, path string, query url.Values, body []byte) string {
	h := sha256.New()
	for _, part := range []string{method, path, query.Encode()} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Status is where a keyed request stands.
type Status string

// The statuses of a record.
const (
	// InProgress: the charge is made and the work is running (or its
	// container died; see Record.LeaseUntil).
	InProgress Status = "in_progress"
	// Done: the response is stored and is replayed to duplicates.
	Done Status = "done"
)

// Claim is what a request that carries a key asks to record, together
// with its charge.
type Claim struct {
	Key         string
	Fingerprint string
	// Token identifies the request that holds the claim (its request id),
	// so that only it completes or releases the record.
	Token string
	// LeaseUntil is when the holder is certainly no longer running: the
	// Lambda's deadline. After it a duplicate may take the request over.
	LeaseUntil time.Time
}

// Record is a stored claim.
type Record struct {
	OrgID string
	Claim
	Status    Status
	CreatedAt time.Time
	// ExpiresAt ends the replay window; storage deletes the record some
	// time after it (TTL), so readers also compare it with the clock.
	ExpiresAt time.Time
	// Debit is the charge the claim was made with, kept so that a request
	// taken over after its holder died can still be refunded.
	Debit credits.Debit
	// ResponseStatus and ResponseBody are the first response, once Done.
	ResponseStatus int
	ResponseBody   []byte
}

// Expired reports whether the record no longer counts at now.
func (r Record) Expired(now time.Time) bool {
	return !r.ExpiresAt.After(now)
}

// Outcome is what a duplicate request gets.
type Outcome int

// The outcomes of a duplicate.
const (
	// Replay the stored response; charge nothing.
	Replay Outcome = iota
	// Mismatch: the key was used for a different request (422).
	Mismatch
	// Running: the first request is still being served (409).
	Running
	// TakeOver: the first request's holder is gone without an answer; this
	// request may finish it under the existing charge.
	TakeOver
	// Fresh: the record has expired and does not count.
	Fresh
)

// Judge decides what a request with fingerprint gets at now, given the
// record its key already has.
func Judge(r Record, fingerprint string, now time.Time) Outcome {
	switch {
	case r.Expired(now):
		return Fresh
	case r.Fingerprint != fingerprint:
		return Mismatch
	case r.Status == Done:
		return Replay
	case !r.LeaseUntil.IsZero() && !r.LeaseUntil.After(now):
		return TakeOver
	default:
		return Running
	}
}

// ExistsError means the key already has a live record; nothing was charged.
type ExistsError struct {
	Record Record
}

// Error says the key is taken; the record itself is in Record.
func (e *ExistsError) Error() string {
	return fmt.Sprintf("idempotency key already used (status %s)", e.Record.Status)
}

// ErrLost means the record this request held is no longer its own (taken
// over, or expired and reused); it must not complete or release it.
var ErrLost = errors.New("idempotency record is no longer held by this request")
