package lambdas

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/rollover"
)

// Rollover builds the monthly rollover, run by EventBridge Scheduler with
// a rollover.Input. A period that does not fit in one invocation continues
// in another: the function invokes itself asynchronously, by the name
// Lambda gives it in AWS_LAMBDA_FUNCTION_NAME (absent outside Lambda, where
// an unfinished run is an error to run again).
func Rollover(ctx context.Context, getenv func(string) string) (lambda.Handler, error) {
	tables, cfg, client, err := setUp(ctx, getenv, "ORGS_TABLE")
	if err != nil {
		return nil, err
	}
	log := Logger(getenv)
	h := &rollover.Handler{
		Runner: &rollover.Runner{Store: dynamo.Rollovers{Client: client, Table: tables.Orgs}, Now: time.Now, Log: log},
		Now:    time.Now,
		Log:    log,
	}
	if self := getenv("AWS_LAMBDA_FUNCTION_NAME"); self != "" {
		lc := awslambda.NewFromConfig(cfg)
		h.Continue = func(ctx context.Context, in rollover.Input) error {
			payload, err := json.Marshal(in)
			if err != nil {
				return err
			}
			_, err = lc.Invoke(ctx, &awslambda.InvokeInput{
				FunctionName:   aws.String(self),
				InvocationType: lambdatypes.InvocationTypeEvent,
				Payload:        payload,
			})
			return err
		}
	}
	return lambda.NewHandler(h.Handle), nil
}
