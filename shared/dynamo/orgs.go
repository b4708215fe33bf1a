package dynamo

import (
	"context"
	"encoding/base64"
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

// Orgs is the administrative side of the organizations table: creating and
// reading organizations, operators' balance changes and the ledger. The
// metered request path uses Credits instead.
type Orgs struct {
	Client Client
	Table  string
}

// Org is an organization as an operator sees it.
type Org struct {
	ID      string
	Name    string
	Plan    credits.Plan
	Created time.Time
	Balance credits.Balance
	// Used is the credits charged by requests in each period (YYYY-MM, UTC).
	Used map[string]int64
}

// usagePrefix starts the names of the per-period usage counters that each
// debit adds to (usage:YYYY-MM). One attribute per month keeps the debit
// a plain ADD with no condition of its own.
const usagePrefix = "usage:"

// UsagePeriod is the period a charge at t counts in.
func UsagePeriod(t time.Time) string { return t.UTC().Format("2006-01") }

// orgProfile is the non-balance part of the organization item.
type orgProfile struct {
	ID          string `dynamodbav:"org_id"`
	Name        string `dynamodbav:"name"`
	Created     string `dynamodbav:"created_at"`
	PlanID      string `dynamodbav:"plan_id"`
	PlanMonthly int64  `dynamodbav:"plan_monthly"`
	PlanCap     int64  `dynamodbav:"plan_cap"`
}

// Create makes a new organization on plan with the plan's monthly allotment
// as its opening subscription balance, the ledger entry opening records, and
// whatever else must exist with it (the first key), all in one transaction.
// It fails with ErrExists if the organization exists, and then writes nothing.
func (o Orgs) Create(ctx context.Context, org, name string, plan credits.Plan, opening credits.Entry, with ...types.TransactWriteItem) error {
	item, err := OrgItem(org, name, plan, credits.Balance{Subscription: opening.Amount}, opening.At)
	if err != nil {
		return err
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name("org_id"))).Build()
	if err != nil {
		return err
	}
	opening.BalanceAfter = opening.Amount
	entry, err := LedgerPut(o.Table, opening)
	if err != nil {
		return err
	}
	items := append([]types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(o.Table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	}}, entry}, with...)
	_, err = o.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) && len(tc.CancellationReasons) > 0 && aws.ToString(tc.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create organization: %w", err)
	}
	return nil
}

// Get reads an organization with a strongly consistent read. Ledger entries
// left pending by an interrupted change are settled on the way.
func (o Orgs) Get(ctx context.Context, org string) (Org, error) {
	out, err := o.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(o.Table), Key: orgKey(org), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Org{}, fmt.Errorf("get organization: %w", err)
	}
	if out.Item == nil {
		return Org{}, ErrNoAccount
	}
	if err := settleItem(ctx, o.Client, o.Table, org, out.Item); err != nil {
		return Org{}, err
	}
	return decodeOrg(out.Item)
}

func decodeOrg(item map[string]types.AttributeValue) (Org, error) {
	var p orgProfile
	if err := attributevalue.UnmarshalMap(item, &p); err != nil {
		return Org{}, fmt.Errorf("decode organization: %w", err)
	}
	b, err := decodeBalance(item)
	if err != nil {
		return Org{}, err
	}
	org := Org{
		ID: p.ID, Name: p.Name, Created: parseTime(p.Created), Balance: b,
		Plan: credits.Plan{ID: p.PlanID, Monthly: p.PlanMonthly, RolloverCap: p.PlanCap},
		Used: map[string]int64{},
	}
	for name, v := range item {
		if len(name) > len(usagePrefix) && name[:len(usagePrefix)] == usagePrefix {
			var n int64
			if err := attributevalue.Unmarshal(v, &n); err == nil {
				org.Used[name[len(usagePrefix):]] = n
			}
		}
	}
	return org, nil
}

// List reads every organization. It scans the table, ledger entries
// included, and filters on the sort key: fine for an operator's listing,
// not for a request path.
func (o Orgs) List(ctx context.Context) ([]Org, error) {
	expr, err := expression.NewBuilder().WithFilter(expression.Name("sk").Equal(expression.Value(OrgSK))).Build()
	if err != nil {
		return nil, err
	}
	var orgs []Org
	var start map[string]types.AttributeValue
	for {
		out, err := o.Client.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(o.Table), FilterExpression: expr.Filter(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("list organizations: %w", err)
		}
		for _, item := range out.Items {
			org, err := decodeOrg(item)
			if err != nil {
				return nil, err
			}
			orgs = append(orgs, org)
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			return orgs, nil
		}
	}
}

// LedgerPage is one page of an organization's ledger, newest first. Next
// is empty on the last page.
type LedgerPage struct {
	Entries []credits.Entry
	Next    string
}

// Ledger reads up to limit entries of org, newest first, starting after the
// cursor a previous page returned ("" for the first page). Pending entries
// are settled first, so the page is complete.
func (o Orgs) Ledger(ctx context.Context, org string, limit int32, cursor string) (LedgerPage, error) {
	if _, err := o.Get(ctx, org); err != nil {
		return LedgerPage{}, err
	}
	key := expression.Key("org_id").Equal(expression.Value(org)).And(expression.Key("sk").BeginsWith(LedgerPrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(key).Build()
	if err != nil {
		return LedgerPage{}, err
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(o.Table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(limit), ConsistentRead: aws.Bool(true),
	}
	if cursor != "" {
		sk, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(sk) <= len(LedgerPrefix) || string(sk[:len(LedgerPrefix)]) != LedgerPrefix {
			return LedgerPage{}, ErrBadCursor
		}
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			"org_id": &types.AttributeValueMemberS{Value: org},
			"sk":     &types.AttributeValueMemberS{Value: string(sk)},
		}
	}
	out, err := o.Client.Query(ctx, in)
	if err != nil {
		return LedgerPage{}, fmt.Errorf("list ledger: %w", err)
	}
	var page LedgerPage
	for _, item := range out.Items {
		e, err := DecodeEntry(item)
		if err != nil {
			return LedgerPage{}, err
		}
		page.Entries = append(page.Entries, e)
	}
	if sk, ok := out.LastEvaluatedKey["sk"].(*types.AttributeValueMemberS); ok {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(sk.Value))
	}
	return page, nil
}

// ErrBadCursor means a ledger cursor was not one a previous page returned.
var ErrBadCursor = errors.New("invalid ledger cursor")
