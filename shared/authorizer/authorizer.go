// Package authorizer is the API Gateway REQUEST authorizer: it turns the
// X-Api-Key header into the key's organization, or into a 401.
package authorizer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contactlevel/metering/shared/apikey"
)

// Header is the request header that carries the key.
const Header = "X-Api-Key"

// Context keys the authorizer passes to endpoints through requestContext.authorizer.
const (
	ContextOrgID = "org_id"
	ContextKeyID = "key_id"
	// ContextKeyExpires is the key's expiry in epoch seconds, absent for a
	// key that never expires. API Gateway caches an authorizer's answer for
	// the cache TTL, and would otherwise let a key work that long past its
	// expiry; endpoints compare it with their own clock.
	ContextKeyExpires = "key_expires"
)

// ErrUnauthorized is the error API Gateway turns into its UNAUTHORIZED
// gateway response; the message must be exactly "Unauthorized".
var ErrUnauthorized = errors.New("Unauthorized")

// Lookup finds a stored key record by the key's hash; apikey.ErrNotFound when
// there is none.
type Lookup interface {
	Lookup(ctx context.Context, hash string) (apikey.Record, error)
}

// Authorizer decides requests. Its zero value is not usable; build it with New.
type Authorizer struct {
	keys Lookup
	now  func() time.Time
	log  *slog.Logger
}

// New returns an authorizer that reads keys through keys and judges expiry
// by now.
func New(keys Lookup, now func() time.Time, log *slog.Logger) *Authorizer {
	return &Authorizer{keys: keys, now: now, log: log}
}

// Handle decides a request given as the aws-lambda-go event type; Invoke,
// which Lambda runs, decides the same way from the event's JSON. A key that
// is absent, malformed, unknown,
// expired or revoked yields ErrUnauthorized (401); a storage failure yields
// another error, which API Gateway answers with a 5XX rather than telling a
// customer their good key is bad.
func (a *Authorizer) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	raw, ok := KeyFromHeaders(req.Headers, req.MultiValueHeaders)
	rec, err := a.decide(ctx, raw, ok, req.RequestContext.RequestID)
	if err != nil {
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	return Allow(rec, req.MethodArn), nil
}

// decide is Handle once the key has been found among the headers (ok false
// when it was absent or ambiguous): the record of a usable key, or the error
// to return.
func (a *Authorizer) decide(ctx context.Context, raw string, ok bool, requestID string) (apikey.Record, error) {
	if !ok {
		a.logOutcome(ctx, slog.LevelInfo, requestID, nil, "malformed", nil)
		return apikey.Record{}, ErrUnauthorized
	}
	key, err := apikey.Parse(raw)
	if err != nil {
		a.logOutcome(ctx, slog.LevelInfo, requestID, nil, "malformed", nil)
		return apikey.Record{}, ErrUnauthorized
	}
	rec, err := a.keys.Lookup(ctx, key.Hash())
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		a.logOutcome(ctx, slog.LevelInfo, requestID, nil, "unknown", nil)
		return apikey.Record{}, ErrUnauthorized
	case err != nil:
		a.logOutcome(ctx, slog.LevelError, requestID, nil, "error", err)
		return apikey.Record{}, err
	}
	if !rec.Usable(a.now()) {
		a.logOutcome(ctx, slog.LevelInfo, requestID, &rec, "expired_or_revoked", nil)
		return apikey.Record{}, ErrUnauthorized
	}
	a.logOutcome(ctx, slog.LevelInfo, requestID, &rec, "allow", nil)
	return rec, nil
}

// logOutcome writes the one "authorize" line of a request: its id, the
// key's organization and id once the key is known, the outcome and any
// error. One LogAttrs call, rather than loggers derived with With, keeps
// the line's cost to formatting it.
func (a *Authorizer) logOutcome(ctx context.Context, level slog.Level, requestID string, rec *apikey.Record, outcome string, err error) {
	if !a.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 5)
	attrs = append(attrs, slog.String("request_id", requestID))
	if rec != nil {
		attrs = append(attrs, slog.String("org_id", rec.OrgID), slog.String("key_id", rec.ID))
	}
	attrs = append(attrs, slog.String("outcome", outcome))
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	a.log.LogAttrs(ctx, level, "authorize", attrs...)
}

// Allow is the response that lets the key's organization call every method
// and path of the stage. A policy for the one path asked would be cached
// under the key and then deny the organization's next, different, path.
func Allow(rec apikey.Record, methodArn string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:    rec.ID,
		PolicyDocument: stagePolicy(methodArn),
		Context:        allowContextOf(rec).asMap(),
	}
}

// stagePolicy allows every method and path of methodArn's stage.
func stagePolicy(methodArn string) events.APIGatewayCustomAuthorizerPolicy {
	return events.APIGatewayCustomAuthorizerPolicy{
		Version: "2012-10-17",
		Statement: []events.IAMPolicyStatement{{
			Action:   []string{"execute-api:Invoke"},
			Effect:   "Allow",
			Resource: []string{StageArn(methodArn)},
		}},
	}
}

// StageArn turns arn:aws:execute-api:region:account:api/stage/METHOD/path
// into arn:aws:execute-api:region:account:api/stage/*/*.
func StageArn(methodArn string) string {
	colon := strings.LastIndexByte(methodArn, ':')
	if colon < 0 {
		return methodArn
	}
	// api/stage is everything up to the second slash after the colon.
	rest := methodArn[colon+1:]
	api := strings.IndexByte(rest, '/')
	if api < 0 {
		return methodArn
	}
	stage := strings.IndexByte(rest[api+1:], '/')
	if stage < 0 {
		stage = len(rest) - api - 1
	}
	return methodArn[:colon+1] + rest[:api+1+stage] + "/*/*"
}

// KeyFromHeaders finds the key among the request's headers, whatever the
// header name's case. Surrounding spaces and tabs are not part of a header
// value (RFC 9110) and are dropped. The header repeated with different
// values, or a value with a control character, is refused: which one would
// be billed is ambiguous.
func KeyFromHeaders(single map[string]string, multi map[string][]string) (string, bool) {
	var values []string
	for name, vs := range multi {
		if strings.EqualFold(name, Header) {
			values = append(values, vs...)
		}
	}
	if len(values) == 0 {
		for name, v := range single {
			if strings.EqualFold(name, Header) {
				values = append(values, v)
			}
		}
	}
	return keyFrom(values)
}

// keyFrom applies KeyFromHeaders's rules to the values the key header had.
func keyFrom(values []string) (string, bool) {
	if len(values) == 0 {
		return "", false
	}
	v := strings.Trim(values[0], " \t")
	for _, other := range values[1:] {
		if strings.Trim(other, " \t") != v {
			return "", false
		}
	}
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return v, true
}
