package dynamo_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
)

// replace overwrites an organization's balance as another writer would.
func replace(t *testing.T, s *ddbtest.Stack, org string, item map[string]types.AttributeValue) {
	t.Helper()
	item["org_id"] = &types.AttributeValueMemberS{Value: org}
	item["sk"] = &types.AttributeValueMemberS{Value: dynamo.OrgSK}
	if _, err := s.Client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(s.Tables.Orgs), Item: item}); err != nil {
		t.Fatal(err)
	}
}
