package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/apikey"
)

// KeysByOrgIndex is the keys table's index of keys by organization and key
// ID, through which operators list, revoke and rotate keys.
const KeysByOrgIndex = "by-org"

// ErrKeyChanged means a key was revoked, rotated or given another expiry
// between reading it and changing it; nothing changed.
var ErrKeyChanged = errors.New("the key changed meanwhile")

// ByOrg lists an organization's keys, ordered by key ID. The index is
// eventually consistent: a key issued a moment ago may be missing.
func (k Keys) ByOrg(ctx context.Context, org string) ([]apikey.Record, error) {
	return k.query(ctx, expression.Key("org_id").Equal(expression.Value(org)))
}

// ByID finds one key of an organization by its ID; apikey.ErrNotFound when
// there is none.
func (k Keys) ByID(ctx context.Context, org, id string) (apikey.Record, error) {
	recs, err := k.query(ctx, expression.Key("org_id").Equal(expression.Value(org)).And(expression.Key("key_id").Equal(expression.Value(id))))
	if err != nil {
		return apikey.Record{}, err
	}
	if len(recs) == 0 {
		return apikey.Record{}, apikey.ErrNotFound
	}
	return recs[0], nil
}

func (k Keys) query(ctx context.Context, key expression.KeyConditionBuilder) ([]apikey.Record, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return nil, err
	}
	var recs []apikey.Record
	var start map[string]types.AttributeValue
	for {
		out, err := k.Client.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(k.Table), IndexName: aws.String(KeysByOrgIndex),
			KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(),
			ExpressionAttributeValues: expr.Values(), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("query keys: %w", err)
		}
		for _, item := range out.Items {
			var it keyItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, fmt.Errorf("decode key: %w", err)
			}
			recs = append(recs, it.record())
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			return recs, nil
		}
	}
}

// PutItem is the transaction item that stores a new key record, never over
// an existing one, for writes that create a key together with something else.
func (k Keys) PutItem(r apikey.Record) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(itemFromRecord(r))
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("key_hash"))).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(k.Table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	}}, nil
}

// unchanged is the condition that r, as read, is still as it was: not
// revoked, with the same expiry, and, if notRotated, not rotated either.
func unchanged(r apikey.Record, notRotated bool) expression.ConditionBuilder {
	exp := expression.Name("expires_at")
	cond := expression.AttributeExists(expression.Name("key_hash")).
		And(expression.AttributeNotExists(expression.Name("revoked_at")))
	if notRotated {
		cond = cond.And(expression.AttributeNotExists(expression.Name("rotated_at")))
	}
	if r.Expires.IsZero() {
		return cond.And(exp.AttributeNotExists())
	}
	return cond.And(exp.Equal(expression.Value(itemFromRecord(r).Expires)))
}

// Revoke marks r revoked at now; the authorizer refuses it from then on.
// Its expiry moves to keepUntil unless it expires earlier, so that the
// table's TTL deletes it in the end but it stays listed as revoked until then.
func (k Keys) Revoke(ctx context.Context, r apikey.Record, now, keepUntil time.Time) (apikey.Record, error) {
	cond := unchanged(r, false)
	out := r
	out.Revoked = now.UTC()
	if r.Expires.IsZero() || r.Expires.After(keepUntil) {
		out.Expires = keepUntil.UTC()
	}
	it := itemFromRecord(out)
	upd := expression.Set(expression.Name("revoked_at"), expression.Value(it.Revoked)).
		Set(expression.Name("expires_at"), expression.Value(it.Expires))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return apikey.Record{}, err
	}
	_, err = k.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(k.Table), Key: hashKey(r.Hash),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return apikey.Record{}, ErrKeyChanged
	}
	if err != nil {
		return apikey.Record{}, fmt.Errorf("revoke key: %w", err)
	}
	return out, nil
}

// Rotate stores next and, in the same transaction, marks old rotated at now
// with its expiry moved to oldExpires, all only if old is still as read.
func (k Keys) Rotate(ctx context.Context, old, next apikey.Record, oldExpires, now time.Time) (apikey.Record, error) {
	put, err := k.PutItem(next)
	if err != nil {
		return apikey.Record{}, err
	}
	out := old
	out.Rotated = now.UTC()
	out.Expires = oldExpires
	it := itemFromRecord(out)
	upd := expression.Set(expression.Name("rotated_at"), expression.Value(it.Rotated)).
		Set(expression.Name("expires_at"), expression.Value(it.Expires))
	expr, err := expression.NewBuilder().WithCondition(unchanged(old, true)).WithUpdate(upd).Build()
	if err != nil {
		return apikey.Record{}, err
	}
	_, err = k.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		put,
		{Update: &types.Update{
			TableName: aws.String(k.Table), Key: hashKey(old.Hash),
			ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}},
	}})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		return apikey.Record{}, fmt.Errorf("%w (%s)", ErrKeyChanged, reasons(tc))
	}
	if err != nil {
		return apikey.Record{}, fmt.Errorf("rotate key: %w", err)
	}
	return out, nil
}

func reasons(tc *types.TransactionCanceledException) string {
	s := ""
	for i, r := range tc.CancellationReasons {
		s += strconv.Itoa(i) + ":" + aws.ToString(r.Code) + " "
	}
	return s
}

func hashKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"key_hash": &types.AttributeValueMemberS{Value: hash}}
}
