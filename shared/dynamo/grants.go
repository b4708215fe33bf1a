package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
)

// GrantRefPrefix starts the sort key of the marker that makes a grant with
// an external reference happen once: "GRANTREF#<reference>" in the
// organization's partition.
const GrantRefPrefix = "GRANTREF#"

// ErrBelowZero means an adjustment would leave a bucket negative; nothing changed.
var ErrBelowZero = errors.New("the adjustment would take the balance below zero")

// ErrReferenceReused means a reference already recorded a different change;
// nothing changed.
var ErrReferenceReused = errors.New("the reference was already used for a different grant")

// Change is an operator's balance change and the ledger entry that records
// it. Entry carries everything but BalanceAfter: OrgID, ID, At, Type (grant
// or adjustment), Bucket, GrantID for a new bonus grant, a signed Amount,
// Reference and Reason.
type Change struct {
	Entry credits.Entry
	// GrantExpires is a new bonus grant's expiry; zero for none.
	GrantExpires time.Time
}

// markerItem is the stored shape of a reference marker. It holds the
// change as first requested and, once settled, the balance after it.
type markerItem struct {
	OrgID        string       `dynamodbav:"org_id"`
	SK           string       `dynamodbav:"sk"`
	Entry        pendingEntry `dynamodbav:"entry"`
	Done         bool         `dynamodbav:"done"`
	BalanceAfter int64        `dynamodbav:"balance_after"`
}

// Apply makes c and writes its ledger entry (see pending.go for how the
// entry gets an exact balance after while debits continue). With a
// Reference, a second Apply of the same change returns the first entry and
// duplicate=true and changes nothing; one of a different change fails with
// ErrReferenceReused. An unknown organization gives ErrNoAccount, a
// negative adjustment larger than its bucket ErrBelowZero.
func (o Orgs) Apply(ctx context.Context, c Change) (e credits.Entry, duplicate bool, err error) {
	e = c.Entry
	pe := newPendingEntry(e, c.GrantExpires)
	cond := expression.AttributeExists(expression.Name("org_id"))
	var upd expression.UpdateBuilder
	switch {
	case e.Bucket == credits.Bonus && e.Type == credits.EntryGrant:
		g := expression.Name(attrBonus + "." + e.GrantID)
		cond = cond.And(expression.AttributeExists(expression.Name(attrBonus)), g.AttributeNotExists())
		upd = upd.Set(g, expression.Value(grantItem{N: e.Amount, Exp: pe.GrantExp})).
			Add(expression.Name(attrBonusRev), expression.Value(1)) // a new grant must replan in-flight debits
	case e.Bucket == credits.Subscription || e.Bucket == credits.Purchased:
		b := expression.Name(string(e.Bucket))
		if e.Amount < 0 {
			cond = cond.And(b.GreaterThanEqual(expression.Value(-e.Amount)))
		}
		upd = upd.Add(b, expression.Value(e.Amount))
	default:
		return credits.Entry{}, false, fmt.Errorf("a %s of %s credits is not supported", e.Type, e.Bucket)
	}
	if upd, err = pendingSet(upd, e.ID, []pendingEntry{pe}, e.Reference); err != nil {
		return credits.Entry{}, false, err
	}
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return credits.Entry{}, false, fmt.Errorf("build change: %w", err)
	}
	update := &types.Update{
		TableName: aws.String(o.Table), Key: orgKey(e.OrgID),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}

	if e.Reference == "" {
		out, err := o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: update.TableName, Key: update.Key, ConditionExpression: update.ConditionExpression,
			UpdateExpression: update.UpdateExpression, ExpressionAttributeNames: update.ExpressionAttributeNames,
			ExpressionAttributeValues: update.ExpressionAttributeValues, ReturnValues: types.ReturnValueAllNew,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return credits.Entry{}, false, o.whyRefused(ctx, e.OrgID)
		}
		if err != nil {
			return credits.Entry{}, false, fmt.Errorf("apply change: %w", err)
		}
		batches, err := pendingBatches(out.Attributes)
		if err != nil {
			return credits.Entry{}, false, err
		}
		for _, b := range batches {
			if b.batch == e.ID {
				e = b.entries[0]
			}
		}
		// The change is made and its entry is safe on the item; failing to
		// settle now only delays the ledger line until the next read, and
		// reporting it as a failure would invite a retry that adds twice.
		_ = settle(ctx, o.Client, o.Table, e.OrgID, batches)
		return e, false, nil
	}

	marker, err := attributevalue.MarshalMap(markerItem{OrgID: e.OrgID, SK: GrantRefPrefix + e.Reference, Entry: pe})
	if err != nil {
		return credits.Entry{}, false, err
	}
	mcond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("sk"))).Build()
	if err != nil {
		return credits.Entry{}, false, err
	}
	for range 4 {
		_, err = o.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(o.Table), Item: marker,
				ConditionExpression: mcond.Condition(), ExpressionAttributeNames: mcond.Names()}},
			{Update: update},
		}})
		var tc *types.TransactionCanceledException
		switch {
		case err == nil:
			first, _, err := o.resolveRef(ctx, e.OrgID, e.Reference)
			return first, false, err
		case errors.As(err, &tc) && len(tc.CancellationReasons) == 2:
			switch {
			case aws.ToString(tc.CancellationReasons[0].Code) == "ConditionalCheckFailed":
				first, firstPE, err := o.resolveRef(ctx, e.OrgID, e.Reference)
				if err != nil {
					return credits.Entry{}, false, err
				}
				if firstPE.Type != pe.Type || firstPE.Bucket != pe.Bucket || firstPE.Amount != pe.Amount || firstPE.GrantExp != pe.GrantExp {
					return first, false, fmt.Errorf("%w: %q recorded %s", ErrReferenceReused, e.Reference, first.ID)
				}
				return first, true, nil
			case aws.ToString(tc.CancellationReasons[1].Code) == "ConditionalCheckFailed":
				return credits.Entry{}, false, o.whyRefused(ctx, e.OrgID)
			}
			// TransactionConflict: a concurrent write to the same items; try again.
		default:
			return credits.Entry{}, false, fmt.Errorf("apply change: %w", err)
		}
	}
	return credits.Entry{}, false, fmt.Errorf("apply change: %w", err)
}

// resolveRef returns the entry a reference recorded, settling it first if
// the process that made it stopped before it could.
func (o Orgs) resolveRef(ctx context.Context, org, ref string) (credits.Entry, pendingEntry, error) {
	key := map[string]types.AttributeValue{
		"org_id": &types.AttributeValueMemberS{Value: org},
		"sk":     &types.AttributeValueMemberS{Value: GrantRefPrefix + ref},
	}
	for range 2 {
		out, err := o.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(o.Table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return credits.Entry{}, pendingEntry{}, fmt.Errorf("read reference: %w", err)
		}
		var m markerItem
		if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil {
			return credits.Entry{}, pendingEntry{}, fmt.Errorf("decode reference: %w", err)
		}
		if m.Done {
			e := entryFromItem(m.Entry.ledgerItem)
			e.BalanceAfter = m.BalanceAfter
			return e, m.Entry, nil
		}
		// The marker and the pending entry were written together and are
		// settled together, so the entry is still on the organization item.
		if _, err := o.Get(ctx, org); err != nil {
			return credits.Entry{}, pendingEntry{}, err
		}
	}
	return credits.Entry{}, pendingEntry{}, fmt.Errorf("reference %q is not settled", ref)
}

// markerDone is the transaction item that records a reference's result.
func markerDone(table, org, ref string, entries []credits.Entry) (types.TransactWriteItem, error) {
	expr, err := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name("done"), expression.Value(true)).
			Set(expression.Name("balance_after"), expression.Value(entries[len(entries)-1].BalanceAfter))).
		WithCondition(expression.AttributeExists(expression.Name("sk"))).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"org_id": &types.AttributeValueMemberS{Value: org},
			"sk":     &types.AttributeValueMemberS{Value: GrantRefPrefix + ref},
		},
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// whyRefused tells an unknown organization from a change its balance
// cannot take, after a change's condition failed.
func (o Orgs) whyRefused(ctx context.Context, org string) error {
	out, err := o.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(o.Table), Key: orgKey(org),
		ProjectionExpression: aws.String("org_id")})
	switch {
	case err != nil:
		return fmt.Errorf("apply change: %w", err)
	case out.Item == nil:
		return ErrNoAccount
	}
	return ErrBelowZero
}
