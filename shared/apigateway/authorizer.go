package apigateway

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// authorizerCache holds authorizer results by identity source value.
//
// Only results that carry a policy are cached, Deny policies included:
// API Gateway documents that "for a valid policy" it caches the returned
// policy against the identity source for the TTL. An "Unauthorized" error is
// not a policy, and neither is an authorizer failure, so both are asked
// again on the next request. That keeps a key created moments after a
// rejected attempt usable at once, where caching the rejection would refuse
// it for a whole TTL with no documented reason to expect that in AWS.
type authorizerCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	puts    int
}

type cacheEntry struct {
	output  authorizerOutput
	expires time.Time
}

func (c *authorizerCache) get(key string, now time.Time) (authorizerOutput, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return authorizerOutput{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		return authorizerOutput{}, false
	}
	return e.output, true
}

func (c *authorizerCache) put(key string, o authorizerOutput, expires time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]cacheEntry{}
	}
	c.entries[key] = cacheEntry{o, expires}
	// Sweep now and then so that a client sending a new key on every
	// request cannot grow the map without bound.
	c.puts++
	if c.puts%256 == 0 {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
	}
}

// authorized is the outcome of a successful authorization, ready to be put
// in the endpoint event's requestContext.authorizer.
type authorized struct {
	principalID string
	context     map[string]any
}

// authorize runs the API's Lambda REQUEST authorizer, or answers from the
// cache, and evaluates the policy against this request's method ARN. It
// returns a gateway error when the request must not reach the integration.
//
// An authorizer that fails, or answers something other than a policy, gets
// AUTHORIZER_CONFIGURATION_ERROR rather than AUTHORIZER_FAILURE: that is the
// x-amzn-ErrorType (AuthorizerConfigurationException) and the execution log
// line ("Execution failed due to configuration error") API Gateway produces
// for it, with a 500 {"message": null} body by default.
func (g *gateway) authorize(r *http.Request, rc *requestCtx, req *requestParts) (authorized, *gatewayError) {
	a := g.cfg.Authorizer
	identity := req.headers[http.CanonicalHeaderKey(a.IdentityHeader)]
	if identity == "" {
		// API Gateway answers without invoking the authorizer when an
		// identity source is missing or empty.
		e := errorOf(unauthorized, "Unauthorized")
		return authorized{}, &e
	}
	methodARN := g.methodARN(rc)

	var out authorizerOutput
	cached := false
	if a.CacheTTL > 0 {
		out, cached = g.cache.get(identity, g.opts.Clock())
	}
	if !cached {
		event := events.APIGatewayCustomAuthorizerRequestTypeRequest{
			Type:                            "REQUEST",
			MethodArn:                       methodARN,
			Resource:                        rc.resourcePath,
			Path:                            rc.path,
			HTTPMethod:                      rc.method,
			Headers:                         req.headers,
			MultiValueHeaders:               req.multiValueHeaders,
			QueryStringParameters:           req.query,
			MultiValueQueryStringParameters: req.multiValueQuery,
			PathParameters:                  req.pathParams,
			StageVariables:                  nil,
			RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
				Path:         "/" + g.cfg.Stage + rc.path,
				AccountID:    g.opts.AccountID,
				ResourceID:   rc.resourceID,
				Stage:        g.cfg.Stage,
				RequestID:    rc.requestID,
				Identity:     events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: rc.sourceIP},
				ResourcePath: rc.resourcePath,
				HTTPMethod:   rc.method,
				APIID:        g.opts.APIID,
			},
		}
		payload, err := json.Marshal(event)
		if err != nil {
			e := gatewayError{typ: authorizerConfigurationError}
			return authorized{}, &e
		}
		res := g.invoke(r.Context(), g.authorizer, g.authorizerTimeouts, payload)
		rc.authorizerLatency = res.elapsed
		if res.err != nil {
			if errorMessage(res.err) == "Unauthorized" {
				g.opts.Logger.Debug("authorizer refused the request", "requestId", rc.requestID)
				e := errorOf(unauthorized, "Unauthorized")
				return authorized{}, &e
			}
			g.opts.Logger.Warn("authorizer failed", "requestId", rc.requestID, "error", res.err)
			e := gatewayError{typ: authorizerConfigurationError}
			return authorized{}, &e
		}
		out, err = parseAuthorizerOutput(res.output)
		if err != nil {
			g.opts.Logger.Warn("authorizer output rejected", "requestId", rc.requestID, "error", err)
			e := gatewayError{typ: authorizerConfigurationError}
			return authorized{}, &e
		}
		if a.CacheTTL > 0 {
			now := g.opts.Clock()
			g.cache.put(identity, out, now.Add(a.CacheTTL), now)
		}
	}

	switch out.evaluate(methodARN) {
	case allow:
		return authorized{out.principalID, out.context}, nil
	case explicitDeny:
		e := errorOf(accessDenied, "User is not authorized to access this resource with an explicit deny")
		return authorized{}, &e
	default:
		e := errorOf(accessDenied, "User is not authorized to access this resource")
		return authorized{}, &e
	}
}

// methodARN is the execute-api ARN of this request: the actual path, not
// the resource template, which is why a policy cached for one path can deny
// another.
func (g *gateway) methodARN(rc *requestCtx) string {
	return "arn:aws:execute-api:" + g.opts.Region + ":" + g.opts.AccountID + ":" + g.opts.APIID +
		"/" + g.cfg.Stage + "/" + rc.method + "/" + rc.path[1:]
}
