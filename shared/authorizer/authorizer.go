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

// Handle is the Lambda handler. A key that is absent, malformed, unknown,
// expired or revoked yields ErrUnauthorized (401); a storage failure yields
// another error, which API Gateway answers with a 5XX rather than telling a
// customer their good key is bad.
func (a *Authorizer) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	log := a.log.With("request_id", req.RequestContext.RequestID)
	raw, ok := KeyFromHeaders(req.Headers, req.MultiValueHeaders)
	if !ok {
		log.Info("authorize", "outcome", "malformed")
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	key, err := apikey.Parse(raw)
	if err != nil {
		log.Info("authorize", "outcome", "malformed")
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	rec, err := a.keys.Lookup(ctx, key.Hash())
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		log.Info("authorize", "outcome", "unknown")
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	case err != nil:
		log.Error("authorize", "outcome", "error", "error", err)
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	log = log.With("org_id", rec.OrgID, "key_id", rec.ID)
	if !rec.Usable(a.now()) {
		log.Info("authorize", "outcome", "expired_or_revoked")
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	log.Info("authorize", "outcome", "allow")
	return Allow(rec, req.MethodArn), nil
}

// Allow is the response that lets the key's organization call every method
// and path of the stage. A policy for the one path asked would be cached
// under the key and then deny the organization's next, different, path.
func Allow(rec apikey.Record, methodArn string) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: rec.ID,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{StageArn(methodArn)},
			}},
		},
		Context: map[string]any{ContextOrgID: rec.OrgID, ContextKeyID: rec.ID},
	}
}

// StageArn turns arn:aws:execute-api:region:account:api/stage/METHOD/path
// into arn:aws:execute-api:region:account:api/stage/*/*.
func StageArn(methodArn string) string {
	colon := strings.LastIndexByte(methodArn, ':')
	if colon < 0 {
		return methodArn
	}
	parts := strings.SplitN(methodArn[colon+1:], "/", 3)
	if len(parts) < 2 {
		return methodArn
	}
	return methodArn[:colon+1] + parts[0] + "/" + parts[1] + "/*/*"
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
