package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
)

// RolloverIndex is the sparse index of OrgsTable (template.yaml) through
// which the monthly rollover finds the organizations due: partition key
// rollover_shard, sort key rollover_due.
const RolloverIndex = "rollover-due"

// RolloverShards is how many shards organizations with a plan are spread
// over. Each shard is one partition of the index, read by one worker, so it
// bounds both the parallelism of a run and the write rate each index
// partition sees while the rollover moves organizations along. It may be
// raised later (organizations keep their shard, and a run reads shards 0 to
// RolloverShards-1), never lowered.
const RolloverShards = 32

// Attributes of the organization item that drive the rollover. Only
// organizations with a plan carry them, which keeps the index sparse.
const (
	attrRolloverShard  = "rollover_shard"
	attrRolloverDue    = "rollover_due"    // the next period to grant, YYYY-MM
	attrRolloverPeriod = "rollover_period" // the last period granted, YYYY-MM
)

// rolloverAttrs marks an organization as rolled over for done and due for
// the month after.
func rolloverAttrs(org string, done credits.Period) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrRolloverShard:  &types.AttributeValueMemberN{Value: strconv.Itoa(credits.RolloverShard(org, RolloverShards))},
		attrRolloverDue:    &types.AttributeValueMemberS{Value: done.Next().String()},
		attrRolloverPeriod: &types.AttributeValueMemberS{Value: done.String()},
	}
}

// RolloverClient is the part of the DynamoDB API the rollover uses: the
// shared Client plus BatchGetItem, which reads a page of due organizations
// in one call.
type RolloverClient interface {
	Client
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Rollovers applies the monthly rollover to organizations in the
// organizations table.
type Rollovers struct {
	Client RolloverClient
	Table  string
}

// RolloverAccount is what a rollover reads of an organization.
type RolloverAccount struct {
	Org     string
	Plan    credits.Plan // zero ID: no plan
	Balance credits.Balance
	// Last is the last period granted, "" when none was.
	Last string
}

// Status says what a rollover did to one organization.
type Status string

// What a rollover can do to an organization.
const (
	Granted     Status = "granted"      // the period was applied (or, dry, would be)
	AlreadyDone Status = "already-done" // the period, or a later one, was applied before
	NoPlan      Status = "no-plan"      // the organization has no plan; nothing changed
)

// RolloverOutcome is the result for one organization.
type RolloverOutcome struct {
	Org      string
	Status   Status
	Rollover credits.Rollover // when Granted
}

// maxRolloverAttempts bounds the writes of one organization's rollover. A
// write fails only when the balance changed since it was read (a debit
// landed in between) or another run got there first; each retry starts
// from a fresh read, so only an organization charged continuously runs out.
const maxRolloverAttempts = 10

// Due lists up to limit organizations of shard waiting for period p or an
// earlier one, after start (nil for the first page); next is nil after the
// last page. The index is eventually consistent, so an organization may
// still be listed just after its rollover: Roll re-checks on the item.
func (r Rollovers) Due(ctx context.Context, shard int, p credits.Period, start map[string]types.AttributeValue, limit int32) (orgs []string, next map[string]types.AttributeValue, err error) {
	key := expression.Key(attrRolloverShard).Equal(expression.Value(shard)).
		And(expression.Key(attrRolloverDue).LessThanEqual(expression.Value(p.String())))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return nil, nil, err
	}
	out, err := r.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(r.Table),
		IndexName:                 aws.String(RolloverIndex),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ExclusiveStartKey:         start,
		Limit:                     aws.Int32(limit),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("query due organizations: %w", err)
	}
	for _, it := range out.Items {
		if v, ok := it["org_id"].(*types.AttributeValueMemberS); ok {
			orgs = append(orgs, v.Value)
		}
	}
	return orgs, out.LastEvaluatedKey, nil
}

// Load reads the accounts of up to 100 organizations with strongly
// consistent reads; organizations that no longer exist are left out.
func (r Rollovers) Load(ctx context.Context, orgs []string) ([]RolloverAccount, error) {
	if len(orgs) == 0 {
		return nil, nil
	}
	keys := make([]map[string]types.AttributeValue, len(orgs))
	for i, org := range orgs {
		keys[i] = orgKey(org)
	}
	var accounts []RolloverAccount
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 0 {
			// UnprocessedKeys means throttling: back off before asking again.
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		out, err := r.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			r.Table: {Keys: keys, ConsistentRead: aws.Bool(true)},
		}})
		if err != nil {
			return nil, fmt.Errorf("read due organizations: %w", err)
		}
		for _, it := range out.Responses[r.Table] {
			a, err := decodeAccount(it)
			if err != nil {
				return nil, err
			}
			accounts = append(accounts, a)
		}
		keys = out.UnprocessedKeys[r.Table].Keys
	}
	return accounts, nil
}

func (r Rollovers) load(ctx context.Context, org string) (RolloverAccount, bool, error) {
	out, err := r.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.Table), Key: orgKey(org), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return RolloverAccount{}, false, fmt.Errorf("read organization: %w", err)
	}
	if out.Item == nil {
		return RolloverAccount{}, false, nil
	}
	a, err := decodeAccount(out.Item)
	return a, err == nil, err
}

// accountItem is the part of the organization item a rollover reads besides the balance.
type accountItem struct {
	Org         string `dynamodbav:"org_id"`
	PlanID      string `dynamodbav:"plan_id"`
	PlanMonthly int64  `dynamodbav:"plan_monthly"`
	PlanCap     int64  `dynamodbav:"plan_cap"`
	Last        string `dynamodbav:"rollover_period"`
}

func decodeAccount(item map[string]types.AttributeValue) (RolloverAccount, error) {
	var it accountItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return RolloverAccount{}, fmt.Errorf("decode organization: %w", err)
	}
	b, err := decodeBalance(item)
	if err != nil {
		return RolloverAccount{}, err
	}
	return RolloverAccount{
		Org: it.Org, Balance: b, Last: it.Last,
		Plan: credits.Plan{ID: it.PlanID, Monthly: it.PlanMonthly, RolloverCap: it.PlanCap},
	}, nil
}

// Roll applies period p to the organization a describes, at now: its
// subscription grows by the plan's allotment (capped), its expired bonus
// grants are removed, it is marked as rolled over for p, and the ledger
// records each change, all in one transaction. The transaction's condition
// holds only while the organization has not had p (or a later period) and
// still has what the amounts were computed from, so a period is granted at
// most once however many runs overlap, and the update is relative, so a
// debit landing in between is kept. With dry set nothing is written and
// the outcome says what would be.
//
// The ledger's balance_after is the balance read plus this change: debits
// are not ledger entries, and one landing between the read and the write
// shows only in the next entry's balance_after.
func (r Rollovers) Roll(ctx context.Context, a RolloverAccount, p credits.Period, now time.Time, dry bool) (RolloverOutcome, error) {
	for attempt := range maxRolloverAttempts {
		switch {
		case a.Plan.ID == "":
			return RolloverOutcome{Org: a.Org, Status: NoPlan}, nil
		case a.Last >= p.String():
			return RolloverOutcome{Org: a.Org, Status: AlreadyDone}, nil
		}
		ro := credits.PlanRollover(a.Plan, a.Balance, p, now)
		out := RolloverOutcome{Org: a.Org, Status: Granted, Rollover: ro}
		if dry {
			return out, nil
		}
		in, err := r.rolloverInput(a, ro)
		if err != nil {
			return RolloverOutcome{}, err
		}
		_, err = r.Client.TransactWriteItems(ctx, in)
		if err == nil {
			return out, nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return RolloverOutcome{}, fmt.Errorf("roll over %s: %w", a.Org, err)
		}
		// The organization changed under us (a debit, another run) or a
		// concurrent transaction held it: read it again and recompute.
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return RolloverOutcome{}, err
			}
		}
		fresh, ok, err := r.load(ctx, a.Org)
		if err != nil {
			return RolloverOutcome{}, err
		}
		if !ok {
			return RolloverOutcome{Org: a.Org, Status: NoPlan}, nil
		}
		a = fresh
	}
	return RolloverOutcome{}, fmt.Errorf("roll over %s: %w", a.Org, ErrContention)
}

// rolloverInput is the transaction that applies ro to a's organization.
func (r Rollovers) rolloverInput(a RolloverAccount, ro credits.Rollover) (*dynamodb.TransactWriteItemsInput, error) {
	b := a.Balance
	last := expression.Name(attrRolloverPeriod)
	cond := expression.And(
		expression.Or(last.AttributeNotExists(), last.LessThan(expression.Value(ro.Period.String()))),
		// The plan the amount came from is still the organization's.
		expression.Name(attrPlanID).Equal(expression.Value(a.Plan.ID)),
		numberIs(attrPlanMonthly, a.Plan.Monthly),
		numberIs(attrPlanCap, a.Plan.RolloverCap),
	)
	// The condition pins only what the amounts depend on, never a balance
	// that concurrent debits merely lower: the subscription is added to,
	// not overwritten, so a debit landing between the read and this write
	// stays taken, and a customer charging non-stop cannot hold the
	// rollover off.
	sub := expression.Name(attrSubscription)
	upd := expression.Set(sub, sub.Plus(expression.Value(ro.Amount)))
	switch {
	case b.Subscription == 0:
		// Possibly absent (nothing to add to); debits cannot lower 0.
		cond = cond.And(numberIs(attrSubscription, 0))
		upd = expression.Set(sub, expression.Value(ro.Amount))
	case ro.Amount < a.Plan.Monthly:
		// The cap cut the amount to what fits above this subscription; a
		// debit since would leave room for more, so recompute.
		cond = cond.And(sub.Equal(expression.Value(b.Subscription)))
	case a.Plan.RolloverCap > 0:
		// The full allotment fits under the cap; debits only widen the
		// room, and a refund that narrowed it makes this recompute.
		cond = cond.And(sub.LessThanEqual(expression.Value(a.Plan.RolloverCap - ro.Amount)))
	default:
		cond = cond.And(sub.AttributeExists())
	}
	for _, g := range ro.Expired {
		// The ledger records what was left: refunds may still add to an
		// expired grant (debits never take from one).
		cond = cond.And(expression.Name(attrBonus + "." + g.ID + ".n").Equal(expression.Value(g.Remaining)))
	}
	for k, v := range rolloverAttrs(a.Org, ro.Period) {
		upd = upd.Set(expression.Name(k), expression.Value(v))
	}
	for _, g := range ro.Expired {
		// Removing an expired grant needs no new bonus_rev: debits never
		// plan to spend an expired grant, so none can be made stale by it.
		upd = upd.Remove(expression.Name(attrBonus + "." + g.ID))
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, fmt.Errorf("build rollover: %w", err)
	}
	items := []types.TransactWriteItem{{Update: &types.Update{
		TableName:                 aws.String(r.Table),
		Key:                       orgKey(a.Org),
		ConditionExpression:       expr.Condition(),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	}}}
	for _, e := range ro.Entries(a.Org) {
		put, err := LedgerPut(r.Table, e)
		if err != nil {
			return nil, err
		}
		items = append(items, put)
	}
	return &dynamodb.TransactWriteItemsInput{TransactItems: items}, nil
}

// numberIs holds when the number attribute name equals n, an absent
// attribute counting as 0.
func numberIs(name string, n int64) expression.ConditionBuilder {
	p := expression.Name(name)
	if n == 0 {
		return expression.Or(p.AttributeNotExists(), p.Equal(expression.Value(0)))
	}
	return p.Equal(expression.Value(n))
}

// backoff waits a little longer at each attempt, with jitter so that
// colliding writers spread out, or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Duration(min(attempt, 6)) * 10 * time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
