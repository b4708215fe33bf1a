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

	"github.com/contactlevel/metering/shared/apikey"
)

// Keys is the keys table: one item per key, addressed by the key's hash.
type Keys struct {
	Client Client
	Table  string
}

// keyItem is a key's stored shape. expires_at is the table's TTL attribute,
// so it is a number of epoch seconds and absent for keys that never expire.
type keyItem struct {
	Hash    string `dynamodbav:"key_hash"`
	ID      string `dynamodbav:"key_id"`
	OrgID   string `dynamodbav:"org_id"`
	Name    string `dynamodbav:"name"`
	Display string `dynamodbav:"display"`
	Created string `dynamodbav:"created_at"`
	Expires int64  `dynamodbav:"expires_at,omitempty"`
	Revoked string `dynamodbav:"revoked_at,omitempty"`
	Rotated string `dynamodbav:"rotated_at,omitempty"`
}

// Lookup finds the key with the given hash with one GetItem. It returns
// apikey.ErrNotFound when there is none; whether the key may be used is the
// caller's decision (apikey.Record.Usable).
func (k Keys) Lookup(ctx context.Context, hash string) (apikey.Record, error) {
	out, err := k.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(k.Table),
		Key:       map[string]types.AttributeValue{"key_hash": &types.AttributeValueMemberS{Value: hash}},
		// Eventually consistent reads cost half; a key is written long
		// before it is used, and revocation already waits on the authorizer cache.
	})
	if err != nil {
		return apikey.Record{}, fmt.Errorf("get key: %w", err)
	}
	if out.Item == nil {
		return apikey.Record{}, apikey.ErrNotFound
	}
	var it keyItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return apikey.Record{}, fmt.Errorf("decode key: %w", err)
	}
	return it.record(), nil
}

// ErrExists means an item that must be new is already stored.
var ErrExists = errors.New("already exists")

// Put stores a new key record; it never overwrites an existing one.
func (k Keys) Put(ctx context.Context, r apikey.Record) error {
	item, err := attributevalue.MarshalMap(itemFromRecord(r))
	if err != nil {
		return err
	}
	return putNew(ctx, k.Client, k.Table, item, "key_hash")
}

// putNew writes item unless an item with the same key exists (keyAttr is the
// partition key's name), in which case it returns ErrExists and writes nothing.
func putNew(ctx context.Context, client Client, table string, item map[string]types.AttributeValue, keyAttr string) error {
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(keyAttr))).Build()
	if err != nil {
		return err
	}
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(table),
		Item:                     item,
		ConditionExpression:      cond.Condition(),
		ExpressionAttributeNames: cond.Names(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrExists
	}
	return err
}

func itemFromRecord(r apikey.Record) keyItem {
	it := keyItem{
		Hash: r.Hash, ID: r.ID, OrgID: r.OrgID, Name: r.Name, Display: r.Display,
		Created: formatTime(r.Created),
	}
	if !r.Expires.IsZero() {
		// TTL works in whole seconds; rounding up never lets a key live
		// shorter than asked, and Usable compares with the same value.
		it.Expires = r.Expires.Add(time.Second - 1).Unix()
	}
	if !r.Revoked.IsZero() {
		it.Revoked = formatTime(r.Revoked)
	}
	if !r.Rotated.IsZero() {
		it.Rotated = formatTime(r.Rotated)
	}
	return it
}

func (it keyItem) record() apikey.Record {
	r := apikey.Record{
		Hash: it.Hash, ID: it.ID, OrgID: it.OrgID, Name: it.Name, Display: it.Display,
		Created: parseTime(it.Created),
		Revoked: parseTime(it.Revoked),
		Rotated: parseTime(it.Rotated),
	}
	if it.Expires != 0 {
		r.Expires = time.Unix(it.Expires, 0).UTC()
	}
	return r
}

// formatTime writes times as RFC 3339 in UTC so that stored items read well
// in the console and sort as strings.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
