package apigateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// requestParts are the pieces of the HTTP request that both the authorizer
// event and the proxy event carry, built once per request.
type requestParts struct {
	headers           map[string]string
	multiValueHeaders map[string][]string
	query             map[string]string
	multiValueQuery   map[string][]string
	pathParams        map[string]string
}

// requestParts mirrors API Gateway's REST (v1) event shape: the single-value
// maps hold the last value of a repeated header or query parameter, and a map
// with nothing in it is null rather than empty.
func (g *gateway) requestParts(r *http.Request, pathParams map[string]string) *requestParts {
	p := &requestParts{
		headers:           map[string]string{},
		multiValueHeaders: map[string][]string{},
		pathParams:        pathParams,
	}
	add := func(name string, values ...string) {
		p.multiValueHeaders[name] = append(p.multiValueHeaders[name], values...)
		p.headers[name] = p.multiValueHeaders[name][len(p.multiValueHeaders[name])-1]
	}
	for name, values := range r.Header {
		if len(values) > 0 {
			add(name, values...)
		}
	}
	// net/http moves Host out of the header map; API Gateway passes it, and
	// adds the X-Forwarded-* headers its load balancer would.
	add("Host", r.Host)
	if xff := p.headers["X-Forwarded-For"]; xff != "" {
		p.headers["X-Forwarded-For"] = xff + ", " + sourceIP(r)
		p.multiValueHeaders["X-Forwarded-For"] = []string{p.headers["X-Forwarded-For"]}
	} else {
		add("X-Forwarded-For", sourceIP(r))
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if _, hostPort, err := net.SplitHostPort(r.Host); err == nil {
		port = hostPort
	}
	p.headers["X-Forwarded-Proto"], p.multiValueHeaders["X-Forwarded-Proto"] = proto, []string{proto}
	p.headers["X-Forwarded-Port"], p.multiValueHeaders["X-Forwarded-Port"] = port, []string{port}

	if q, _ := url.ParseQuery(r.URL.RawQuery); len(q) > 0 {
		p.query = make(map[string]string, len(q))
		p.multiValueQuery = q
		for k, v := range q {
			p.query[k] = v[len(v)-1]
		}
	}
	return p
}

// proxy runs the Lambda proxy integration: event in, response out.
func (g *gateway) proxy(w http.ResponseWriter, r *http.Request, rc *requestCtx, m *method, req *requestParts, body []byte, auth authorized, iam iamIdentity) {
	event := events.APIGatewayProxyRequest{
		Resource:                        rc.resourcePath,
		Path:                            rc.path,
		HTTPMethod:                      rc.method,
		Headers:                         req.headers,
		MultiValueHeaders:               req.multiValueHeaders,
		QueryStringParameters:           req.query,
		MultiValueQueryStringParameters: req.multiValueQuery,
		PathParameters:                  req.pathParams,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         g.opts.AccountID,
			ResourceID:        rc.resourceID,
			Stage:             g.cfg.Stage,
			DomainName:        r.Host,
			DomainPrefix:      strings.SplitN(r.Host, ".", 2)[0],
			RequestID:         rc.requestID,
			ExtendedRequestID: rc.extendedRequestID,
			Protocol:          r.Proto,
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  rc.sourceIP,
				UserAgent: r.UserAgent(),
				UserArn:   iam.principal,
				Caller:    iam.principal,
			},
			ResourcePath:     rc.resourcePath,
			Path:             "/" + g.cfg.Stage + rc.path,
			HTTPMethod:       rc.method,
			RequestTime:      rc.start.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: rc.start.UnixMilli(),
			APIID:            g.opts.APIID,
		},
	}
	if auth.principalID != "" {
		a := make(map[string]any, len(auth.context)+2)
		for k, v := range auth.context {
			a[k] = v
		}
		a["principalId"] = auth.principalID
		a["integrationLatency"] = rc.authorizerLatency.Milliseconds()
		event.RequestContext.Authorizer = a
	}
	if len(body) > 0 {
		if g.isBinary(r.Header.Get("Content-Type")) {
			event.Body = base64.StdEncoding.EncodeToString(body)
			event.IsBase64Encoded = true
		} else {
			event.Body = string(body)
		}
	}

	payload, err := json.Marshal(event)
	if err != nil {
		g.opts.Logger.Error("proxy event does not marshal", "requestId", rc.requestID, "error", err)
		g.writeGatewayResponse(w, r, rc, gatewayError{typ: integrationFailure, status: http.StatusBadGateway, message: ptr("Internal server error")})
		return
	}
	res := g.invoke(r.Context(), m.function, m.timeout, payload)
	switch {
	case errors.Is(res.err, errRequestTooLong):
		g.writeGatewayResponse(w, r, rc, errorOf(requestTooLarge, "Request Too Long"))
		return
	case res.timedOut:
		g.opts.Logger.Warn("integration timed out", "requestId", rc.requestID, "function", m.route.Function, "after", res.elapsed)
		g.writeGatewayResponse(w, r, rc, errorOf(integrationTimeout, "Endpoint request timed out"))
		return
	case res.err != nil:
		// A function error in a proxy integration is answered 502 under
		// the INTEGRATION_FAILURE type, so its customisation, or else
		// DEFAULT_5XX's, applies.
		g.opts.Logger.Warn("function error", "requestId", rc.requestID, "function", m.route.Function, "error", errorMessage(res.err))
		g.writeGatewayResponse(w, r, rc, gatewayError{typ: integrationFailure, status: http.StatusBadGateway, message: ptr("Internal server error")})
		return
	}
	resp, body, err := parseProxyResponse(res.output)
	if err != nil {
		g.opts.Logger.Warn("malformed Lambda proxy response", "requestId", rc.requestID, "function", m.route.Function, "error", err)
		g.writeGatewayResponse(w, r, rc, gatewayError{typ: integrationFailure, status: http.StatusBadGateway, message: ptr("Internal server error")})
		return
	}

	h := w.Header()
	for name, values := range resp.headers {
		h[remapped(name)] = values
	}
	if h.Get("Content-Type") == "" {
		// REST APIs label an unlabelled proxy response as JSON.
		h.Set("Content-Type", "application/json")
	}
	h.Set("X-Amzn-Requestid", rc.requestID)
	h.Set("X-Amz-Apigw-Id", rc.extendedRequestID)
	noBody := resp.status < 200 || resp.status == http.StatusNoContent || resp.status == http.StatusNotModified
	if !noBody {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(resp.status)
	if !noBody {
		_, _ = w.Write(body)
	}
	rc.status = resp.status
}

func ptr[T any](v T) *T { return &v }

// isBinary applies the API's binaryMediaTypes to a request's Content-Type.
func (g *gateway) isBinary(contentType string) bool {
	if contentType == "" || len(g.binaryTypes) == 0 {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	for _, t := range g.binaryTypes {
		switch {
		case t == "*/*" || t == mt:
			return true
		case strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(t, "*")):
			return true
		}
	}
	return false
}

type proxyResponse struct {
	status  int
	headers http.Header
}

// parseProxyResponse is as strict as API Gateway's "Malformed Lambda proxy
// response" check: a JSON object with a statusCode and nothing but the five
// documented fields, string header values and a string body.
func parseProxyResponse(out []byte) (proxyResponse, []byte, error) {
	var raw struct {
		StatusCode        *int                `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Body              *string             `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return proxyResponse{}, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return proxyResponse{}, nil, errors.New("data after the response object")
	}
	if raw.StatusCode == nil {
		return proxyResponse{}, nil, errors.New("no statusCode")
	}
	if *raw.StatusCode < 100 || *raw.StatusCode > 599 {
		return proxyResponse{}, nil, fmt.Errorf("statusCode %d", *raw.StatusCode)
	}
	var body []byte
	if raw.Body != nil {
		body = []byte(*raw.Body)
		if raw.IsBase64Encoded {
			var err error
			if body, err = base64.StdEncoding.DecodeString(*raw.Body); err != nil {
				return proxyResponse{}, nil, fmt.Errorf("body: %w", err)
			}
		}
	}
	// API Gateway merges the two maps; for a name in both, only the
	// multiValueHeaders values survive.
	headers := http.Header{}
	for name, values := range raw.MultiValueHeaders {
		headers[http.CanonicalHeaderKey(name)] = append(headers[http.CanonicalHeaderKey(name)], values...)
	}
	for name, value := range raw.Headers {
		if _, ok := headers[http.CanonicalHeaderKey(name)]; !ok {
			headers[http.CanonicalHeaderKey(name)] = []string{value}
		}
	}
	return proxyResponse{status: *raw.StatusCode, headers: headers}, body, nil
}

// remappedHeaders are the integration response headers API Gateway renames
// to X-Amzn-Remapped-*, because it owns them on the client connection.
var remappedHeaders = map[string]bool{
	"Authorization":    true,
	"Connection":       true,
	"Content-Length":   true,
	"Content-Md5":      true,
	"Date":             true,
	"Max-Forwards":     true,
	"Server":           true,
	"User-Agent":       true,
	"Www-Authenticate": true,
}

func remapped(canonical string) string {
	if remappedHeaders[canonical] {
		return "X-Amzn-Remapped-" + canonical
	}
	return canonical
}

// errorMessage is the errorMessage the Lambda runtime would report for err,
// which is what API Gateway compares with "Unauthorized".
func errorMessage(err error) string {
	var v messages.InvokeResponse_Error
	if errors.As(err, &v) {
		return v.Message
	}
	var p *messages.InvokeResponse_Error
	if errors.As(err, &p) && p != nil {
		return p.Message
	}
	return err.Error()
}

// withLambdaContext gives the handler the lambdacontext a deployed function
// sees, so code that logs the AWS request id works unchanged.
func withLambdaContext(ctx context.Context, g *gateway, function string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       newUUID(),
		InvokedFunctionArn: "arn:aws:lambda:" + g.opts.Region + ":" + g.opts.AccountID + ":function:" + function,
	})
}

// newUUID returns a random (version 4) UUID like API Gateway's request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newExtendedID looks like API Gateway's x-amz-apigw-id values.
func newExtendedID() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}
