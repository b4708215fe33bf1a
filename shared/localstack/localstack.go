// Package localstack assembles the API as template.yaml deploys it, in one
// process: every function built from package lambdas with the environment
// the template gives it, behind the API Gateway emulator. `make run`, the
// end-to-end tests and the benchmarks all serve through it.
package localstack

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/contactlevel/metering/shared/apigateway"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/sam"
)

// Functions maps each function's logical ID in template.yaml to the
// constructor its main package starts; a test keeps it and the template in step.
var Functions = map[string]lambdas.Constructor{
	"AuthorizerFunction": lambdas.Authorizer,
	"CreditsFunction":    lambdas.Endpoints,
	"ContactsFunction":   lambdas.Endpoints,
	"AudiencesFunction":  lambdas.Endpoints,
	"AdminFunction":      lambdas.Admin,
	"RolloverFunction":   lambdas.Rollover,
}

// Gateway builds every function of tmpl over the given tables (logical ID to
// table name) and parameter values, and returns the API that routes to them.
func Gateway(ctx context.Context, tmpl *sam.Template, tables, params map[string]string, opts apigateway.Options) (http.Handler, error) {
	if err := tmpl.CheckEnv(); err != nil {
		return nil, err
	}
	// build makes one execution environment of a function, as a cold start
	// on Lambda would: the constructor with the template's environment.
	build := func(ctx context.Context, fn string) (lambda.Handler, error) {
		construct, ok := Functions[fn]
		if !ok {
			return nil, fmt.Errorf("template function %s has no constructor in localstack.Functions", fn)
		}
		env := tmpl.FunctionEnv(fn, tables, params)
		h, err := construct(ctx, func(name string) string {
			if v, ok := env[name]; ok {
				return v
			}
			return os.Getenv(name)
		})
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", fn, err)
		}
		return h, nil
	}
	handlers := make(map[string]lambda.Handler)
	for _, fn := range tmpl.Functions() {
		h, err := build(ctx, fn)
		if err != nil {
			return nil, err
		}
		handlers[fn] = h
	}
	if opts.Spawn == nil {
		opts.Spawn = build
	}
	cfg, err := tmpl.GatewayConfig(params)
	if err != nil {
		return nil, err
	}
	return apigateway.New(cfg, handlers, opts)
}

// UseDynamoDBLocal points this process's AWS SDK, and so every function
// built in it, at DynamoDB Local: the SDK reads endpoint, region and
// credentials from the process environment, in the functions as here.
// DynamoDB Local (-sharedDb) ignores region and keys, so dummies keep a real
// profile out of it; a region already set is kept and returned.
func UseDynamoDBLocal(endpoint string) (region string) {
	region = os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": endpoint,
		"AWS_REGION":                region,
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_SESSION_TOKEN")
	os.Unsetenv("AWS_PROFILE")
	return region
}
