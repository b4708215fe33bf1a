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
	// BinaryMediaTypes are the API's binary media types (SAM's BinaryMediaTypes,
	// "~1" may stand for "/"). A request whose Content-Type matches one reaches
	// the function base64-encoded; any other body is passed as text, which is
	// what API Gateway does, so binary uploads break locally as they would
	// when deployed.
	BinaryMediaTypes []string
	// FunctionTimeouts maps a function's logical ID to its Timeout, so that a
	// slow handler fails locally the way Lambda would fail it. A function
	// missing from the map is only bounded by the gateway's integration timeout.
	FunctionTimeouts map[string]time.Duration
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
	// StatusCode is 0 when the template leaves it out: the response type's
	// own status (401 for UNAUTHORIZED, ...) is kept, as in API Gateway.
	StatusCode int
	// Headers are static values; API Gateway's single-quote wrapping
	// ("'application/json'") is accepted and removed, and a value
	// method.request.header.NAME copies that request header.
	Headers map[string]string
	// Body is the application/json response template. $context variables
	// ($context.error.messageString, $context.requestId, ...) are substituted.
	Body string
}
