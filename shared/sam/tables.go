package sam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table is an AWS::DynamoDB::Table of the template, ready to be created
// locally.
type Table struct {
	// LogicalID is the resource's logical ID, e.g. KeysTable. Locally it is
	// also the table's name, after an optional prefix.
	LogicalID string
	// Input holds the key schema, attribute definitions, secondary indexes,
	// billing mode and streams of the table; TableName is left empty.
	// Settings DynamoDB Local ignores (encryption, point-in-time recovery,
	// deletion policies) are not carried over.
	Input *dynamodb.CreateTableInput
	// TTLAttribute is the enabled TimeToLiveSpecification's attribute, "" if none.
	TTLAttribute string
}

// cfnTable mirrors the AWS::DynamoDB::Table properties this package carries
// over. Decoding through JSON rejects intrinsic functions where a plain value
// is needed, instead of silently ignoring them.
type cfnTable struct {
	BillingMode          string
	AttributeDefinitions []struct {
		AttributeName string
		AttributeType string
	}
	KeySchema              []cfnKey
	GlobalSecondaryIndexes []struct {
		IndexName             string
		KeySchema             []cfnKey
		Projection            cfnProjection
		ProvisionedThroughput *cfnThroughput
	}
	LocalSecondaryIndexes []struct {
		IndexName  string
		KeySchema  []cfnKey
		Projection cfnProjection
	}
	ProvisionedThroughput   *cfnThroughput
	StreamSpecification     *struct{ StreamViewType string }
	TimeToLiveSpecification *struct {
		AttributeName string
		Enabled       bool
	}
}

type cfnKey struct {
	AttributeName string
	KeyType       string
}

type cfnProjection struct {
	ProjectionType   string
	NonKeyAttributes []string
}

type cfnThroughput struct {
	ReadCapacityUnits  int64
	WriteCapacityUnits int64
}

// Tables returns every AWS::DynamoDB::Table of the template, in template order.
func (t *Template) Tables() ([]Table, error) {
	var tables []Table
	for _, id := range t.ofType(TypeTable) {
		tb, err := t.table(id)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		tables = append(tables, tb)
	}
	return tables, nil
}

func (t *Template) table(id string) (Table, error) {
	raw, err := json.Marshal(t.Resources[id].Properties)
	if err != nil {
		return Table{}, err
	}
	var c cfnTable
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return Table{}, fmt.Errorf("unsupported property value (intrinsic functions are not resolved here): %w", err)
	}
	if len(c.KeySchema) == 0 || len(c.AttributeDefinitions) == 0 {
		return Table{}, errors.New("KeySchema and AttributeDefinitions are required")
	}

	in := &dynamodb.CreateTableInput{}
	for _, a := range c.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	in.KeySchema = keySchema(c.KeySchema)
	for _, g := range c.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:             aws.String(g.IndexName),
			KeySchema:             keySchema(g.KeySchema),
			Projection:            projection(g.Projection),
			ProvisionedThroughput: throughput(g.ProvisionedThroughput),
		})
	}
	for _, l := range c.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(l.IndexName),
			KeySchema:  keySchema(l.KeySchema),
			Projection: projection(l.Projection),
		})
	}
	switch c.BillingMode {
	case "PAY_PER_REQUEST":
		in.BillingMode = types.BillingModePayPerRequest
	case "", "PROVISIONED":
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = throughput(c.ProvisionedThroughput)
		if in.ProvisionedThroughput == nil {
			return Table{}, errors.New("PROVISIONED billing needs ProvisionedThroughput")
		}
	default:
		return Table{}, fmt.Errorf("unknown BillingMode %q", c.BillingMode)
	}
	if s := c.StreamSpecification; s != nil {
		in.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(s.StreamViewType),
		}
	}

	tb := Table{LogicalID: id, Input: in}
	if ttl := c.TimeToLiveSpecification; ttl != nil && ttl.Enabled {
		tb.TTLAttribute = ttl.AttributeName
	}
	return tb, nil
}

func keySchema(ks []cfnKey) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return out
}

func projection(p cfnProjection) *types.Projection {
	out := &types.Projection{ProjectionType: types.ProjectionType(p.ProjectionType)}
	if len(p.NonKeyAttributes) > 0 {
		out.NonKeyAttributes = p.NonKeyAttributes
	}
	return out
}

func throughput(p *cfnThroughput) *types.ProvisionedThroughput {
	if p == nil {
		return nil
	}
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(p.ReadCapacityUnits),
		WriteCapacityUnits: aws.Int64(p.WriteCapacityUnits),
	}
}

// tableWait bounds how long CreateTables waits for one table to become ACTIVE.
const tableWait = 2 * time.Minute

// CreateTables creates every table of the template that does not exist yet,
// named prefix + logical ID, waits until each is ACTIVE and enables its Time
// to Live attribute. Tables that already exist are left as they are (only TTL
// is switched on when it is off), so calling it again is harmless. It returns
// the table name of each logical ID.
func (t *Template) CreateTables(ctx context.Context, client *dynamodb.Client, prefix string) (map[string]string, error) {
	tables, err := t.Tables()
	if err != nil {
		return nil, err
	}
	// Listing first, rather than relying on ResourceInUseException, keeps the
	// SDK quiet: it logs a spurious checksum warning for error responses from
	// DynamoDB Local (aws/aws-sdk-go-v2#3545).
	existing := map[string]bool{}
	pages := dynamodb.NewListTablesPaginator(client, &dynamodb.ListTablesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		for _, name := range page.TableNames {
			existing[name] = true
		}
	}
	names := make(map[string]string, len(tables))
	for _, tb := range tables {
		name := prefix + tb.LogicalID
		names[tb.LogicalID] = name
		if existing[name] {
			continue
		}
		in := *tb.Input
		in.TableName = aws.String(name)
		if _, err := client.CreateTable(ctx, &in); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				return nil, fmt.Errorf("create table %s: %w", name, err)
			}
		}
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	for _, tb := range tables {
		name := names[tb.LogicalID]
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableWait); err != nil {
			return nil, fmt.Errorf("wait for table %s: %w", name, err)
		}
		if tb.TTLAttribute == "" {
			continue
		}
		if err := enableTTL(ctx, client, name, tb.TTLAttribute); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// enableTTL turns Time to Live on for attr unless it already is: DynamoDB
// rejects enabling it twice.
func enableTTL(ctx context.Context, client *dynamodb.Client, table, attr string) error {
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if desc := d.TimeToLiveDescription; desc != nil && aws.ToString(desc.AttributeName) == attr &&
		(desc.TimeToLiveStatus == types.TimeToLiveStatusEnabled || desc.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attr),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s.%s: %w", table, attr, err)
	}
	return nil
}
