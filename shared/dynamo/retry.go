package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"

	"github.com/contactlevel/metering/shared/credits"
)

// rejectedCodes are DynamoDB errors returned before anything is applied:
// throttling, and a transaction conflict (the request lost a race to a
// transaction and did nothing).
var rejectedCodes = map[string]bool{
	"ThrottlingException":                    true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"TransactionConflictException":           true,
	"TransactionInProgressException":         true,
}

// unapplied reports whether err certainly means the request changed
// nothing: DynamoDB refused it (throttling, any 4xx) or it never reached
// DynamoDB (no connection). Timeouts, 5xx and connections dropped after
// sending are ambiguous: the write may have landed.
func unapplied(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		if rejectedCodes[api.ErrorCode()] {
			return true
		}
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) {
			return status.HTTPStatusCode() >= 400 && status.HTTPStatusCode() < 500
		}
		return api.ErrorFault() == smithy.FaultClient
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return strings.Contains(err.Error(), "connection refused")
}

// classify marks an error that leaves a write's outcome unknown, so that
// the API can say so rather than claim nothing was charged.
func classify(err error) error {
	if unapplied(err) {
		return err
	}
	return fmt.Errorf("%w: %w", credits.ErrUnconfirmed, err)
}

// retryOnlyUnapplied narrows the client's retryer for one call to errors
// that certainly changed nothing. The standard retryer also retries 5xx and
// timeouts, which is right for reads and idempotent writes but would charge
// twice when a debit's first attempt landed and only its answer was lost.
func retryOnlyUnapplied(o *dynamodb.Options) {
	if o.Retryer == nil {
		return
	}
	o.Retryer = unappliedRetryer{o.Retryer}
}

type unappliedRetryer struct {
	aws.Retryer
}

func (r unappliedRetryer) IsErrorRetryable(err error) bool {
	return unapplied(err) && r.Retryer.IsErrorRetryable(err)
}

// GetAttemptToken keeps aws.RetryerV2 behaviour when the wrapped retryer has it.
func (r unappliedRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.Retryer.GetInitialToken(), nil
}
