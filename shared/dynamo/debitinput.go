package dynamo

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/credits"
)

// DebitInput is the conditional UpdateItem that Debit sends for plan d on
// org's item. It is exported for infra/bench, whose ceiling must send exactly
// the write a charge sends rather than a copy that could drift from it.
func DebitInput(table, org string, d credits.Debit) (*dynamodb.UpdateItemInput, error) {
	return debitInput(table, org, d)
}
