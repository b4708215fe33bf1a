package apigateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// Limits API Gateway and Lambda apply, reproduced so that what fails when
// deployed fails locally too.
const (
	// maxBody is API Gateway's REST API payload quota (10 MB).
	maxBody = 10 << 20
	// maxInvokeRequest and maxInvokeResponse are Lambda's synchronous
	// invocation payload quotas as its error messages state them.
	maxInvokeRequest  = 6291456
	maxInvokeResponse = 6291556
	// defaultIntegrationTimeout is API Gateway's default integration timeout.
	defaultIntegrationTimeout = 29 * time.Second
)

// Options are the emulator's knobs that do not come from template.yaml.
type Options struct {
	// Clock is the time source for the authorizer cache and requestTimeEpoch,
	// so that tests can expire cached policies without sleeping.
	// Default: time.Now.
	Clock func() time.Time
	// Region, AccountID and APIID fill method ARNs and requestContext the way
	// a deployed API would. Defaults: us-east-1, 123456789012, local.
	Region    string
	AccountID string
	APIID     string
	// Logger receives one line per request and the reasons behind gateway
	// errors, which API Gateway only shows in its execution logs.
	// Default: discard.
	Logger *slog.Logger
	// IAMAuth authenticates callers of routes whose Auth is AWS_IAM; it stands
	// in for SigV4 verification and IAM policy evaluation. The principal it
	// returns reaches the function as requestContext.identity.userArn and
	// caller. Without it every such request is refused, as an unsigned
	// request is in AWS.
	IAMAuth func(r *http.Request) (principal string, ok bool)
	// IntegrationTimeout bounds an invocation like API Gateway's integration
	// timeout does; it is measured in real time because it bounds real work.
	// Default: 29s.
	IntegrationTimeout time.Duration
	// Spawn starts another execution environment of a function (a fresh
	// handler, as a cold start would build it) when a request arrives while
	// every existing one is busy, so concurrent requests run in parallel as
	// on Lambda. Without it each function has only the handler given to New
	// and serves one request at a time: a lambda.NewHandler handler reuses
	// its output buffer on the next invocation (aws-lambda-go v1.55.1), so
	// one handler value must never run two invocations at once.
	Spawn func(ctx context.Context, function string) (lambda.Handler, error)
}

type gateway struct {
	cfg                Config
	opts               Options
	resources          []*resource
	authorizer         *environments
	authorizerTimeouts timeouts
	cache              authorizerCache
	binaryTypes        []string
}

// New returns an http.Handler that serves cfg's routes the way API Gateway's
// stage would, minus the stage prefix in the URL (as sam local start-api
// does), invoking functions by logical ID through the same JSON interface
// the Lambda runtime uses.
func New(cfg Config, functions map[string]lambda.Handler, opts Options) (http.Handler, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.APIID == "" {
		opts.APIID = "local"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IntegrationTimeout <= 0 {
		opts.IntegrationTimeout = defaultIntegrationTimeout
	}
	if cfg.Stage == "" {
		return nil, errors.New("apigateway: config has no stage")
	}
	g := &gateway{cfg: cfg, opts: opts}
	for _, t := range cfg.BinaryMediaTypes {
		g.binaryTypes = append(g.binaryTypes, strings.ToLower(strings.ReplaceAll(t, "~1", "/")))
	}

	pools := map[string]*environments{}
	fn := func(id string) (*environments, error) {
		if p := pools[id]; p != nil {
			return p, nil
		}
		h := functions[id]
		if h == nil {
			return nil, fmt.Errorf("apigateway: function %q is not in the functions map", id)
		}
		pools[id] = newEnvironments(id, h, opts.Spawn)
		return pools[id], nil
	}
	if a := cfg.Authorizer; a != nil {
		h, err := fn(a.Function)
		if err != nil {
			return nil, fmt.Errorf("%w (authorizer)", err)
		}
		if a.IdentityHeader == "" {
			return nil, errors.New("apigateway: authorizer has no identity header")
		}
		// API Gateway refuses a TTL above an hour; so does the emulator, so
		// that a template it accepts deploys.
		if a.CacheTTL < 0 || a.CacheTTL > time.Hour {
			return nil, fmt.Errorf("apigateway: authorizer cache TTL %v is outside 0..1h", a.CacheTTL)
		}
		g.authorizer = h
		g.authorizerTimeouts = g.timeoutsFor(a.Function)
	}

	byPath := map[string]*resource{}
	for _, rt := range cfg.Routes {
		rt.Method = strings.ToUpper(rt.Method)
		switch rt.Auth {
		case "", "NONE", "AWS_IAM":
		default:
			return nil, fmt.Errorf("apigateway: %s %s: unknown auth %q (want \"\", NONE or AWS_IAM)", rt.Method, rt.Path, rt.Auth)
		}
		h, err := fn(rt.Function)
		if err != nil {
			return nil, fmt.Errorf("%w (route %s %s)", err, rt.Method, rt.Path)
		}
		res := byPath[rt.Path]
		if res == nil {
			segments, err := parseTemplate(rt.Path)
			if err != nil {
				return nil, fmt.Errorf("apigateway: %w", err)
			}
			res = &resource{path: rt.Path, id: resourceID(rt.Path), segments: segments, methods: map[string]*method{}}
			byPath[rt.Path] = res
			g.resources = append(g.resources, res)
		}
		if res.methods[rt.Method] != nil {
			return nil, fmt.Errorf("apigateway: route %s %s is defined twice", rt.Method, rt.Path)
		}
		res.methods[rt.Method] = &method{route: rt, resource: res, function: h, timeout: g.timeoutsFor(rt.Function)}
	}
	sort.Slice(g.resources, func(i, j int) bool { return g.resources[i].path < g.resources[j].path })
	for i, a := range g.resources {
		for _, b := range g.resources[i+1:] {
			if err := siblingConflict(a, b); err != nil {
				return nil, err
			}
		}
	}
	return g, nil
}

// siblingConflict refuses what API Gateway refuses to create: two variable
// path parts at the same level under the same parent ("only one is
// allowed"). It also guarantees that two distinct resources never match a
// request equally well.
func siblingConflict(a, b *resource) error {
	for k := range min(len(a.segments), len(b.segments)) {
		sa, sb := a.segments[k], b.segments[k]
		if sa == sb {
			continue
		}
		if sa.kind == literalSegment || sb.kind == literalSegment {
			return nil
		}
		return fmt.Errorf("apigateway: %s and %s have different variable path parts at the same level", a.path, b.path)
	}
	return nil
}

// timeouts bounds one invocation: the function's own timeout and the
// gateway's integration timeout, which fail differently.
type timeouts struct {
	function    time.Duration // 0: none
	integration time.Duration
}

func (g *gateway) timeoutsFor(function string) timeouts {
	return timeouts{function: g.cfg.FunctionTimeouts[function], integration: g.opts.IntegrationTimeout}
}

// requestCtx is what the gateway knows about the request in flight; it
// feeds requestContext, gateway response templates and the access log.
type requestCtx struct {
	requestID         string
	extendedRequestID string
	start             time.Time // from Options.Clock
	method            string
	path              string // without the stage
	resourcePath      string
	resourceID        string
	sourceIP          string
	authorizerLatency time.Duration
	status            int
	errorType         string
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	rc := &requestCtx{
		requestID:         newUUID(),
		extendedRequestID: newExtendedID(),
		start:             g.opts.Clock(),
		method:            r.Method,
		path:              r.URL.Path,
		sourceIP:          sourceIP(r),
	}
	if rc.path == "" {
		rc.path = "/"
	}
	defer func() {
		g.opts.Logger.Info("request",
			"requestId", rc.requestID, "method", rc.method, "path", rc.path,
			"resource", rc.resourcePath, "status", rc.status, "gatewayResponse", rc.errorType,
			"duration", time.Since(started))
	}()

	body, status := readBody(w, r)
	if status != 0 {
		rc.status = status
		return
	}

	found, ok := match(g.resources, r.URL)
	var m *method
	if ok {
		m = found.resource.methods[r.Method]
		if m == nil {
			m = found.resource.methods["ANY"]
		}
	}
	if m == nil {
		g.writeGatewayResponse(w, r, rc, errorOf(missingAuthenticationToken, "Missing Authentication Token"))
		return
	}
	rc.resourcePath = m.resource.path
	rc.resourceID = m.resource.id
	req := g.requestParts(r, found.pathParams)

	var auth authorized
	var identity iamIdentity
	switch {
	case m.route.Auth == "AWS_IAM":
		var e *gatewayError
		identity, e = g.authorizeIAM(r, rc)
		if e != nil {
			g.writeGatewayResponse(w, r, rc, *e)
			return
		}
	case m.route.Auth == "" && g.cfg.Authorizer != nil:
		var e *gatewayError
		auth, e = g.authorize(r, rc, req)
		if e != nil {
			g.writeGatewayResponse(w, r, rc, *e)
			return
		}
	}

	g.proxy(w, r, rc, m, req, body, auth, identity)
}

// readBody enforces API Gateway's payload quota. The refusal is not a
// gateway response: API Gateway answers it before any of the API's
// configuration applies, in plain text, and customising REQUEST_TOO_LARGE
// does not change it. A non-zero status means the request is over.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	tooLarge := func() ([]byte, int) {
		w.Header().Set("Content-Type", "text; charset=utf-8")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_, _ = io.WriteString(w, "HTTP content length exceeded 10485760 bytes.")
		return nil, http.StatusRequestEntityTooLarge
	}
	if r.ContentLength > maxBody {
		return tooLarge()
	}
	if r.Body == nil {
		return nil, 0
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		// The client went away mid-body (499 in nginx's terms, for the
		// log); nobody is left to answer.
		return nil, 499
	}
	if len(body) > maxBody {
		return tooLarge()
	}
	return body, 0
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// iamIdentity is what the IAMAuth hook established about the caller.
type iamIdentity struct {
	principal string
}

// authorizeIAM stands in for SigV4: an unsigned request gets API Gateway's
// "Missing Authentication Token", a signed one the hook refuses gets
// ACCESS_DENIED with IAM's message.
func (g *gateway) authorizeIAM(r *http.Request, rc *requestCtx) (iamIdentity, *gatewayError) {
	signed := r.Header.Get("Authorization") != "" || r.URL.Query().Get("X-Amz-Signature") != ""
	if !signed {
		e := errorOf(missingAuthenticationToken, "Missing Authentication Token")
		return iamIdentity{}, &e
	}
	if g.opts.IAMAuth != nil {
		if principal, ok := g.opts.IAMAuth(r); ok {
			return iamIdentity{principal}, nil
		}
	}
	e := errorOf(accessDenied, "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "+g.methodARN(rc))
	return iamIdentity{}, &e
}

// invocation is one Lambda invocation's outcome.
type invocation struct {
	output   []byte
	err      error
	timedOut bool // the integration timeout, not the function's, ran out
	elapsed  time.Duration
}

// invoke calls a function like the Lambda service would for API Gateway: in
// an idle execution environment, with a context that outlives the client
// (Lambda does not stop when the caller hangs up) bounded by the function
// timeout, and a panic turned into a function error instead of taking the
// server down. Waiting for an environment counts against the integration
// timeout but not against the function's.
func (g *gateway) invoke(ctx context.Context, envs *environments, t timeouts, payload []byte) (res invocation) {
	started := time.Now()
	defer func() { res.elapsed = time.Since(started) }()
	if len(payload) > maxInvokeRequest {
		return invocation{err: errRequestTooLong}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.integration)
	defer cancel()
	h, err := envs.acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return invocation{timedOut: true}
		}
		return invocation{err: err}
	}
	fctx := withLambdaContext(ctx, g, envs.function)
	if t.function > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(fctx, t.function)
		defer cancel()
	}
	invoked := time.Now()
	func() {
		defer func() {
			if v := recover(); v != nil {
				res = invocation{err: fmt.Errorf("function %s panicked: %v", envs.function, v)}
			}
		}()
		out, err := h.Invoke(fctx, payload)
		// Copied before the environment serves anyone else, because the
		// handler may reuse the buffer behind out.
		res = invocation{output: bytes.Clone(out), err: err}
	}()
	envs.release(h)

	switch {
	case time.Since(started) >= t.integration:
		res = invocation{timedOut: true}
	case t.function > 0 && time.Since(invoked) >= t.function && res.err == nil:
		res = invocation{err: fmt.Errorf("task timed out after %.2f seconds", t.function.Seconds())}
	case t.function > 0 && time.Since(invoked) >= t.function:
		// The handler noticed its deadline and failed; Lambda reports the
		// timeout either way.
	case res.err == nil && len(res.output) > maxInvokeResponse:
		res.err = fmt.Errorf("response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes)", len(res.output), maxInvokeResponse)
	}
	return res
}

// errRequestTooLong is Lambda refusing an event over its payload quota; API
// Gateway turns it into a 413 "Request Too Long".
var errRequestTooLong = errors.New("request payload exceeds Lambda's 6 MB limit")
