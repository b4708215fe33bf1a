// Package admin is the operators' side of the service: organizations, their
// keys, credit grants and adjustments, and the ledger. The admin CLI
// (infra/admin), the admin API (shared/adminapi) and the local demo seeding
// all call it, so every surface validates and records the same way.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
)

// The kinds of failure, for callers that map them to exit codes or HTTP
// statuses; the error's text says what exactly was wrong. Every failing
// operation writes nothing.
var (
	// ErrInvalid means the input itself is wrong (amount ≤ 0, a past expiry, a grace over 24 h...).
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound means the organization or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request is well-formed but the current state
	// refuses it (a revoked key, a balance that would go below zero, an
	// existing organization, a reference used for another grant).
	ErrConflict = errors.New("conflict")
)

// RevokedRetention is how long a revoked key stays listed before the keys
// table's TTL may delete it (a key that expires sooner goes sooner).
const RevokedRetention = 30 * 24 * time.Hour

// MaxGrace bounds a rotation's grace period, during which the old key keeps working.
const MaxGrace = 24 * time.Hour

// Service runs the operations over DynamoDB.
type Service struct {
	Orgs dynamo.Orgs
	Keys dynamo.Keys
	// Now is the clock; tests set it.
	Now func() time.Time
	// Log records each change. Raw keys never reach it.
	Log *slog.Logger
}

// New makes a Service over the given tables.
func New(client dynamo.Client, tables config.Tables, log *slog.Logger) *Service {
	return &Service{
		Orgs: dynamo.Orgs{Client: client, Table: tables.Orgs},
		Keys: dynamo.Keys{Client: client, Table: tables.Keys},
		Now:  time.Now,
		Log:  log,
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func (s *Service) now() time.Time { return s.Now().UTC() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

var orgIDPattern = regexp.MustCompile(`^org_[a-z0-9_-]{1,60}$`)

// text checks a required or optional free-text field.
func text(field, v string, required bool, maxLen int) error {
	if strings.TrimSpace(v) == "" {
		if required {
			return invalid("%s is required", field)
		}
		return nil
	}
	if len(v) > maxLen {
		return invalid("%s is longer than %d bytes", field, maxLen)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return invalid("%s contains control characters", field)
	}
	return nil
}

// NewOrg is the input of CreateOrg.
type NewOrg struct {
	ID      string // optional; org_ followed by lower-case letters, digits, _ or -; generated when empty
	Name    string
	Plan    string // a plan of credits.Plans
	KeyName string // name of the first key; "default" when empty
}

// CreateOrg creates an organization on a plan, with the plan's monthly
// allotment as its opening subscription balance (a ledger entry records
// it), and issues its first key, all in one transaction.
func (s *Service) CreateOrg(ctx context.Context, in NewOrg) (Created, error) {
	if in.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		in.ID = "org_" + hex.EncodeToString(b[:])
	}
	if !orgIDPattern.MatchString(in.ID) {
		return Created{}, invalid("organization id %q must be org_ followed by 1 to 60 lower-case letters, digits, _ or -", in.ID)
	}
	if err := text("name", in.Name, true, 200); err != nil {
		return Created{}, err
	}
	if in.KeyName == "" {
		in.KeyName = "default"
	}
	if err := text("key name", in.KeyName, true, 100); err != nil {
		return Created{}, err
	}
	plan, err := credits.PlanByID(in.Plan)
	if err != nil {
		return Created{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := s.now()
	raw, rec, err := apikey.Issue(in.ID, in.KeyName, now, time.Time{})
	if err != nil {
		return Created{}, err
	}
	put, err := s.Keys.PutItem(rec)
	if err != nil {
		return Created{}, err
	}
	opening := credits.Entry{
		ID: newID(), OrgID: in.ID, At: now, Type: credits.EntryGrant, Bucket: credits.Subscription,
		Amount: plan.Monthly, Reason: "opening allotment of plan " + plan.ID, Period: dynamo.UsagePeriod(now),
	}
	if err := s.Orgs.Create(ctx, in.ID, in.Name, plan, opening, put); err != nil {
		if errors.Is(err, dynamo.ErrExists) {
			return Created{}, fmt.Errorf("%w: organization %s already exists", ErrConflict, in.ID)
		}
		return Created{}, err
	}
	s.Log.InfoContext(ctx, "organization created", "org_id", in.ID, "plan", plan.ID, "key_id", rec.ID, "display", rec.Display)
	org, err := s.ShowOrg(ctx, in.ID)
	if err != nil {
		return Created{}, err
	}
	return Created{Org: org, Key: IssuedKey{Key: keyView(rec, now), RawKey: string(raw)}}, nil
}

// org reads an organization, mapping its absence to ErrNotFound.
func (s *Service) org(ctx context.Context, id string) (dynamo.Org, error) {
	o, err := s.Orgs.Get(ctx, id)
	if errors.Is(err, dynamo.ErrNoAccount) {
		return dynamo.Org{}, fmt.Errorf("%w: organization %q", ErrNotFound, id)
	}
	return o, err
}

// ShowOrg reads an organization with its balance, usage this period and key counts.
func (s *Service) ShowOrg(ctx context.Context, id string) (Org, error) {
	o, err := s.org(ctx, id)
	if err != nil {
		return Org{}, err
	}
	keys, err := s.Keys.ByOrg(ctx, id)
	if err != nil {
		return Org{}, err
	}
	return orgView(o, keys, s.now()), nil
}

// ListOrgs lists every organization (without key counts, which would cost
// a query each).
func (s *Service) ListOrgs(ctx context.Context) ([]Org, error) {
	orgs, err := s.Orgs.List(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]Org, 0, len(orgs))
	for _, o := range orgs {
		v := orgView(o, nil, now)
		out = append(out, v)
	}
	return out, nil
}

// NewKey is the input of IssueKey. At most one of Expires and TTL is set;
// neither means the key never expires.
type NewKey struct {
	Name    string
	Expires time.Time
	TTL     time.Duration
}

// IssueKey issues a key for an organization. The raw key is in the result
// and nowhere else.
func (s *Service) IssueKey(ctx context.Context, org string, in NewKey) (IssuedKey, error) {
	if in.Name == "" {
		in.Name = "default"
	}
	if err := text("name", in.Name, true, 100); err != nil {
		return IssuedKey{}, err
	}
	now := s.now()
	expires := in.Expires
	switch {
	case !in.Expires.IsZero() && in.TTL != 0:
		return IssuedKey{}, invalid("give an expiry time or a duration, not both")
	case in.TTL < 0:
		return IssuedKey{}, invalid("expiry duration %s is not positive", in.TTL)
	case in.TTL > 0:
		expires = now.Add(in.TTL)
	case !expires.IsZero() && !expires.After(now):
		return IssuedKey{}, invalid("expiry %s is in the past", expires.UTC().Format(time.RFC3339))
	}
	if _, err := s.org(ctx, org); err != nil {
		return IssuedKey{}, err
	}
	raw, rec, err := apikey.Issue(org, in.Name, now, expires)
	if err != nil {
		return IssuedKey{}, err
	}
	if err := s.Keys.Put(ctx, rec); err != nil {
		return IssuedKey{}, err
	}
	s.Log.InfoContext(ctx, "key issued", "org_id", org, "key_id", rec.ID, "display", rec.Display)
	return IssuedKey{Key: keyView(rec, now), RawKey: string(raw)}, nil
}

// ListKeys lists an organization's keys, oldest first, with no key or hash.
func (s *Service) ListKeys(ctx context.Context, org string) ([]Key, error) {
	if _, err := s.org(ctx, org); err != nil {
		return nil, err
	}
	recs, err := s.Keys.ByOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	return keyViews(recs, s.now()), nil
}

// liveKey finds a key that may still be revoked or rotated.
func (s *Service) liveKey(ctx context.Context, org, id string) (apikey.Record, error) {
	if _, err := s.org(ctx, org); err != nil {
		return apikey.Record{}, err
	}
	rec, err := s.Keys.ByID(ctx, org, id)
	if errors.Is(err, apikey.ErrNotFound) {
		return apikey.Record{}, fmt.Errorf("%w: key %q of organization %s", ErrNotFound, id, org)
	}
	if err != nil {
		return apikey.Record{}, err
	}
	if !rec.Revoked.IsZero() {
		return apikey.Record{}, fmt.Errorf("%w: key %s is already revoked", ErrConflict, id)
	}
	return rec, nil
}

// RevokeKey revokes a key. The authorizer refuses it for every new
// authorization at once; API Gateway may keep answering from a cached
// decision for up to AuthorizerCacheTtl seconds.
func (s *Service) RevokeKey(ctx context.Context, org, id string) (Key, error) {
	rec, err := s.liveKey(ctx, org, id)
	if err != nil {
		return Key{}, err
	}
	now := s.now()
	out, err := s.Keys.Revoke(ctx, rec, now, now.Add(RevokedRetention))
	if errors.Is(err, dynamo.ErrKeyChanged) {
		return Key{}, fmt.Errorf("%w: key %s changed meanwhile; try again", ErrConflict, id)
	}
	if err != nil {
		return Key{}, err
	}
	s.Log.InfoContext(ctx, "key revoked", "org_id", org, "key_id", id)
	return keyView(out, now), nil
}

// RotateKey issues a new key with the same organization and name and lets
// the old one work for grace more (0 to 24 h), after which it expires like
// any key. A revoked, expired or already rotated key cannot be rotated.
func (s *Service) RotateKey(ctx context.Context, org, id string, grace time.Duration) (Rotated, error) {
	if grace < 0 || grace > MaxGrace {
		return Rotated{}, invalid("grace %s is not between 0 and 24h", grace)
	}
	rec, err := s.liveKey(ctx, org, id)
	if err != nil {
		return Rotated{}, err
	}
	now := s.now()
	switch {
	case !rec.Usable(now):
		return Rotated{}, fmt.Errorf("%w: key %s has expired", ErrConflict, id)
	case !rec.Rotated.IsZero():
		return Rotated{}, fmt.Errorf("%w: key %s was already rotated; rotate its successor", ErrConflict, id)
	}
	oldExpires := now.Add(grace)
	if !rec.Expires.IsZero() && rec.Expires.Before(oldExpires) {
		oldExpires = rec.Expires // a grace period never lengthens a key's life
	}
	raw, next, err := apikey.Issue(org, rec.Name, now, rec.Expires)
	if err != nil {
		return Rotated{}, err
	}
	old, err := s.Keys.Rotate(ctx, rec, next, oldExpires, now)
	if errors.Is(err, dynamo.ErrKeyChanged) {
		return Rotated{}, fmt.Errorf("%w: key %s changed meanwhile; try again", ErrConflict, id)
	}
	if err != nil {
		return Rotated{}, err
	}
	s.Log.InfoContext(ctx, "key rotated", "org_id", org, "old_key_id", id, "key_id", next.ID, "display", next.Display, "grace", grace.String())
	return Rotated{New: IssuedKey{Key: keyView(next, now), RawKey: string(raw)}, Old: keyView(old, now)}, nil
}

// maxAmount bounds one grant or adjustment, against typos.
const maxAmount = 1_000_000_000

// Grant is the input of GrantCredits.
type Grant struct {
	Bucket string // purchased or bonus
	Amount int64
	// Reference is the external reference, e.g. a payment id: granting
	// again with the same reference returns the first result and adds
	// nothing. Optional, but without one a retried grant adds twice.
	Reference string
	// Expires is a bonus grant's expiry; zero for none. Purchased credits never expire.
	Expires time.Time
}

// GrantCredits adds purchased or bonus credits and writes a ledger entry.
func (s *Service) GrantCredits(ctx context.Context, org string, in Grant) (Granted, error) {
	now := s.now()
	switch {
	case in.Bucket != string(credits.Purchased) && in.Bucket != string(credits.Bonus):
		return Granted{}, invalid("bucket %q: grants are purchased or bonus", in.Bucket)
	case in.Amount <= 0 || in.Amount > maxAmount:
		return Granted{}, invalid("amount %d is not between 1 and %d", in.Amount, maxAmount)
	case in.Bucket == string(credits.Purchased) && !in.Expires.IsZero():
		return Granted{}, invalid("purchased credits never expire; give bonus credits an expiry")
	case !in.Expires.IsZero() && !in.Expires.After(now):
		return Granted{}, invalid("expiry %s is in the past", in.Expires.UTC().Format(time.RFC3339))
	}
	if err := text("reference", in.Reference, false, 200); err != nil {
		return Granted{}, err
	}
	if _, err := s.org(ctx, org); err != nil {
		return Granted{}, err
	}
	e := credits.Entry{ID: newID(), OrgID: org, At: now, Type: credits.EntryGrant, Bucket: credits.Bucket(in.Bucket),
		Amount: in.Amount, Reference: in.Reference}
	if e.Bucket == credits.Bonus {
		e.GrantID = "g-" + e.ID
	}
	out, dup, err := s.Orgs.Apply(ctx, dynamo.Change{Entry: e, GrantExpires: in.Expires})
	switch {
	case errors.Is(err, dynamo.ErrReferenceReused):
		return Granted{}, fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, dynamo.ErrNoAccount):
		return Granted{}, fmt.Errorf("%w: organization %q", ErrNotFound, org)
	case err != nil:
		return Granted{}, err
	}
	s.Log.InfoContext(ctx, "credits granted", "org_id", org, "entry_id", out.ID, "bucket", in.Bucket,
		"amount", in.Amount, "reference", in.Reference, "duplicate", dup)
	return Granted{Entry: entryView(out), Duplicate: dup}, nil
}

// Adjustment is the input of AdjustCredits.
type Adjustment struct {
	Bucket string // subscription or purchased
	Amount int64  // signed, not 0
	Reason string // required
}

// AdjustCredits applies an operator's signed correction to a bucket and
// writes a ledger entry; it never takes a bucket below zero.
func (s *Service) AdjustCredits(ctx context.Context, org string, in Adjustment) (Entry, error) {
	switch {
	case in.Bucket != string(credits.Subscription) && in.Bucket != string(credits.Purchased):
		return Entry{}, invalid("bucket %q: adjustments are to subscription or purchased", in.Bucket)
	case in.Amount == 0 || in.Amount > maxAmount || in.Amount < -maxAmount:
		return Entry{}, invalid("amount %d is not a non-zero number between -%d and %d", in.Amount, maxAmount, maxAmount)
	}
	if err := text("reason", in.Reason, true, 500); err != nil {
		return Entry{}, err
	}
	if _, err := s.org(ctx, org); err != nil {
		return Entry{}, err
	}
	e := credits.Entry{ID: newID(), OrgID: org, At: s.now(), Type: credits.EntryAdjustment,
		Bucket: credits.Bucket(in.Bucket), Amount: in.Amount, Reason: in.Reason}
	out, _, err := s.Orgs.Apply(ctx, dynamo.Change{Entry: e})
	switch {
	case errors.Is(err, dynamo.ErrBelowZero):
		return Entry{}, fmt.Errorf("%w: %s would go below zero", ErrConflict, in.Bucket)
	case errors.Is(err, dynamo.ErrNoAccount):
		return Entry{}, fmt.Errorf("%w: organization %q", ErrNotFound, org)
	case err != nil:
		return Entry{}, err
	}
	s.Log.InfoContext(ctx, "credits adjusted", "org_id", org, "entry_id", out.ID, "bucket", in.Bucket, "amount", in.Amount)
	return entryView(out), nil
}

// DefaultPageSize and MaxPageSize bound a ledger page.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Ledger reads a page of an organization's ledger, newest first; cursor is
// "" or the Next of the previous page.
func (s *Service) Ledger(ctx context.Context, org string, limit int, cursor string) (LedgerPage, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return LedgerPage{}, invalid("limit %d is not between 1 and %d", limit, MaxPageSize)
	}
	p, err := s.Orgs.Ledger(ctx, org, int32(limit), cursor)
	switch {
	case errors.Is(err, dynamo.ErrNoAccount):
		return LedgerPage{}, fmt.Errorf("%w: organization %q", ErrNotFound, org)
	case errors.Is(err, dynamo.ErrBadCursor):
		return LedgerPage{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	case err != nil:
		return LedgerPage{}, err
	}
	out := LedgerPage{Entries: []Entry{}, Next: p.Next}
	for _, e := range p.Entries {
		out.Entries = append(out.Entries, entryView(e))
	}
	return out, nil
}
