package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/crm"
)

// Contacts is the contacts table, partitioned by organization.
type Contacts struct {
	Client Client
	Table  string
}

// Put stores a contact.
func (t Contacts) Put(ctx context.Context, c crm.Contact) error {
	return put(ctx, t.Client, t.Table, c)
}

// Audiences is the audiences table, partitioned by organization.
type Audiences struct {
	Client Client
	Table  string
}

// Put stores an audience.
func (t Audiences) Put(ctx context.Context, a crm.Audience) error {
	return put(ctx, t.Client, t.Table, a)
}

func put(ctx context.Context, client Client, table string, v any) error {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		return fmt.Errorf("put into %s: %w", table, err)
	}
	return nil
}
