package apigateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

const stageARN = "arn:aws:execute-api:us-east-1:123456789012:local/prod/*/*"

// clock is a settable Options.Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeAuthorizer decides by X-Api-Key value the way the real authorizer
// does, and counts its invocations.
type fakeAuthorizer struct {
	calls atomic.Int64
}

func (a *fakeAuthorizer) handler() lambda.Handler {
	allow := func(principal, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: principal,
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version:   "2012-10-17",
				Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{resource}}},
			},
			Context: ctx,
		}
	}
	return lambda.NewHandler(func(_ context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		a.calls.Add(1)
		switch key := ev.Headers["X-Api-Key"]; {
		case strings.HasPrefix(key, "good"):
			return allow("key-1", stageARN, map[string]any{"org_id": "org-1", "key_id": "key-1", "n": 7, "admin": false}), nil
		case key == "narrow":
			// Allows this one method ARN only: fine uncached, wrong cached.
			return allow("key-2", ev.MethodArn, map[string]any{"org_id": "org-2"}), nil
		case key == "deny":
			r := allow("key-3", stageARN, nil)
			r.PolicyDocument.Statement[0].Effect = "Deny"
			return r, nil
		case key == "nested":
			return allow("key-4", stageARN, map[string]any{"org": map[string]any{"id": "x"}}), nil
		case key == "boom":
			return events.APIGatewayCustomAuthorizerResponse{}, errors.New("table unreachable")
		default:
			return events.APIGatewayCustomAuthorizerResponse{}, errors.New("Unauthorized")
		}
	})
}

// echo answers with the event it received so tests can inspect it.
func echo(_ context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(b)}, nil
}

// rawHandler answers with fixed bytes, for outputs no typed handler emits.
type rawHandler string

func (h rawHandler) Invoke(context.Context, []byte) ([]byte, error) { return []byte(h), nil }

// templateResponses mirrors template.yaml's GatewayResponses.
func templateResponses() map[string]GatewayResponse {
	js := map[string]string{"Content-Type": "'application/json'"}
	return map[string]GatewayResponse{
		"UNAUTHORIZED":                   {StatusCode: 401, Headers: js, Body: `{"detail": "Invalid or missing API key"}`},
		"ACCESS_DENIED":                  {StatusCode: 401, Headers: js, Body: `{"detail": "Invalid or missing API key"}`},
		"MISSING_AUTHENTICATION_TOKEN":   {StatusCode: 404, Headers: js, Body: `{"detail": "Not Found"}`},
		"AUTHORIZER_FAILURE":             {StatusCode: 500, Headers: js, Body: `{"detail": "Internal Server Error"}`},
		"AUTHORIZER_CONFIGURATION_ERROR": {StatusCode: 500, Headers: js, Body: `{"detail": "Internal Server Error"}`},
		"DEFAULT_4XX":                    {Headers: js, Body: `{"detail": $context.error.messageString}`},
		"DEFAULT_5XX":                    {Headers: js, Body: `{"detail": "Internal Server Error"}`},
	}
}

type fixture struct {
	t       *testing.T
	h       http.Handler
	auth    *fakeAuthorizer
	clock   *clock
	invoked atomic.Int64 // endpoint invocations
}

type setup struct {
	ttl       time.Duration
	responses map[string]GatewayResponse
	edit      func(*Config, map[string]lambda.Handler, *Options)
}

func newFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	f := &fixture{t: t, auth: &fakeAuthorizer{}, clock: newClock()}
	counted := func(h any) lambda.Handler {
		inner := lambda.NewHandler(h)
		return handlerFunc(func(ctx context.Context, p []byte) ([]byte, error) {
			f.invoked.Add(1)
			return inner.Invoke(ctx, p)
		})
	}
	cfg := Config{
		Stage: "prod",
		Routes: []Route{
			{Method: "GET", Path: "/api/credits", Function: "CreditsFunction"},
			{Method: "POST", Path: "/api/contacts/create", Function: "ContactsFunction"},
			{Method: "GET", Path: "/api/orgs/{org}", Function: "CreditsFunction"},
			{Method: "GET", Path: "/api/orgs/me", Function: "ContactsFunction"},
			{Method: "ANY", Path: "/files/{proxy+}", Function: "CreditsFunction", Auth: "NONE"},
			{Method: "GET", Path: "/health", Function: "CreditsFunction", Auth: "NONE"},
			{Method: "GET", Path: "/fail", Function: "FailFunction", Auth: "NONE"},
			{Method: "GET", Path: "/admin/orgs", Function: "CreditsFunction", Auth: "AWS_IAM"},
		},
		Authorizer:       &Authorizer{Function: "AuthorizerFunction", IdentityHeader: "X-Api-Key", CacheTTL: s.ttl},
		GatewayResponses: s.responses,
	}
	functions := map[string]lambda.Handler{
		"AuthorizerFunction": f.auth.handler(),
		"CreditsFunction":    counted(echo),
		"ContactsFunction":   counted(echo),
		"FailFunction": counted(func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}),
	}
	opts := Options{Clock: f.clock.Now}
	if s.edit != nil {
		s.edit(&cfg, functions, &opts)
	}
	h, err := New(cfg, functions, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.h = h
	return f
}

type handlerFunc func(context.Context, []byte) ([]byte, error)

func (h handlerFunc) Invoke(ctx context.Context, p []byte) ([]byte, error) { return h(ctx, p) }

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(method, target, key string, body io.Reader, header ...string) response {
	f.t.Helper()
	r := httptest.NewRequest(method, target, body)
	if key != "" {
		r.Header.Set("X-Api-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return response{w.Code, w.Result().Header, w.Body.String()}
}

// event decodes the echo function's answer.
func (r response) event(t *testing.T) events.APIGatewayProxyRequest {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
		t.Fatalf("echo body: %v\n%s", err, r.body)
	}
	return ev
}

func (r response) expect(t *testing.T, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, body)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	h := lambda.NewHandler(echo)
	base := func() Config {
		return Config{
			Stage:      "prod",
			Routes:     []Route{{Method: "GET", Path: "/a", Function: "F"}},
			Authorizer: &Authorizer{Function: "A", IdentityHeader: "X-Api-Key"},
		}
	}
	tests := map[string]func(*Config){
		"route function missing":      func(c *Config) { c.Routes[0].Function = "Nope" },
		"authorizer function missing": func(c *Config) { c.Authorizer.Function = "Nope" },
		"unknown auth":                func(c *Config) { c.Routes[0].Auth = "ApiKeyAuthorizer" },
		"duplicate route":             func(c *Config) { c.Routes = append(c.Routes, Route{Method: "get", Path: "/a", Function: "F"}) },
		"greedy not last":             func(c *Config) { c.Routes[0].Path = "/{proxy+}/x" },
		"relative path":               func(c *Config) { c.Routes[0].Path = "a" },
		"no stage":                    func(c *Config) { c.Stage = "" },
		"ttl over an hour":            func(c *Config) { c.Authorizer.CacheTTL = 2 * time.Hour },
		"sibling variables": func(c *Config) {
			c.Routes = append(c.Routes,
				Route{Method: "GET", Path: "/o/{org}/keys", Function: "F"},
				Route{Method: "GET", Path: "/o/{id}", Function: "F"})
		},
	}
	if _, err := New(base(), map[string]lambda.Handler{"F": h, "A": h}, Options{}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := base()
			edit(&cfg)
			if _, err := New(cfg, map[string]lambda.Handler{"F": h, "A": h}, Options{}); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t, setup{responses: templateResponses()})

	ev := f.do("GET", "/api/credits", "good", nil).event(t)
	if ev.Resource != "/api/credits" || ev.Path != "/api/credits" || ev.HTTPMethod != "GET" || ev.PathParameters != nil {
		t.Errorf("credits event: resource %q path %q method %q params %v", ev.Resource, ev.Path, ev.HTTPMethod, ev.PathParameters)
	}
	if ev.RequestContext.Path != "/prod/api/credits" || ev.RequestContext.Stage != "prod" || ev.RequestContext.ResourcePath != "/api/credits" {
		t.Errorf("requestContext: %+v", ev.RequestContext)
	}

	ev = f.do("GET", "/api/orgs/o%2F1", "good", nil).event(t)
	if ev.Resource != "/api/orgs/{org}" || ev.PathParameters["org"] != "o/1" {
		t.Errorf("param route: resource %q params %v", ev.Resource, ev.PathParameters)
	}
	// A literal resource wins over a path parameter at the same level.
	if ev := f.do("GET", "/api/orgs/me", "good", nil).event(t); ev.Resource != "/api/orgs/me" {
		t.Errorf("literal precedence: resource %q", ev.Resource)
	}
	ev = f.do("DELETE", "/files/a/b/c.txt", "", nil).event(t)
	if ev.Resource != "/files/{proxy+}" || ev.PathParameters["proxy"] != "a/b/c.txt" || ev.HTTPMethod != "DELETE" {
		t.Errorf("greedy ANY route: resource %q params %v method %q", ev.Resource, ev.PathParameters, ev.HTTPMethod)
	}

	notFound := `{"detail": "Not Found"}`
	for _, tc := range []struct{ method, path string }{
		{"GET", "/nope"},
		{"GET", "/api"},
		{"GET", "/api/credits/extra"},
		{"GET", "/files"},          // {proxy+} needs at least one segment
		{"POST", "/api/credits"},   // the path exists, the method does not
		{"GET", "/api/orgs/me/x"},  // deeper than any resource
		{"GET", "/Api/credits"},    // paths are case-sensitive
		{"PUT", "/api/orgs/other"}, // API Gateway does not look for another resource
	} {
		r := f.do(tc.method, tc.path, "good", nil)
		r.expect(t, 404, notFound)
		if got := r.header.Get("X-Amzn-Errortype"); got != "MissingAuthenticationTokenException" {
			t.Errorf("%s %s: x-amzn-ErrorType %q", tc.method, tc.path, got)
		}
	}
	if n := f.auth.calls.Load(); n != 3 {
		t.Errorf("authorizer ran %d times; unmatched routes must not reach it", n)
	}
}

func TestBuiltInGatewayResponses(t *testing.T) {
	f := newFixture(t, setup{})
	f.do("GET", "/nope", "", nil).expect(t, 403, `{"message":"Missing Authentication Token"}`)
	f.do("GET", "/api/credits", "", nil).expect(t, 401, `{"message":"Unauthorized"}`)
	f.do("GET", "/api/credits", "bad", nil).expect(t, 401, `{"message":"Unauthorized"}`)
	f.do("GET", "/api/credits", "deny", nil).expect(t, 403, `{"message":"User is not authorized to access this resource with an explicit deny"}`)
	f.do("GET", "/api/credits", "boom", nil).expect(t, 500, `{"message":null}`)
	f.do("GET", "/fail", "", nil).expect(t, 502, `{"message":"Internal server error"}`)
	r := f.do("GET", "/admin/orgs", "", nil)
	r.expect(t, 403, `{"message":"Missing Authentication Token"}`)
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("gateway response headers: %v", r.header)
	}
}

func TestMissingIdentityDoesNotInvokeAuthorizer(t *testing.T) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses()})
	r := f.do("GET", "/api/credits", "", nil)
	r.expect(t, 401, `{"detail": "Invalid or missing API key"}`)
	if got := r.header.Get("X-Amzn-Errortype"); got != "UnauthorizedException" {
		t.Errorf("x-amzn-ErrorType %q", got)
	}
	// An empty header value counts as missing too.
	f.do("GET", "/api/credits", "", nil, "X-Api-Key", "").expect(t, 401, `{"detail": "Invalid or missing API key"}`)
	if n := f.auth.calls.Load(); n != 0 {
		t.Fatalf("authorizer invoked %d times", n)
	}
	if n := f.invoked.Load(); n != 0 {
		t.Fatalf("endpoint invoked %d times", n)
	}
}

func TestIdentityHeaderIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, setup{edit: func(c *Config, _ map[string]lambda.Handler, _ *Options) {
		c.Authorizer.IdentityHeader = "x-api-KEY"
	}})
	f.do("GET", "/api/credits", "", nil, "X-API-KEY", "good").event(t)
}

func TestUnauthorizedIsNotCached(t *testing.T) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses()})
	for range 2 {
		f.do("GET", "/api/credits", "bad", nil).expect(t, 401, `{"detail": "Invalid or missing API key"}`)
	}
	if n := f.auth.calls.Load(); n != 2 {
		t.Fatalf("authorizer invoked %d times, want 2", n)
	}
	if n := f.invoked.Load(); n != 0 {
		t.Fatalf("endpoint invoked %d times", n)
	}
}

func TestDenyPolicyIsAccessDenied(t *testing.T) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses()})
	for range 2 {
		r := f.do("GET", "/api/credits", "deny", nil)
		r.expect(t, 401, `{"detail": "Invalid or missing API key"}`)
		if got := r.header.Get("X-Amzn-Errortype"); got != "AccessDeniedException" {
			t.Errorf("x-amzn-ErrorType %q", got)
		}
	}
	// A Deny is a valid policy, so it is cached like an Allow.
	if n := f.auth.calls.Load(); n != 1 {
		t.Fatalf("authorizer invoked %d times, want 1", n)
	}
}

func TestAuthorizerFailures(t *testing.T) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses(), edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		good := fns["AuthorizerFunction"]
		fns["AuthorizerFunction"] = handlerFunc(func(ctx context.Context, p []byte) ([]byte, error) {
			var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
			_ = json.Unmarshal(p, &ev)
			switch ev.Headers["X-Api-Key"] {
			case "garbage":
				return []byte(`"not a policy"`), nil
			case "no-principal":
				return []byte(`{"policyDocument":{"Statement":[]}}`), nil
			case "panic":
				panic("authorizer bug")
			}
			return good.Invoke(ctx, p)
		})
	}})
	for _, key := range []string{"boom", "nested", "garbage", "no-principal", "panic"} {
		r := f.do("GET", "/api/credits", key, nil)
		r.expect(t, 500, `{"detail": "Internal Server Error"}`)
		if got := r.header.Get("X-Amzn-Errortype"); got != "AuthorizerConfigurationException" {
			t.Errorf("%s: x-amzn-ErrorType %q", key, got)
		}
	}
	// Failures are not cached.
	f.do("GET", "/api/credits", "boom", nil)
	if n := f.auth.calls.Load(); n != 3 { // boom twice, nested once; the raw answers bypass the counter
		t.Fatalf("authorizer invoked %d times, want 3", n)
	}
}

func TestAuthorizerCache(t *testing.T) {
	t.Run("hit within TTL", func(t *testing.T) {
		f := newFixture(t, setup{ttl: time.Minute})
		f.do("GET", "/api/credits", "good", nil).event(t)
		f.clock.Advance(59 * time.Second)
		f.do("POST", "/api/contacts/create", "good", strings.NewReader(`{}`)).event(t)
		if n := f.auth.calls.Load(); n != 1 {
			t.Fatalf("authorizer invoked %d times, want 1", n)
		}
		// The cache is keyed by the identity value.
		f.do("GET", "/api/credits", "good-other", nil).event(t)
		if n := f.auth.calls.Load(); n != 2 {
			t.Fatalf("authorizer invoked %d times, want 2", n)
		}
	})
	t.Run("expired after TTL", func(t *testing.T) {
		f := newFixture(t, setup{ttl: time.Minute})
		f.do("GET", "/api/credits", "good", nil).event(t)
		f.clock.Advance(time.Minute)
		f.do("GET", "/api/credits", "good", nil).event(t)
		if n := f.auth.calls.Load(); n != 2 {
			t.Fatalf("authorizer invoked %d times, want 2", n)
		}
	})
	t.Run("TTL 0 turns caching off", func(t *testing.T) {
		f := newFixture(t, setup{ttl: 0})
		for range 3 {
			f.do("GET", "/api/credits", "good", nil).event(t)
		}
		if n := f.auth.calls.Load(); n != 3 {
			t.Fatalf("authorizer invoked %d times, want 3", n)
		}
	})
	t.Run("cached context reaches the endpoint", func(t *testing.T) {
		f := newFixture(t, setup{ttl: time.Minute})
		f.do("GET", "/api/credits", "good", nil)
		ev := f.do("GET", "/api/credits", "good", nil).event(t)
		if ev.RequestContext.Authorizer["org_id"] != "org-1" || ev.RequestContext.Authorizer["principalId"] != "key-1" {
			t.Fatalf("authorizer context from cache: %v", ev.RequestContext.Authorizer)
		}
	})
}

// A policy naming only the method ARN it was issued for works until it is
// served from the cache for another path: the reason the real authorizer
// allows the whole stage.
func TestCachedPolicyIsEvaluatedPerMethodARN(t *testing.T) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses()})
	f.do("GET", "/api/credits", "narrow", nil).event(t)
	f.do("GET", "/api/credits", "narrow", nil).event(t)
	f.do("POST", "/api/contacts/create", "narrow", nil).expect(t, 401, `{"detail": "Invalid or missing API key"}`)
	if n := f.auth.calls.Load(); n != 1 {
		t.Fatalf("authorizer invoked %d times, want 1", n)
	}
	// Without a cache the same authorizer is asked every time and allows.
	f = newFixture(t, setup{ttl: 0})
	f.do("GET", "/api/credits", "narrow", nil).event(t)
	f.do("POST", "/api/contacts/create", "narrow", nil).event(t)
}

func TestAuthorizerEvent(t *testing.T) {
	var got events.APIGatewayCustomAuthorizerRequestTypeRequest
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		inner := fns["AuthorizerFunction"]
		fns["AuthorizerFunction"] = handlerFunc(func(ctx context.Context, p []byte) ([]byte, error) {
			if err := json.Unmarshal(p, &got); err != nil {
				return nil, err
			}
			return inner.Invoke(ctx, p)
		})
	}})
	ev := f.do("GET", "/api/orgs/o1?x=1&x=2", "good", nil).event(t)
	want := "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/api/orgs/o1"
	if got.Type != "REQUEST" || got.MethodArn != want {
		t.Errorf("type %q methodArn %q, want REQUEST %q", got.Type, got.MethodArn, want)
	}
	if got.Resource != "/api/orgs/{org}" || got.Path != "/api/orgs/o1" || got.HTTPMethod != "GET" || got.PathParameters["org"] != "o1" {
		t.Errorf("resource %q path %q method %q params %v", got.Resource, got.Path, got.HTTPMethod, got.PathParameters)
	}
	if got.Headers["X-Api-Key"] != "good" || got.QueryStringParameters["x"] != "2" || len(got.MultiValueQueryStringParameters["x"]) != 2 {
		t.Errorf("headers %v query %v %v", got.Headers, got.QueryStringParameters, got.MultiValueQueryStringParameters)
	}
	rc := got.RequestContext
	if rc.Path != "/prod/api/orgs/o1" || rc.Stage != "prod" || rc.AccountID != "123456789012" || rc.APIID != "local" ||
		rc.ResourcePath != "/api/orgs/{org}" || rc.RequestID != ev.RequestContext.RequestID || rc.Identity.SourceIP != "192.0.2.1" {
		t.Errorf("authorizer requestContext %+v", rc)
	}
}

func TestProxyEvent(t *testing.T) {
	f := newFixture(t, setup{})
	r := f.do("GET", "/api/credits?q=a%20b&tag=x&tag=y&empty=", "good", nil,
		"Accept", "text/plain", "Accept", "application/json", "User-Agent", "test-agent")
	ev := r.event(t)

	if ev.QueryStringParameters["q"] != "a b" || ev.QueryStringParameters["tag"] != "y" || ev.QueryStringParameters["empty"] != "" {
		t.Errorf("queryStringParameters %v", ev.QueryStringParameters)
	}
	if got := ev.MultiValueQueryStringParameters["tag"]; len(got) != 2 || got[0] != "x" || got[1] != "y" {
		t.Errorf("multiValueQueryStringParameters %v", ev.MultiValueQueryStringParameters)
	}
	if ev.Headers["Accept"] != "application/json" {
		t.Errorf("single-value header keeps the last value, got %q", ev.Headers["Accept"])
	}
	if got := ev.MultiValueHeaders["Accept"]; len(got) != 2 || got[0] != "text/plain" {
		t.Errorf("multiValueHeaders Accept %v", got)
	}
	if ev.Headers["Host"] != "example.com" || ev.Headers["X-Forwarded-For"] != "192.0.2.1" || ev.Headers["X-Forwarded-Proto"] != "http" {
		t.Errorf("gateway-added headers %v", ev.Headers)
	}
	rc := ev.RequestContext
	if rc.RequestID == "" || rc.RequestID != r.header.Get("X-Amzn-Requestid") {
		t.Errorf("requestId %q, x-amzn-RequestId %q", rc.RequestID, r.header.Get("X-Amzn-Requestid"))
	}
	if rc.HTTPMethod != "GET" || rc.AccountID != "123456789012" || rc.APIID != "local" || rc.Identity.SourceIP != "192.0.2.1" ||
		rc.Identity.UserAgent != "test-agent" || rc.RequestTimeEpoch != f.clock.Now().UnixMilli() || rc.ResourceID == "" {
		t.Errorf("requestContext %+v", rc)
	}
	// Context values arrive stringified, with principalId beside them.
	a := rc.Authorizer
	if a["org_id"] != "org-1" || a["key_id"] != "key-1" || a["n"] != "7" || a["admin"] != "false" || a["principalId"] != "key-1" {
		t.Errorf("requestContext.authorizer %v", a)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("unlabelled response Content-Type %q", r.header.Get("Content-Type"))
	}

	// No authorizer, no query: the maps are null as in API Gateway.
	var raw map[string]any
	_ = json.Unmarshal([]byte(f.do("GET", "/health", "", nil).body), &raw)
	for _, k := range []string{"queryStringParameters", "multiValueQueryStringParameters", "pathParameters"} {
		if raw[k] != nil {
			t.Errorf("%s = %v, want null", k, raw[k])
		}
	}
	if a := raw["requestContext"].(map[string]any)["authorizer"]; a != nil {
		t.Errorf("authorizer on an unauthenticated route: %v", a)
	}
	// A second request gets another id.
	if id := f.do("GET", "/api/credits", "good", nil).event(t).RequestContext.RequestID; id == rc.RequestID {
		t.Errorf("request id %q reused", id)
	}
}

func TestLambdaContext(t *testing.T) {
	var arn, id string
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		fns["CreditsFunction"] = lambda.NewHandler(func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			if lc, ok := lambdacontext.FromContext(ctx); ok {
				arn, id = lc.InvokedFunctionArn, lc.AwsRequestID
			}
			return echo(ctx, ev)
		})
	}})
	f.do("GET", "/health", "", nil).event(t)
	if arn != "arn:aws:lambda:us-east-1:123456789012:function:CreditsFunction" || id == "" {
		t.Fatalf("lambda context arn %q id %q", arn, id)
	}
}

func TestBodies(t *testing.T) {
	f := newFixture(t, setup{edit: func(c *Config, _ map[string]lambda.Handler, _ *Options) {
		c.BinaryMediaTypes = []string{"image~1png", "application/octet-stream"}
	}})
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe}

	ev := f.do("POST", "/files/up", "", bytes.NewReader(binary), "Content-Type", "image/png").event(t)
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(binary) {
		t.Errorf("binary body: base64 %v body %q", ev.IsBase64Encoded, ev.Body)
	}
	ev = f.do("POST", "/files/up", "", strings.NewReader(`{"name":"é"}`), "Content-Type", "application/json; charset=utf-8").event(t)
	if ev.IsBase64Encoded || ev.Body != `{"name":"é"}` {
		t.Errorf("text body: base64 %v body %q", ev.IsBase64Encoded, ev.Body)
	}
	// Without binaryMediaTypes API Gateway passes every body as text.
	g := newFixture(t, setup{})
	if ev := g.do("POST", "/files/up", "", strings.NewReader("abc"), "Content-Type", "image/png").event(t); ev.IsBase64Encoded || ev.Body != "abc" {
		t.Errorf("no binary types: base64 %v body %q", ev.IsBase64Encoded, ev.Body)
	}

	// A base64 response is decoded for the client.
	h := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		fns["CreditsFunction"] = lambda.NewHandler(func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{
				StatusCode:      200,
				Headers:         map[string]string{"Content-Type": "image/png"},
				Body:            base64.StdEncoding.EncodeToString(binary),
				IsBase64Encoded: true,
			}, nil
		})
	}})
	r := h.do("GET", "/health", "", nil)
	if r.status != 200 || r.body != string(binary) || r.header.Get("Content-Type") != "image/png" {
		t.Errorf("base64 response: %d %q %v", r.status, r.body, r.header)
	}
}

func TestResponseHeaders(t *testing.T) {
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		fns["CreditsFunction"] = lambda.NewHandler(func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{
				StatusCode:        201,
				Headers:           map[string]string{"X-One": "1", "set-cookie": "ignored", "WWW-Authenticate": "Bearer"},
				MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1", "b=2"}},
				Body:              "created",
			}, nil
		})
	}})
	r := f.do("GET", "/health", "", nil)
	if r.status != 201 || r.body != "created" || r.header.Get("X-One") != "1" {
		t.Fatalf("response %d %q %v", r.status, r.body, r.header)
	}
	if got := r.header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("multiValueHeaders win over headers for the same name: %v", got)
	}
	if r.header.Get("WWW-Authenticate") != "" || r.header.Get("X-Amzn-Remapped-Www-Authenticate") != "Bearer" {
		t.Errorf("WWW-Authenticate is remapped by API Gateway: %v", r.header)
	}
}

func TestNoContentResponse(t *testing.T) {
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		fns["CreditsFunction"] = rawHandler(`{"statusCode":204,"body":"ignored"}`)
	}})
	f.do("GET", "/health", "", nil).expect(t, 204, "")
}

func TestFunctionErrors(t *testing.T) {
	malformed := map[string]lambda.Handler{
		"error": lambda.NewHandler(func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}),
		"panic":         lambda.NewHandler(func() (events.APIGatewayProxyResponse, error) { panic("bug") }),
		"not json":      rawHandler(`oops`),
		"null":          rawHandler(`null`),
		"no statusCode": rawHandler(`{"body":"x"}`),
		"unknown field": rawHandler(`{"statusCode":200,"cookies":["a=b"]}`),
		"object body":   rawHandler(`{"statusCode":200,"body":{"a":1}}`),
		"bad base64":    rawHandler(`{"statusCode":200,"body":"%%%","isBase64Encoded":true}`),
		"too large":     rawHandler(`{"statusCode":200,"body":"` + strings.Repeat("x", maxInvokeResponse) + `"}`),
	}
	for name, h := range malformed {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				responses map[string]GatewayResponse
				body      string
			}{
				{nil, `{"message":"Internal server error"}`},
				{templateResponses(), `{"detail": "Internal Server Error"}`}, // DEFAULT_5XX applies
				{map[string]GatewayResponse{"INTEGRATION_FAILURE": {Body: `{"error": $context.error.messageString, "type": "$context.error.responseType"}`}},
					`{"error": "Internal server error", "type": "INTEGRATION_FAILURE"}`},
			} {
				f := newFixture(t, setup{responses: tc.responses, edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
					fns["CreditsFunction"] = h
				}})
				r := f.do("GET", "/health", "", nil)
				r.expect(t, 502, tc.body)
				if got := r.header.Get("X-Amzn-Errortype"); got != "InternalServerErrorException" {
					t.Errorf("x-amzn-ErrorType %q", got)
				}
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	blocking := lambda.NewHandler(func(ctx context.Context) (events.APIGatewayProxyResponse, error) {
		<-ctx.Done()
		return events.APIGatewayProxyResponse{}, ctx.Err()
	})
	t.Run("integration timeout", func(t *testing.T) {
		f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, o *Options) {
			fns["CreditsFunction"] = blocking
			o.IntegrationTimeout = time.Millisecond
		}})
		f.do("GET", "/health", "", nil).expect(t, 504, `{"message":"Endpoint request timed out"}`)
	})
	t.Run("function timeout", func(t *testing.T) {
		f := newFixture(t, setup{edit: func(c *Config, fns map[string]lambda.Handler, _ *Options) {
			fns["CreditsFunction"] = blocking
			c.FunctionTimeouts = map[string]time.Duration{"CreditsFunction": time.Millisecond}
		}})
		f.do("GET", "/health", "", nil).expect(t, 502, `{"message":"Internal server error"}`)
	})
}

func TestPayloadLimits(t *testing.T) {
	f := newFixture(t, setup{responses: templateResponses()})
	big := bytes.Repeat([]byte("x"), maxBody+1)
	r := f.do("POST", "/files/x", "", bytes.NewReader(big))
	r.expect(t, 413, "HTTP content length exceeded 10485760 bytes.")
	// Without a Content-Length the limit still holds.
	r = f.do("POST", "/files/x", "", io.MultiReader(bytes.NewReader(big)))
	if r.status != 413 {
		t.Errorf("chunked oversize body: %d", r.status)
	}
	// Under API Gateway's limit but over Lambda's: the event is refused.
	r = f.do("POST", "/files/x", "", bytes.NewReader(big[:7<<20]))
	r.expect(t, 413, `{"detail": "Request Too Long"}`)
	if n := f.invoked.Load(); n != 0 {
		t.Fatalf("endpoint invoked %d times", n)
	}
}

func TestGatewayResponseTemplates(t *testing.T) {
	f := newFixture(t, setup{responses: map[string]GatewayResponse{
		"UNAUTHORIZED": {
			Headers: map[string]string{"Access-Control-Allow-Origin": "'*'", "X-Echo": "method.request.header.X-Trace"},
			Body:    `{"msg": $context.error.messageString, "raw": "$context.error.message", "id": "$context.requestId", "stage": "${context.stage}", "unknown": "$context.nope"}`,
		},
	}})
	r := f.do("GET", "/api/credits", "", nil, "X-Trace", "t-1")
	want := fmt.Sprintf(`{"msg": "Unauthorized", "raw": "Unauthorized", "id": "%s", "stage": "prod", "unknown": ""}`, r.header.Get("X-Amzn-Requestid"))
	r.expect(t, 401, want) // no StatusCode: the type's own 401
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("X-Echo") != "t-1" {
		t.Errorf("mapped headers %v", r.header)
	}
	// A customised DEFAULT_4XX status applies to uncustomised 4XX types.
	f = newFixture(t, setup{responses: map[string]GatewayResponse{"DEFAULT_4XX": {StatusCode: 400}}})
	f.do("GET", "/nope", "", nil).expect(t, 400, `{"message":"Missing Authentication Token"}`)
}

func TestIAMRoutes(t *testing.T) {
	var principal string
	f := newFixture(t, setup{responses: templateResponses(), edit: func(_ *Config, _ map[string]lambda.Handler, o *Options) {
		o.IAMAuth = func(r *http.Request) (string, bool) {
			if r.Header.Get("Authorization") == "AWS4-HMAC-SHA256 admin" {
				return "arn:aws:iam::123456789012:user/admin", true
			}
			return "", false
		}
	}})
	// Unsigned: API Gateway's Missing Authentication Token, here remapped to 404.
	f.do("GET", "/admin/orgs", "good", nil).expect(t, 404, `{"detail": "Not Found"}`)
	f.do("GET", "/admin/orgs", "", nil, "Authorization", "AWS4-HMAC-SHA256 intruder").expect(t, 401, `{"detail": "Invalid or missing API key"}`)
	ev := f.do("GET", "/admin/orgs", "", nil, "Authorization", "AWS4-HMAC-SHA256 admin").event(t)
	principal = ev.RequestContext.Identity.UserArn
	if principal != "arn:aws:iam::123456789012:user/admin" || ev.RequestContext.Authorizer != nil {
		t.Fatalf("identity %+v authorizer %v", ev.RequestContext.Identity, ev.RequestContext.Authorizer)
	}
	if n := f.auth.calls.Load(); n != 0 {
		t.Fatalf("the API key authorizer ran %d times on an IAM route", n)
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Run("one environment per function", func(t *testing.T) { concurrentRequests(t, nil) })
	t.Run("spawned environments", func(t *testing.T) {
		concurrentRequests(t, func(_ context.Context, function string) (lambda.Handler, error) {
			if function == "AuthorizerFunction" {
				return (&fakeAuthorizer{}).handler(), nil
			}
			return lambda.NewHandler(echo), nil
		})
	})
}

func concurrentRequests(t *testing.T, spawn func(context.Context, string) (lambda.Handler, error)) {
	f := newFixture(t, setup{ttl: time.Minute, responses: templateResponses(), edit: func(_ *Config, _ map[string]lambda.Handler, o *Options) {
		o.Spawn = spawn
	}})
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	keys := []string{"good", "good-2", "good-3", "bad", "deny", ""}
	want := map[string]int{"good": 200, "good-2": 200, "good-3": 200, "bad": 401, "deny": 401, "": 401}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			key := keys[i%len(keys)]
			if i%50 == 0 {
				f.clock.Advance(30 * time.Second) // expire entries while others read them
			}
			req, _ := http.NewRequest("GET", srv.URL+"/api/credits", nil)
			if key != "" {
				req.Header.Set("X-Api-Key", key)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want[key] {
				errs <- fmt.Errorf("key %q: %d %s", key, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Without Options.Spawn a function has one execution environment, so two
// requests never run in the same handler value at once.
func TestOneEnvironmentServesOneRequestAtATime(t *testing.T) {
	var inFlight, most atomic.Int64
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, _ *Options) {
		fns["CreditsFunction"] = lambda.NewHandler(func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			return echo(ctx, ev)
		})
	}})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := srv.Client().Get(srv.URL + "/health")
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d invocations ran at once in one environment", most.Load())
	}
}

// With Options.Spawn concurrent requests get environments of their own, as
// on Lambda: three requests that each wait for the other two all finish.
func TestSpawnAddsEnvironments(t *testing.T) {
	const n = 3
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	var spawned atomic.Int64
	newHandler := func() lambda.Handler {
		return lambda.NewHandler(func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return events.APIGatewayProxyResponse{}, ctx.Err()
			}
			return echo(ctx, ev)
		})
	}
	f := newFixture(t, setup{edit: func(_ *Config, fns map[string]lambda.Handler, o *Options) {
		fns["CreditsFunction"] = newHandler()
		o.IntegrationTimeout = 10 * time.Second // fail rather than hang if environments are not added
		o.Spawn = func(_ context.Context, function string) (lambda.Handler, error) {
			if function != "CreditsFunction" {
				return nil, fmt.Errorf("unexpected spawn of %s", function)
			}
			spawned.Add(1)
			return newHandler(), nil
		}
	}})
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() { statuses <- f.do("GET", "/health", "", nil).status })
	}
	for range n {
		<-arrived
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Errorf("status %d", s)
		}
	}
	if spawned.Load() != n-1 {
		t.Errorf("spawned %d environments, want %d", spawned.Load(), n-1)
	}
	// Idle environments are reused rather than spawned again.
	for range n {
		f.do("GET", "/health", "", nil).event(t)
		<-arrived
	}
	if spawned.Load() != n-1 {
		t.Errorf("spawned %d environments after sequential requests, want %d", spawned.Load(), n-1)
	}
}

func TestWildcardMatch(t *testing.T) {
	arn := "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/api/credits"
	for pattern, want := range map[string]bool{
		"*": true,
		arn: true,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/*/*":          true,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/*":            true,
		"arn:aws:execute-api:*:*:local/prod/GET/api/*":                       true,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/GE?/api/*":    true,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/POST/*":       false,
		"arn:aws:execute-api:us-east-1:123456789012:local/dev/*/*":           false,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/api/cred": false,
		"arn:aws:execute-api:us-east-1:123456789012:local/prod/G?/api/*":     false,
	} {
		if got := wildcardMatch(pattern, arn); got != want {
			t.Errorf("wildcardMatch(%q) = %v, want %v", pattern, got, want)
		}
	}
}

func TestPolicyForms(t *testing.T) {
	arn := "arn:aws:execute-api:us-east-1:123456789012:local/prod/GET/api/credits"
	for doc, want := range map[string]decision{
		// IAM's single-string and single-statement forms.
		`{"principalId":"p","policyDocument":{"Statement":{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}}}`:    allow,
		`{"principalId":"p","policyDocument":{"Statement":[{"Effect":"Allow","Action":"execute-api:*","Resource":["x","*"]}]}}`: allow,
		`{"principalId":"p","policyDocument":{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}}`:        implicitDeny,
		`{"principalId":"p","policyDocument":{"Statement":[]}}`:                                                                 implicitDeny,
		`{"principalId":"p","policyDocument":{"Statement":[
			{"Effect":"Allow","Action":"*","Resource":"*"},
			{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"*/GET/api/*"}]}}`: explicitDeny,
	} {
		out, err := parseAuthorizerOutput([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if got := out.evaluate(arn); got != want {
			t.Errorf("%s: decision %v, want %v", doc, got, want)
		}
	}
	if _, err := parseAuthorizerOutput([]byte(`{"principalId":"p","policyDocument":{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}}`)); err == nil {
		t.Error("lower-case effect accepted")
	}
}
