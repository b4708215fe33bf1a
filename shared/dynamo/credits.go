package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/contactlevel/metering/shared/credits"
)

// OrgSK is the sort key of an organization's own item, which holds its
// profile and its balance; other items in the partition (ledger entries and
// the like) use other sort keys.
const OrgSK = "ORG"

// ErrContention means a charge kept meeting a balance that changed under it
// and gave up; the caller may retry. Nothing was charged.
var ErrContention = errors.New("balance changed too often to charge; nothing was charged")

// maxAttempts bounds the write attempts of one charge. Each failed attempt
// returns the current item, so only a balance rewritten between every read
// and write (draining charges racing each other) needs more than two.
const maxAttempts = 16

// Credits is the balance part of the organizations table.
type Credits struct {
	Client Client
	Table  string
	// Clock dates refund ledger entries; nil means time.Now.
	Clock func() time.Time

	mu    sync.Mutex
	views map[string]credits.Balance
}

// views keeps the last balance each organization was seen with, so that a
// warm container plans a charge correctly in one write. It is only a hint:
// every write is conditioned on what the plan assumed.
const maxViews = 4096

// balanceProjection reads only the balance from an organization item; it is
// the same for every read, so it is built once.
var balanceProjection = func() expression.Expression {
	proj, err := expression.NewBuilder().WithProjection(expression.NamesList(
		expression.Name(attrSubscription), expression.Name(attrPurchased),
		expression.Name(attrBonus), expression.Name(attrBonusRev))).Build()
	if err != nil {
		panic(err) // constant names: cannot fail
	}
	return proj
}()

// Balance reads an organization's balance with a strongly consistent read,
// so that a customer sees the effect of their last request.
func (c *Credits) Balance(ctx context.Context, org string) (credits.Balance, error) {
	out, err := c.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(c.Table),
		Key:                      orgKey(org),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     balanceProjection.Projection(),
		ExpressionAttributeNames: balanceProjection.Names(),
	})
	if err != nil {
		return credits.Balance{}, fmt.Errorf("get balance: %w", err)
	}
	if out.Item == nil {
		return credits.Balance{}, ErrNoAccount
	}
	return decodeBalance(out.Item)
}

// ErrNoAccount means the organization has no balance item.
var ErrNoAccount = errors.New("organization has no credit account")

// Debit charges n credits at now with one conditional UpdateItem in the
// common case. It plans against the last balance it saw (or, cold, guesses
// that the subscription pays and no bonus grant exists); when the write's
// condition fails, DynamoDB returns the item as it is, and the charge is
// planned again from that without a separate read. credits.ErrInsufficient
// means the balance, as of an atomic check, was too small; nothing changed.
func (c *Credits) Debit(ctx context.Context, org string, n int64, now time.Time) (credits.Debit, credits.Balance, error) {
	return c.debit(ctx, org, n, now, func(ctx context.Context, _ credits.Debit, in *dynamodb.UpdateItemInput) (map[string]types.AttributeValue, error) {
		// The SDK may retry only what DynamoDB certainly did not apply: a
		// retried debit whose first attempt landed would charge twice.
		out, err := c.Client.UpdateItem(ctx, in, retryOnlyUnapplied)
		if err != nil {
			return nil, classify(err)
		}
		return out.Attributes, nil
	})
}

// debitWrite makes the write of planned debit d (in is its UpdateItem) and
// returns the balance item after it. A *types.ConditionalCheckFailedException
// carrying the current item makes debit plan again from that item;
// errRetryWrite makes it try again; other errors end the charge unchanged.
type debitWrite func(ctx context.Context, d credits.Debit, in *dynamodb.UpdateItemInput) (map[string]types.AttributeValue, error)

// errRetryWrite means the write did not happen for a reason unrelated to the
// balance (a conflicting transaction) and may simply be tried again.
var errRetryWrite = errors.New("retry the write")

// debit is the planning loop shared by Debit (one UpdateItem) and charges
// that must commit together with another item (one TransactWriteItems).
func (c *Credits) debit(ctx context.Context, org string, n int64, now time.Time, write debitWrite) (credits.Debit, credits.Balance, error) {
	view, known := c.view(org)
	if !known {
		// Cold, assume the subscription pays and no bonus grant was ever
		// made: the write then asks only for subscription >= n. A wrong
		// guess costs one failed write, which returns the real item.
		view = credits.Balance{Subscription: math.MaxInt64 / 2}
	}
	for range maxAttempts {
		d, err := credits.PlanDebit(view, n, now)
		if errors.Is(err, credits.ErrInsufficient) && known {
			// A remembered view may predate a top-up made elsewhere; a
			// refusal is only final against the item as it is now.
			known = false
			if view, err = c.Balance(ctx, org); errors.Is(err, ErrNoAccount) {
				view = credits.Balance{}
			} else if err != nil {
				return credits.Debit{}, credits.Balance{}, fmt.Errorf("debit: %w", err)
			}
			c.remember(org, view)
			continue
		}
		if err != nil {
			return credits.Debit{}, view, err
		}
		in, err := debitInput(c.Table, org, d)
		if err != nil {
			return credits.Debit{}, credits.Balance{}, err
		}
		item, err := write(ctx, d, in)
		if err == nil && len(item) == 0 {
			// Charged, but the balance after it could not be read: report
			// it as unknown (empty) and plan the next charge afresh.
			c.forget(org)
			d.ID = uuid.Must(uuid.NewV7()).String()
			return d, credits.Balance{}, nil
		}
		if err == nil {
			d.ID = uuid.Must(uuid.NewV7()).String()
			after, err := decodeBalance(item)
			if err != nil {
				return d, credits.Balance{}, err
			}
			c.remember(org, after)
			return d, after, nil
		}
		// A transaction (an admin grant, a ledger settle, a keyed charge)
		// held the item: DynamoDB refused the write, which changed nothing.
		// The same plan is tried again.
		var tce *types.TransactionConflictException
		if errors.Is(err, errRetryWrite) || errors.As(err, &tce) {
			continue
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return credits.Debit{}, credits.Balance{}, fmt.Errorf("debit: %w", err)
		}
		// An organization without an item decodes to an empty balance and
		// so to ErrInsufficient on the next plan, which is then final.
		known = false
		if view, err = decodeBalance(ccf.Item); err != nil {
			return credits.Debit{}, credits.Balance{}, err
		}
		c.remember(org, view)
	}
	return credits.Debit{}, credits.Balance{}, ErrContention
}

// Refund gives back what d took, at most once however often it is called
// for d: the refund's ledger entries are named after d.ID and dated at d.At,
// and a refund whose entries are already pending on the organization item
// or written to the ledger is not made again. That makes a refund safe to
// retry after an answer lost on the way back. Grants that have since been
// removed (an expiry sweep) are skipped: they could no longer be spent
// anyway. The entries are recorded by the refund's own write and then
// settled into the ledger (pending.go); a failure to settle is not an error
// of the refund, which happened, and the next admin read settles it.
func (c *Credits) Refund(ctx context.Context, org string, d credits.Debit) (credits.Balance, error) {
	takes := slices.DeleteFunc(slices.Clone(d.Takes), func(t credits.Take) bool { return t.Amount == 0 })
	batch, at := "refund-"+d.ID, d.At
	if d.ID == "" {
		batch = "refund-" + uuid.Must(uuid.NewV7()).String()
	}
	if at.IsZero() {
		at = time.Now()
		if c.Clock != nil {
			at = c.Clock()
		}
	}
	for range 3 {
		if len(takes) == 0 {
			return credits.Balance{}, nil
		}
		in, first, err := refundInput(c.Table, org, takes, batch, at)
		if err != nil {
			return credits.Balance{}, err
		}
		item, err := c.refundOnce(ctx, in, first)
		if err == nil {
			after, err := decodeBalance(item)
			if err == nil {
				c.remember(org, after)
				_ = settleItem(ctx, c.Client, c.Table, org, item)
			}
			return after, err
		}
		if errors.Is(err, errAlreadyRefunded) {
			return credits.Balance{}, nil
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) || len(ccf.Item) == 0 {
			return credits.Balance{}, fmt.Errorf("refund: %w", err)
		}
		if _, pending := ccf.Item[pendingPrefix+batch]; pending {
			return credits.Balance{}, nil // made by an earlier call, not settled yet
		}
		current, err := decodeBalance(ccf.Item)
		if err != nil {
			return credits.Balance{}, err
		}
		takes = slices.DeleteFunc(takes, func(t credits.Take) bool {
			return t.Bucket == credits.Bonus && !slices.ContainsFunc(current.Bonus, func(g credits.Grant) bool { return g.ID == t.GrantID })
		})
	}
	return credits.Balance{}, fmt.Errorf("refund: grants kept changing")
}

// transactUpdate is the balance write in as a transaction item; a failed
// condition still returns the item as it was, in the cancellation reason.
func transactUpdate(in *dynamodb.UpdateItemInput) *types.Update {
	return &types.Update{
		TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression,
		ConditionExpression: in.ConditionExpression, ExpressionAttributeNames: in.ExpressionAttributeNames,
		ExpressionAttributeValues:           in.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// errAlreadyRefunded means a refund's ledger entry exists: it was made.
var errAlreadyRefunded = errors.New("already refunded")

// refundOnce makes the refund in as a transaction that also checks that its
// first ledger entry is not written yet (a settled refund leaves no pending
// attribute behind), then reads the item for the balance and the settle.
// Refunds only follow failures, so the transaction and the read cost
// nothing that matters, and the SDK may retry the transaction safely: it
// carries an idempotency token. A condition failure on the organization
// item comes back as a ConditionalCheckFailedException with the item.
func (c *Credits) refundOnce(ctx context.Context, in *dynamodb.UpdateItemInput, first credits.Entry) (map[string]types.AttributeValue, error) {
	check, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("sk"))).Build()
	if err != nil {
		return nil, err
	}
	_, err = c.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: transactUpdate(in)},
		{ConditionCheck: &types.ConditionCheck{
			TableName: in.TableName,
			Key: map[string]types.AttributeValue{
				"org_id": in.Key["org_id"],
				"sk":     &types.AttributeValueMemberS{Value: LedgerSK(first)},
			},
			ConditionExpression: check.Condition(), ExpressionAttributeNames: check.Names(),
		}},
	}})
	var tc *types.TransactionCanceledException
	switch {
	case errors.As(err, &tc) && len(tc.CancellationReasons) == 2:
		if aws.ToString(tc.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
			return nil, errAlreadyRefunded
		}
		if aws.ToString(tc.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
			return nil, &types.ConditionalCheckFailedException{Item: tc.CancellationReasons[0].Item}
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	out, err := c.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: in.TableName, Key: in.Key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (c *Credits) view(org string) (credits.Balance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.views[org]
	return b, ok
}

func (c *Credits) remember(org string, b credits.Balance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil || len(c.views) >= maxViews {
		c.views = make(map[string]credits.Balance)
	}
	c.views[org] = b
}

// Names of the balance's attributes on the organization item.
const (
	attrSubscription = "subscription"
	attrPurchased    = "purchased"
	attrBonus        = "bonus"
	attrBonusRev     = "bonus_rev"
	attrPlanID       = "plan_id"
	attrPlanMonthly  = "plan_monthly"
	attrPlanCap      = "plan_cap"
)

// debitInput turns a plan into one UpdateItem whose condition holds exactly
// while the plan is right: every bucket still has what the plan takes (all
// of it where the plan empties the bucket), no grant taken from has expired,
// and no bonus grant was added since the plan's view.
func debitInput(table, org string, d credits.Debit) (*dynamodb.UpdateItemInput, error) {
	cond := revCondition(d.BonusRev)
	var upd expression.UpdateBuilder
	nowSec := d.At.Unix()
	for _, t := range d.Takes {
		path := takePath(t)
		var c expression.ConditionBuilder
		switch {
		case t.Exact && t.Amount == 0:
			c = expression.Or(path.AttributeNotExists(), path.Equal(expression.Value(0)))
		case t.Exact:
			c = path.Equal(expression.Value(t.Amount))
		default:
			c = path.GreaterThanEqual(expression.Value(t.Amount))
		}
		if !t.ExpiresAt.IsZero() {
			c = c.And(expression.Name(attrBonus + "." + t.GrantID + ".exp").GreaterThan(expression.Value(nowSec)))
		}
		cond = cond.And(c)
		if t.Amount > 0 {
			upd = upd.Set(path, path.Minus(expression.Value(t.Amount)))
		}
	}
	// Usage this period: per-request debits are not ledger entries, so the
	// organization counts them here, in the same write.
	upd = upd.Add(expression.Name(usagePrefix+UsagePeriod(d.At)), expression.Value(d.Amount))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, fmt.Errorf("build debit: %w", err)
	}
	return balanceUpdate(table, org, expr), nil
}

// balanceUpdate is a conditional write to an organization's balance that
// returns the item after it, or as it was when the condition failed, so that
// the caller never needs a separate read.
func balanceUpdate(table, org string, expr expression.Expression) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                           aws.String(table),
		Key:                                 orgKey(org),
		ConditionExpression:                 expr.Condition(),
		UpdateExpression:                    expr.Update(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// refundInput gives takes back with ledger entries batch-0, batch-1, ...
// dated now, unless the batch is already pending on the item; it also
// returns the first entry, whose ledger key tells a settled refund.
func refundInput(table, org string, takes []credits.Take, batch string, now time.Time) (*dynamodb.UpdateItemInput, credits.Entry, error) {
	cond := expression.AttributeExists(expression.Name("org_id")).
		And(expression.AttributeNotExists(expression.Name(pendingPrefix + batch)))
	var upd expression.UpdateBuilder
	entries := make([]pendingEntry, 0, len(takes))
	for i, t := range takes {
		path := takePath(t)
		if t.Bucket == credits.Bonus {
			cond = cond.And(expression.AttributeExists(expression.Name(attrBonus + "." + t.GrantID)))
		}
		upd = upd.Set(path, path.Plus(expression.Value(t.Amount)))
		entries = append(entries, newPendingEntry(credits.Entry{
			ID: fmt.Sprintf("%s-%d", batch, i), OrgID: org, At: now, Type: credits.EntryRefund,
			Bucket: t.Bucket, GrantID: t.GrantID, Amount: t.Amount,
		}, time.Time{}))
	}
	upd, err := pendingSet(upd, batch, entries, "")
	if err != nil {
		return nil, credits.Entry{}, err
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return nil, credits.Entry{}, fmt.Errorf("build refund: %w", err)
	}
	first := credits.Entry{ID: batch + "-0", OrgID: org, At: now}
	return balanceUpdate(table, org, expr), first, nil
}

func revCondition(rev int64) expression.ConditionBuilder {
	n := expression.Name(attrBonusRev)
	if rev == 0 {
		return expression.Or(n.AttributeNotExists(), n.Equal(expression.Value(0)))
	}
	return n.Equal(expression.Value(rev))
}

func takePath(t credits.Take) expression.NameBuilder {
	switch t.Bucket {
	case credits.Bonus:
		return expression.Name(attrBonus + "." + t.GrantID + ".n")
	case credits.Purchased:
		return expression.Name(attrPurchased)
	default:
		return expression.Name(attrSubscription)
	}
}

func orgKey(org string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"org_id": &types.AttributeValueMemberS{Value: org},
		"sk":     &types.AttributeValueMemberS{Value: OrgSK},
	}
}

// balanceItem is the balance's stored shape on the organization item. Bonus
// grants live in one map so that a charge spanning several of them is still
// one item write; exp is epoch seconds and absent for grants that never expire.
type balanceItem struct {
	Subscription int64                `dynamodbav:"subscription"`
	Purchased    int64                `dynamodbav:"purchased"`
	Bonus        map[string]grantItem `dynamodbav:"bonus"`
	BonusRev     int64                `dynamodbav:"bonus_rev"`
}

type grantItem struct {
	N   int64 `dynamodbav:"n"`
	Exp int64 `dynamodbav:"exp,omitempty"`
}

func decodeBalance(item map[string]types.AttributeValue) (credits.Balance, error) {
	var it balanceItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return credits.Balance{}, fmt.Errorf("decode balance: %w", err)
	}
	b := credits.Balance{Subscription: it.Subscription, Purchased: it.Purchased, BonusRev: it.BonusRev}
	for id, g := range it.Bonus {
		grant := credits.Grant{ID: id, Remaining: g.N}
		if g.Exp != 0 {
			grant.ExpiresAt = time.Unix(g.Exp, 0).UTC()
		}
		b.Bonus = append(b.Bonus, grant)
	}
	slices.SortFunc(b.Bonus, func(x, y credits.Grant) int { return strings.Compare(x.ID, y.ID) })
	return b, nil
}

// EncodeBalance is the attribute map of a balance, for writers that create
// or replace an organization item (setup, admin tools and tests).
func EncodeBalance(b credits.Balance) (map[string]types.AttributeValue, error) {
	it := balanceItem{Subscription: b.Subscription, Purchased: b.Purchased, BonusRev: b.BonusRev, Bonus: map[string]grantItem{}}
	for _, g := range b.Bonus {
		gi := grantItem{N: g.Remaining}
		if !g.ExpiresAt.IsZero() {
			gi.Exp = g.ExpiresAt.Unix()
		}
		it.Bonus[g.ID] = gi
	}
	return attributevalue.MarshalMap(it)
}

// Open creates an organization's item with its name, subscription plan (the
// zero Plan for none) and opening balance. It fails with ErrExists rather
// than overwrite a balance.
func (c *Credits) Open(ctx context.Context, org, name string, plan credits.Plan, b credits.Balance, now time.Time) error {
	item, err := OrgItem(org, name, plan, b, now)
	if err != nil {
		return err
	}
	return putNew(ctx, c.Client, c.Table, item, "org_id")
}

// OrgItem is the organization item Open and Orgs.Create write, exported for
// bulk loaders (benchmarks) that must write the same thing faster.
func OrgItem(org, name string, plan credits.Plan, b credits.Balance, now time.Time) (map[string]types.AttributeValue, error) {
	item, err := EncodeBalance(b)
	if err != nil {
		return nil, err
	}
	item["org_id"] = &types.AttributeValueMemberS{Value: org}
	item["sk"] = &types.AttributeValueMemberS{Value: OrgSK}
	item["name"] = &types.AttributeValueMemberS{Value: name}
	item["created_at"] = &types.AttributeValueMemberS{Value: formatTime(now)}
	if plan.ID != "" {
		// The plan's terms are copied onto the organization so that a
		// rollover reads and writes one item.
		item[attrPlanID] = &types.AttributeValueMemberS{Value: plan.ID}
		item[attrPlanMonthly] = &types.AttributeValueMemberN{Value: strconv.FormatInt(plan.Monthly, 10)}
		item[attrPlanCap] = &types.AttributeValueMemberN{Value: strconv.FormatInt(plan.RolloverCap, 10)}
		// The opening balance stands for this month's allotment: the first
		// rollover is next month's (see rollover.go).
		maps.Copy(item, rolloverAttrs(org, credits.PeriodOf(now)))
	}
	return item, nil
}
