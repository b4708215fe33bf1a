package sam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// localClient returns a client for the DynamoDB Local named by
// AWS_ENDPOINT_URL_DYNAMODB (make test starts one), or skips the test.
func localClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		t.Skip("AWS_ENDPOINT_URL_DYNAMODB is not set; run make test to use DynamoDB Local")
	}
	opts := []func(*config.LoadOptions) error{}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "test"}, nil
			})))
	}
	cfg, err := config.LoadDefaultConfig(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg)
}

func TestCreateTablesDynamoDBLocal(t *testing.T) {
	client := localClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	tpl := load(t)

	b := make([]byte, 4)
	rand.Read(b)
	prefix := "test-" + hex.EncodeToString(b) + "-"

	names, err := tpl.CreateTables(ctx, client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range names {
			client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	})
	// Every table of the template, however many it has.
	if all, _ := tpl.Tables(); len(names) != len(all) || len(names) < 4 {
		t.Errorf("CreateTables made %d tables, want %d: %v", len(names), len(all), names)
	}
	for id, name := range names {
		if name != prefix+id {
			t.Errorf("table %s named %q, want %q", id, name, prefix+id)
		}
		d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Table.TableStatus != types.TableStatusActive {
			t.Errorf("%s status %s", name, d.Table.TableStatus)
		}
	}

	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(names["KeysTable"])})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Table.GlobalSecondaryIndexes) != 1 || aws.ToString(d.Table.GlobalSecondaryIndexes[0].IndexName) != "by-org" {
		t.Errorf("KeysTable indexes: %+v", d.Table.GlobalSecondaryIndexes)
	}
	checkTTL := func() {
		t.Helper()
		ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(names["KeysTable"])})
		if err != nil {
			t.Fatal(err)
		}
		desc := ttl.TimeToLiveDescription
		if desc == nil || desc.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(desc.AttributeName) != "expires_at" {
			t.Errorf("KeysTable TTL = %+v, want expires_at ENABLED", desc)
		}
	}
	checkTTL()

	// Again: existing tables and TTL are fine.
	again, err := tpl.CreateTables(ctx, client, prefix)
	if err != nil {
		t.Fatalf("second CreateTables: %v", err)
	}
	if len(again) != len(names) {
		t.Errorf("second CreateTables returned %v", again)
	}
	checkTTL()
}
