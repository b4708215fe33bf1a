package dynamo

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
)

// LedgerPrefix starts the sort key of every ledger entry in its
// organization's partition; entries sort by time, so a Query with
// begins_with and ScanIndexForward=false pages newest first.
const LedgerPrefix = "LEDGER#"

// ledgerTime is fixed-width so that sort keys order like times.
const ledgerTime = "2006-01-02T15:04:05.000000000Z"

// ledgerItem is a ledger entry's stored shape.
type ledgerItem struct {
	OrgID        string `dynamodbav:"org_id"`
	SK           string `dynamodbav:"sk"`
	ID           string `dynamodbav:"entry_id"`
	At           string `dynamodbav:"at"`
	Type         string `dynamodbav:"type"`
	Bucket       string `dynamodbav:"bucket"`
	GrantID      string `dynamodbav:"grant_id,omitempty"`
	Amount       int64  `dynamodbav:"amount"`
	Reference    string `dynamodbav:"reference,omitempty"`
	Reason       string `dynamodbav:"reason,omitempty"`
	Period       string `dynamodbav:"period,omitempty"`
	BalanceAfter int64  `dynamodbav:"balance_after"`
}

// LedgerSK is the sort key of an entry.
func LedgerSK(e credits.Entry) string {
	return LedgerPrefix + e.At.UTC().Format(ledgerTime) + "#" + e.ID
}

// LedgerPut is the transaction item that writes e, never over another
// entry: it goes in the same TransactWriteItems as the balance change it
// records, so that the two happen together or not at all.
func LedgerPut(table string, e credits.Entry) (types.TransactWriteItem, error) {
	item, err := attributevalue.MarshalMap(ledgerItem{
		OrgID: e.OrgID, SK: LedgerSK(e), ID: e.ID, At: formatTime(e.At), Type: string(e.Type),
		Bucket: string(e.Bucket), GrantID: e.GrantID, Amount: e.Amount, Reference: e.Reference,
		Reason: e.Reason, Period: e.Period, BalanceAfter: e.BalanceAfter,
	})
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("encode ledger entry: %w", err)
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("sk"))).Build()
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(table),
		Item:                     item,
		ConditionExpression:      cond.Condition(),
		ExpressionAttributeNames: cond.Names(),
	}}, nil
}

// DecodeEntry reads a stored ledger entry.
func DecodeEntry(item map[string]types.AttributeValue) (credits.Entry, error) {
	var it ledgerItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return credits.Entry{}, fmt.Errorf("decode ledger entry: %w", err)
	}
	return entryFromItem(it), nil
}
