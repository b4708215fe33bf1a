// Package demo seeds a local stack with an organization that has every kind
// of credit and a fresh key, so that `make run` is ready to call. It goes
// through package admin, as an operator would.
package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/dynamo"
)

// OrgID is the demo organization's id.
const OrgID = "org_demo"

// Result is what a seeding run made: the demo organization and a key for it.
type Result struct {
	OrgID, KeyID string
	RawKey       apikey.Key
}

// Seed creates the demo organization on the starter plan with purchased
// and bonus credits the first time, and issues a new key every time: raw
// keys are not stored, so an earlier run's key cannot be shown again.
func Seed(ctx context.Context, client dynamo.Client, tables config.Tables, now time.Time) (Result, error) {
	svc := admin.New(client, tables, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svc.Now = func() time.Time { return now }
	created, err := svc.CreateOrg(ctx, admin.NewOrg{ID: OrgID, Name: "Demo Organization", Plan: "starter", KeyName: "demo"})
	if errors.Is(err, admin.ErrConflict) {
		k, err := svc.IssueKey(ctx, OrgID, admin.NewKey{Name: "demo"})
		if err != nil {
			return Result{}, err
		}
		return Result{OrgID: OrgID, KeyID: k.ID, RawKey: apikey.Key(k.RawKey)}, nil
	}
	if err != nil {
		return Result{}, err
	}
	grants := []admin.Grant{
		{Bucket: "purchased", Amount: 500, Reference: "demo-purchase"},
		{Bucket: "bonus", Amount: 100, Reference: "demo-welcome", Expires: now.Add(30 * 24 * time.Hour).Truncate(time.Second)},
	}
	for _, g := range grants {
		if _, err := svc.GrantCredits(ctx, OrgID, g); err != nil {
			return Result{}, err
		}
	}
	return Result{OrgID: OrgID, KeyID: created.Key.ID, RawKey: apikey.Key(created.Key.RawKey)}, nil
}
