package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/contactlevel/metering/shared/authorizer"
)

// caller is who is calling, as the authorizer established.
type caller struct {
	OrgID     string
	KeyID     string
	RequestID string
	// KeyExpires is the key's expiry, zero when it never expires.
	KeyExpires time.Time
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
	c := caller{OrgID: org, KeyID: key, RequestID: rc.RequestID}
	// API Gateway hands context values to the integration as strings.
	if exp, ok := rc.Authorizer[authorizer.ContextKeyExpires].(string); ok && exp != "" {
		sec, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return caller{}, false
		}
		c.KeyExpires = time.Unix(sec, 0)
	}
	return c, org != ""
}

// authenticated answers 401 for a request that somehow arrives without the
// authorizer's organization (a misconfigured route, a direct invocation),
// and for a key that has expired since API Gateway cached the authorizer's
// answer for it.
func (s *server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := callerFrom(r)
		if !ok || (!c.KeyExpires.IsZero() && !s.Now().Before(c.KeyExpires)) {
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
