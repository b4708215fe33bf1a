package localstack

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// LocalAdminPrincipal is the IAM principal that the local admin credential
// stands for; the admin API sees it as requestContext.identity.userArn.
const LocalAdminPrincipal = "arn:aws:iam::000000000000:user/local-admin"

// NewAdminToken makes a random local admin credential.
func NewAdminToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "cladm_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// AdminBearer stands in for SigV4 on the admin API's AWS_IAM routes
// locally (apigateway.Options.IAMAuth): only a request carrying
// "Authorization: Bearer <token>" is let through. There is no AWS account
// locally to sign for, and a bearer token is what curl can send; an
// X-Api-Key is never looked at, so a customer key cannot open admin routes.
func AdminBearer(token string) func(*http.Request) (string, bool) {
	return func(r *http.Request) (string, bool) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			return "", false
		}
		return LocalAdminPrincipal, true
	}
}
