package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/idempotency"
)

// Idempotency is the table of Idempotency-Key records, and the charges
// committed together with them.
type Idempotency struct {
	Client  Client
	Table   string
	Credits *Credits
}

// idemItem is a record's stored shape. expires_at is the table's TTL
// attribute (epoch seconds); lease_until is epoch milliseconds.
type idemItem struct {
	OrgID          string `dynamodbav:"org_id"`
	Key            string `dynamodbav:"idempotency_key"`
	Fingerprint    string `dynamodbav:"fingerprint"`
	Token          string `dynamodbav:"token"`
	Status         string `dynamodbav:"status"`
	CreatedAt      string `dynamodbav:"created_at"`
	ExpiresAt      int64  `dynamodbav:"expires_at"`
	LeaseUntil     int64  `dynamodbav:"lease_until,omitempty"`
	Debit          string `dynamodbav:"debit,omitempty"`
	ResponseStatus int    `dynamodbav:"response_status,omitempty"`
	ResponseBody   []byte `dynamodbav:"response_body,omitempty"`
}

func encodeRecord(r idempotency.Record) (map[string]types.AttributeValue, error) {
	debit, err := json.Marshal(r.Debit)
	if err != nil {
		return nil, err
	}
	it := idemItem{
		OrgID: r.OrgID, Key: r.Key, Fingerprint: r.Fingerprint, Token: r.Token, Status: string(r.Status),
		CreatedAt: formatTime(r.CreatedAt), ExpiresAt: r.ExpiresAt.Unix(), Debit: string(debit),
		ResponseStatus: r.ResponseStatus, ResponseBody: r.ResponseBody,
	}
	if !r.LeaseUntil.IsZero() {
		it.LeaseUntil = r.LeaseUntil.UnixMilli()
	}
	return attributevalue.MarshalMap(it)
}

func decodeRecord(item map[string]types.AttributeValue) (idempotency.Record, error) {
	var it idemItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return idempotency.Record{}, fmt.Errorf("decode idempotency record: %w", err)
	}
	r := idempotency.Record{
		OrgID:  it.OrgID,
		Claim:  idempotency.Claim{Key: it.Key, Fingerprint: it.Fingerprint, Token: it.Token},
		Status: idempotency.Status(it.Status), ExpiresAt: time.Unix(it.ExpiresAt, 0).UTC(),
		ResponseStatus: it.ResponseStatus, ResponseBody: it.ResponseBody,
	}
	r.CreatedAt, _ = time.Parse(time.RFC3339Nano, it.CreatedAt)
	if it.LeaseUntil != 0 {
		r.LeaseUntil = time.UnixMilli(it.LeaseUntil).UTC()
	}
	if it.Debit != "" {
		if err := json.Unmarshal([]byte(it.Debit), &r.Debit); err != nil {
			return idempotency.Record{}, fmt.Errorf("decode idempotency record's debit: %w", err)
		}
	}
	return r, nil
}

func (i *Idempotency) key(org, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"org_id":          &types.AttributeValueMemberS{Value: org},
		"idempotency_key": &types.AttributeValueMemberS{Value: key},
	}
}

// Charge debits n credits from org and records claim as in progress, in one
// TransactWriteItems: both happen or neither does. The record may replace
// only a record that has expired by now. It fails with
// *idempotency.ExistsError (nothing charged) when the key has a live
// record, with credits.ErrInsufficient when the balance is too small, and
// with credits.ErrUnconfirmed when the outcome could not be learned.
//
// The transaction returns no values, so the balance after the charge is
// read back with one consistent GetItem; under concurrent charges it may
// already include later ones.
func (i *Idempotency) Charge(ctx context.Context, org string, claim idempotency.Claim, n int64, now time.Time) (credits.Debit, credits.Balance, error) {
	rec := idempotency.Record{OrgID: org, Claim: claim, Status: idempotency.InProgress, CreatedAt: now, ExpiresAt: now.Add(idempotency.Window)}
	cond, err := expression.NewBuilder().WithCondition(expression.Or(
		expression.AttributeNotExists(expression.Name("org_id")),
		expression.Name("expires_at").LessThanEqual(expression.Value(now.Unix())),
	)).Build()
	if err != nil {
		return credits.Debit{}, credits.Balance{}, err
	}
	d, after, err := i.Credits.debit(ctx, org, n, now, func(ctx context.Context, d credits.Debit, in *dynamodb.UpdateItemInput) (map[string]types.AttributeValue, error) {
		rec.Debit = d
		item, err := encodeRecord(rec)
		if err != nil {
			return nil, err
		}
		_, err = i.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Update: transactUpdate(in)},
			{Put: &types.Put{
				TableName: aws.String(i.Table), Item: item,
				ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
				ExpressionAttributeValues:           cond.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
		}})
		// The SDK retries a lost answer with the same ClientRequestToken,
		// which DynamoDB treats as the same transaction: a retry cannot
		// charge twice, so the client's full retry policy applies here.
		if err != nil {
			return nil, i.cancelled(err)
		}
		return i.balanceItem(ctx, org)
	})
	var exists *idempotency.ExistsError
	if errors.As(err, &exists) && exists.Record.Token == claim.Token && !exists.Record.Expired(now) {
		// This request's own record: an earlier attempt of this very
		// transaction landed and only its answer was lost.
		b, berr := i.Credits.Balance(ctx, org)
		if berr != nil {
			b = credits.Balance{}
		}
		return exists.Record.Debit, b, nil
	}
	if errors.Is(err, credits.ErrUnconfirmed) {
		// The record is unique to this request, so reading it back tells
		// whether the transaction landed.
		got, found, rerr := i.Get(ctx, org, claim.Key)
		switch {
		case rerr != nil:
			return credits.Debit{}, credits.Balance{}, err
		case found && got.Token == claim.Token:
			b, berr := i.Credits.Balance(ctx, org)
			if berr != nil {
				b = credits.Balance{}
			}
			return got.Debit, b, nil
		default:
			return credits.Debit{}, credits.Balance{}, fmt.Errorf("charge not made: %w", errors.Unwrap(err))
		}
	}
	if errors.Is(err, credits.ErrInsufficient) {
		// A warm container may refuse from its view without writing, so the
		// transaction never said whether the key is taken; a duplicate must
		// replay, not be told it cannot pay.
		if got, found, gerr := i.Get(ctx, org, claim.Key); gerr == nil && found && !got.Expired(now) {
			return credits.Debit{}, credits.Balance{}, &idempotency.ExistsError{Record: got}
		}
	}
	return d, after, err
}

// cancelled turns a cancelled transaction into what the planning loop
// understands: the idempotency record's condition failing ends the charge
// with ExistsError; the balance's makes it plan again from the returned item;
// a conflicting transaction makes it try again.
func (i *Idempotency) cancelled(err error) error {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 {
		return classify(err)
	}
	balance, record := tce.CancellationReasons[0], tce.CancellationReasons[1]
	switch {
	case aws.ToString(record.Code) == "ConditionalCheckFailed":
		r, derr := decodeRecord(record.Item)
		if derr != nil {
			return derr
		}
		return &idempotency.ExistsError{Record: r}
	case aws.ToString(balance.Code) == "ConditionalCheckFailed":
		return &types.ConditionalCheckFailedException{Item: balance.Item}
	case aws.ToString(balance.Code) == "TransactionConflict" || aws.ToString(record.Code) == "TransactionConflict":
		return errRetryWrite
	}
	return err
}

// balanceItem reads the organization's balance attributes after a charge.
func (i *Idempotency) balanceItem(ctx context.Context, org string) (map[string]types.AttributeValue, error) {
	out, err := i.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(i.Credits.Table), Key: orgKey(org), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		// The charge is made; failing now would make the caller believe it
		// was not. The balance is then reported as unknown (empty).
		return nil, nil
	}
	return out.Item, nil
}

// Get reads the record of org's key, strongly consistent.
func (i *Idempotency) Get(ctx context.Context, org, key string) (idempotency.Record, bool, error) {
	out, err := i.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(i.Table), Key: i.key(org, key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("get idempotency record: %w", err)
	}
	if out.Item == nil {
		return idempotency.Record{}, false, nil
	}
	r, err := decodeRecord(out.Item)
	return r, err == nil, err
}

// Complete stores the response of the request holding claim and marks the
// record done; idempotency.ErrLost if another request holds it now.
func (i *Idempotency) Complete(ctx context.Context, org string, claim idempotency.Claim, status int, body []byte) error {
	expr, err := expression.NewBuilder().
		WithCondition(expression.Name("token").Equal(expression.Value(claim.Token))).
		WithUpdate(expression.Set(expression.Name("status"), expression.Value(string(idempotency.Done))).
			Set(expression.Name("response_status"), expression.Value(status)).
			Set(expression.Name("response_body"), expression.Value(body)).
			Remove(expression.Name("lease_until"))).
		Build()
	if err != nil {
		return err
	}
	_, err = i.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(i.Table), Key: i.key(org, claim.Key),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	return held(err)
}

// Release deletes the record of the request holding claim, after its work
// failed and its charge was refunded, so that a retry runs afresh.
func (i *Idempotency) Release(ctx context.Context, org string, claim idempotency.Claim) error {
	cond, err := expression.NewBuilder().WithCondition(expression.Name("token").Equal(expression.Value(claim.Token))).Build()
	if err != nil {
		return err
	}
	_, err = i.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(i.Table), Key: i.key(org, claim.Key),
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
	})
	return held(err)
}

// TakeOver hands the in-progress record r, whose holder's lease ran out
// before it answered, to claim; the charge r was made with stays. It fails
// with idempotency.ErrLost if another duplicate took it first.
func (i *Idempotency) TakeOver(ctx context.Context, org string, r idempotency.Record, claim idempotency.Claim, now time.Time) (idempotency.Record, error) {
	lease := claim.LeaseUntil.UnixMilli()
	expr, err := expression.NewBuilder().
		WithCondition(expression.Name("token").Equal(expression.Value(r.Token)).
			And(expression.Name("status").Equal(expression.Value(string(idempotency.InProgress)))).
			And(expression.Name("lease_until").LessThanEqual(expression.Value(now.UnixMilli())))).
		WithUpdate(expression.Set(expression.Name("token"), expression.Value(claim.Token)).
			Set(expression.Name("lease_until"), expression.Value(lease))).
		Build()
	if err != nil {
		return idempotency.Record{}, err
	}
	out, err := i.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(i.Table), Key: i.key(org, claim.Key),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	if err := held(err); err != nil {
		return idempotency.Record{}, err
	}
	return decodeRecord(out.Attributes)
}

// held maps a failed token condition to idempotency.ErrLost.
func held(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return idempotency.ErrLost
	}
	if err != nil {
		return fmt.Errorf("idempotency record: %w", err)
	}
	return nil
}

// forget drops the remembered balance of org, when what it became is unknown.
func (c *Credits) forget(org string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.views, org)
}
