// Package lambdas builds every function's handler from its environment. The
// functions' main packages and the local gateway both start here, so the code
// that runs locally is the code that deploys.
package lambdas

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/adminapi"
	"github.com/contactlevel/metering/shared/api"
	"github.com/contactlevel/metering/shared/authorizer"
	appconfig "github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/dynamo"
)

// Constructor builds a function's handler once per container: clients and
// configuration are made here, never per request.
type Constructor func(ctx context.Context, getenv func(string) string) (lambda.Handler, error)

// Authorizer builds the REQUEST authorizer.
func Authorizer(ctx context.Context, getenv func(string) string) (lambda.Handler, error) {
	tables, _, client, err := setUp(ctx, getenv, "KEYS_TABLE")
	if err != nil {
		return nil, err
	}
	// The authorizer is its own lambda.Handler: it decodes only the fields
	// it reads (see authorizer.Invoke).
	return authorizer.New(dynamo.Keys{Client: client, Table: tables.Keys}, time.Now, Logger(getenv)), nil
}

// Endpoints builds the customer API behind API Gateway's proxy integration.
// The credits, contacts and audiences functions all run it; API Gateway
// sends each only its own routes, and IAM lets each touch only its tables.
func Endpoints(ctx context.Context, getenv func(string) string) (lambda.Handler, error) {
	tables, _, client, err := setUp(ctx, getenv, "ORGS_TABLE")
	if err != nil {
		return nil, err
	}
	balances := &dynamo.Credits{Client: client, Table: tables.Orgs}
	var idem api.IdempotencyStore
	if tables.Idempotency != "" {
		idem = &dynamo.Idempotency{Client: client, Table: tables.Idempotency, Credits: balances}
	}
	h := api.New(api.Deps{
		Credits:     balances,
		Idempotency: idem,
		Contacts:    dynamo.Contacts{Client: client, Table: tables.Contacts},
		Audiences:   dynamo.Audiences{Client: client, Table: tables.Audiences},
		Log:         Logger(getenv),
	})
	return lambda.NewHandler(httpadapter.New(h).ProxyWithContext), nil
}

// Admin builds the admin API (organizations, keys, credits, ledger) behind
// API Gateway's proxy integration; its routes are IAM-authorized.
func Admin(ctx context.Context, getenv func(string) string) (lambda.Handler, error) {
	tables, _, client, err := setUp(ctx, getenv, "ORGS_TABLE", "KEYS_TABLE")
	if err != nil {
		return nil, err
	}
	log := Logger(getenv)
	h := adminapi.New(admin.New(client, tables, log), log)
	return lambda.NewHandler(httpadapter.New(h).ProxyWithContext), nil
}

// setUp is how every constructor starts: the table names, with the
// variables the function cannot run without checked, and one AWS
// configuration, loaded once, for all of the function's clients.
func setUp(ctx context.Context, getenv func(string) string, required ...string) (appconfig.Tables, aws.Config, *dynamodb.Client, error) {
	for _, name := range required {
		if getenv(name) == "" {
			return appconfig.Tables{}, aws.Config{}, nil, fmt.Errorf("%s is not set", name)
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return appconfig.Tables{}, aws.Config{}, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return appconfig.TablesFromEnv(getenv), cfg, dynamoFrom(cfg, nil), nil
}

// DynamoDB makes a client from the standard AWS configuration chain, which
// also honours AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local.
func DynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamoFrom(cfg, nil), nil
}

// DynamoDBAt is the client of the operators' commands. endpoint "aws" means
// the SDK's own endpoint for the region; anything else is a DynamoDB URL,
// such as DynamoDB Local's. A loopback endpoint gets dummy credentials unless
// real ones are set: DynamoDB Local ignores them, and no profile should be
// needed, or used, there.
func DynamoDBAt(ctx context.Context, endpoint string, getenv func(string) string) (*dynamodb.Client, error) {
	if endpoint == "aws" {
		return DynamoDB(ctx)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("DynamoDB endpoint %q is not a URL", endpoint)
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(cmp.Or(getenv("AWS_REGION"), "us-east-1"))}
	if h := u.Hostname(); (h == "127.0.0.1" || h == "localhost" || h == "::1") && getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return dynamoFrom(cfg, aws.String(endpoint)), nil
}

// dynamoFrom makes the DynamoDB client every function and tool uses: the
// bounded retries and per-call deadlines of Resilient, at endpoint when it
// is not nil.
func dynamoFrom(cfg aws.Config, endpoint *string) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != nil {
			o.BaseEndpoint = endpoint
		}
		// DynamoDB Local sends a CRC32 header that does not match the
		// bodies of some error responses (a failed condition with its item);
		// the SDK then only warns and drops the connection. Against AWS the
		// check stays on.
		o.DisableValidateResponseChecksum = o.BaseEndpoint != nil
	}, Resilient)
}

// Logger writes JSON lines to stdout, which Lambda ships to CloudWatch, at
// the level LOG_LEVEL names (DEBUG, INFO, WARN, ERROR; INFO by default).
func Logger(getenv func(string) string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(getenv("LOG_LEVEL")))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
}

// Main is the whole main function of a Lambda: it builds the handler with
// construct and starts the runtime loop. Each function's main names its own
// constructor, so its binary links only the code that function runs.
func Main(construct Constructor) {
	if err := Run(context.Background(), construct, os.Getenv, lambda.Start); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Run builds a handler with construct and hands it to start (lambda.Start
// in production, something that returns in tests).
func Run(ctx context.Context, construct Constructor, getenv func(string) string, start func(any)) error {
	h, err := construct(ctx, getenv)
	if err != nil {
		return err
	}
	start(h)
	return nil
}
