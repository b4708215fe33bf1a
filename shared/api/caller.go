package api

import (
	"context"
	"net/http"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/contactlevel/metering/shared/authorizer"
)

// caller is who is calling, as the authorizer established.
type caller struct {
	OrgID     string
	KeyID     string
	RequestID string
}

type callerKey struct{}

// callerFrom reads the authorizer's context that API Gateway put in the
// event; aws-lambda-go-api-proxy carries it in the request's context.
func callerFrom(r *http.Request) (caller, bool) {
	rc, ok := core.GetAPIGatewayContextFromContext(r.Context())
	if !ok {
		return caller{}, false
	}
	org, _ := rc.Authorizer[authorizer.ContextOrgID].(string)
	key, _ := rc.Authorizer[authorizer.ContextKeyID].(string)
	return caller{OrgID: org, KeyID: key, RequestID: rc.RequestID}, org != ""
}

// authenticated answers 401 for a request that somehow arrives without the
// authorizer's organization (a misconfigured route, a direct invocation).
func (s *server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := callerFrom(r)
		if !ok {
			writeDetail(w, http.StatusUnauthorized, "Invalid or missing API key")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}
