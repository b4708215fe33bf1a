package lambdas

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Bounds on every DynamoDB call a function makes.
const (
	// MaxAttempts is the SDK's attempts per call, the first included. A
	// request has seconds, not minutes: three attempts with short backoff
	// ride out a throttling blip, and anything longer is better answered
	// 503 so the client retries.
	MaxAttempts = 3
	// MaxBackoff caps the wait between attempts.
	MaxBackoff = 200 * time.Millisecond
	// DeadlineReserve is kept back from the Lambda's remaining time on each
	// call, so that when DynamoDB hangs there is still time to refund and
	// answer before Lambda kills the invocation.
	DeadlineReserve = time.Second
	// MaxCallTime bounds a call (all its attempts) that runs without a
	// deadline of its own, e.g. outside Lambda.
	MaxCallTime = 5 * time.Second
)

// Resilient is the DynamoDB client option every function uses: a bounded
// standard retryer and a deadline on every call derived from the
// invocation's. The Lambda runtime puts the invocation's deadline on the
// handler's context, and aws-lambda-go-api-proxy passes that context to the
// http.Handler, so every DynamoDB call sees it.
func Resilient(o *dynamodb.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = MaxAttempts
		so.MaxBackoff = MaxBackoff
		// A write that lost to a transaction on the same item did nothing
		// and can be tried again at once; the SDK does not know that code.
		so.Retryables = append(so.Retryables, retry.RetryableErrorCode{
			Codes: map[string]struct{}{"TransactionConflictException": {}},
		})
	})
	o.APIOptions = append(o.APIOptions, addCallDeadline)
}

func addCallDeadline(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CallDeadline",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			ctx, cancel := CallContext(ctx, time.Now())
			defer cancel()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// CallContext is ctx bounded for one DynamoDB call at now: DeadlineReserve
// before ctx's own deadline (half the time left when less than the reserve
// remains), or MaxCallTime when ctx has no deadline.
func CallContext(ctx context.Context, now time.Time) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithDeadline(ctx, now.Add(MaxCallTime))
	}
	left := dl.Sub(now)
	if left > DeadlineReserve {
		return context.WithDeadline(ctx, dl.Add(-DeadlineReserve))
	}
	return context.WithDeadline(ctx, now.Add(left/2))
}
