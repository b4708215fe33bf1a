// Package demo seeds a local stack with an organization that has every kind
// of credit and a fresh key, so that `make run` is ready to call.
package demo

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/dynamo"
)

// OrgID is the demo organization's id.
const OrgID = "org_demo"

// Result is what a seeding run made: the demo organization and a key for it.
type Result struct {
	OrgID, KeyID string
	RawKey       apikey.Key
}

// Seed creates the demo organization with subscription, purchased and bonus
// credits the first time, and issues a new key every time: raw keys are not
// stored, so an earlier run's key cannot be shown again.
func Seed(ctx context.Context, client *dynamodb.Client, tables config.Tables, now time.Time) (Result, error) {
	orgs := &dynamo.Credits{Client: client, Table: tables.Orgs}
	opening := credits.Balance{
		Subscription: 1000,
		Purchased:    500,
		BonusRev:     1,
		Bonus:        []credits.Grant{{ID: "welcome", Remaining: 100, ExpiresAt: now.Add(30 * 24 * time.Hour).Truncate(time.Second)}},
	}
	if err := orgs.Open(ctx, OrgID, "Demo Organization", credits.Plan{ID: "starter", Monthly: 1000, RolloverCap: 2000}, opening, now); err != nil && !errors.Is(err, dynamo.ErrExists) {
		return Result{}, err
	}
	key, rec, err := apikey.Issue(OrgID, "demo", now, time.Time{})
	if err != nil {
		return Result{}, err
	}
	if err := (dynamo.Keys{Client: client, Table: tables.Keys}).Put(ctx, rec); err != nil {
		return Result{}, err
	}
	return Result{OrgID: OrgID, KeyID: rec.ID, RawKey: key}, nil
}
