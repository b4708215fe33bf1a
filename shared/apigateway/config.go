package apigateway

import "time"

// Config is what the emulator needs to know about one REST API. It is built
// from template.yaml (package sam) so that routes, the authorizer and the
// Gateway Responses are never written down twice.
type Config struct {
	// Stage is the stage name that appears in requestContext.stage and in the methodArn.
	Stage string
	// Routes lists every method and path the API serves.
	Routes []Route
	// Authorizer is the API's default Lambda REQUEST authorizer, nil when it has none.
	Authorizer *Authorizer
	// GatewayResponses maps a gateway response type (UNAUTHORIZED, ACCESS_DENIED,
	// MISSING_AUTHENTICATION_TOKEN, DEFAULT_4XX, DEFAULT_5XX, ...) to what API Gateway answers.
	GatewayResponses map[string]GatewayResponse
}

// Route is one API event of a function: a method and an API Gateway path
// template such as /admin/orgs/{org}.
type Route struct {
	Method   string
	Path     string
	Function string // logical ID of the function that serves it
	// Auth is "" for the API's default authorizer, "NONE" for no authorization
	// and "AWS_IAM" for SigV4-signed callers.
	Auth string
}

// Authorizer describes a Lambda REQUEST authorizer.
type Authorizer struct {
	Function       string        // logical ID of the authorizer function
	IdentityHeader string        // e.g. X-Api-Key
	CacheTTL       time.Duration // 0 turns the result cache off
}

// GatewayResponse is a customised Gateway Response.
type GatewayResponse struct {
	StatusCode int
	Headers    map[string]string
	Body       string // the application/json response template, sent as is
}
