// Package api is the customer-facing HTTP API: the credits, contacts and
// audiences endpoints. It is a plain http.Handler; each endpoint Lambda runs
// it behind aws-lambda-go-api-proxy, and the organization of every request
// comes from the authorizer's context, never from the request itself.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/crm"
)

// Limits every caller can rely on; the README documents them.
const (
	// MaxBodyBytes is the largest request body accepted; larger ones get 413.
	MaxBodyBytes = 64 << 10
	// MaxRequiredCredits is the largest required_credits one request may ask for.
	MaxRequiredCredits = 1000
)

// Credits is the balance store the endpoints charge.
type Credits interface {
	Balance(ctx context.Context, org string) (credits.Balance, error)
	Debit(ctx context.Context, org string, n int64, now time.Time) (credits.Debit, credits.Balance, error)
	Refund(ctx context.Context, org string, d credits.Debit) (credits.Balance, error)
}

// ContactStore keeps contacts.
type ContactStore interface {
	Put(ctx context.Context, c crm.Contact) error
}

// AudienceStore keeps audiences.
type AudienceStore interface {
	Put(ctx context.Context, a crm.Audience) error
}

// Deps are what the API needs from the outside world. A function that serves
// only some routes may leave the others' stores nil.
type Deps struct {
	Credits   Credits
	Contacts  ContactStore
	Audiences AudienceStore
	// Idempotency serves requests with an Idempotency-Key header; nil
	// answers them 503.
	Idempotency IdempotencyStore
	Now         func() time.Time // defaults to time.Now
	NewID       func() string    // defaults to UUIDv7
	Log         *slog.Logger     // defaults to slog.Default()
}

// New returns the API with every route.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.NewID == nil {
		d.NewID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &server{Deps: d}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/credits", s.getCredits)
	mux.Handle("POST /api/contacts/create", s.idempotent(http.HandlerFunc(s.createContact)))
	mux.Handle("POST /api/audiences/create", s.idempotent(http.HandlerFunc(s.createAudience)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeDetail(w, http.StatusNotFound, "Not Found")
	})
	return s.logged(s.authenticated(mux))
}

type server struct {
	Deps
}
