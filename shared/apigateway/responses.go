package apigateway

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Gateway response types the emulator produces. The names are API Gateway's,
// so that Config.GatewayResponses keys taken from template.yaml apply as is.
const (
	missingAuthenticationToken   = "MISSING_AUTHENTICATION_TOKEN"
	unauthorized                 = "UNAUTHORIZED"
	accessDenied                 = "ACCESS_DENIED"
	authorizerConfigurationError = "AUTHORIZER_CONFIGURATION_ERROR"
	integrationFailure           = "INTEGRATION_FAILURE"
	integrationTimeout           = "INTEGRATION_TIMEOUT"
	requestTooLarge              = "REQUEST_TOO_LARGE"
	default4XX                   = "DEFAULT_4XX"
	default5XX                   = "DEFAULT_5XX"
)

// builtin is what API Gateway answers for a response type nobody customised.
type builtin struct {
	status    int
	errorType string // x-amzn-ErrorType
}

// builtins holds the statuses from the "Gateway response types" table of the
// API Gateway developer guide and the x-amzn-ErrorType values API Gateway is
// seen to send with them.
var builtins = map[string]builtin{
	missingAuthenticationToken:   {http.StatusForbidden, "MissingAuthenticationTokenException"},
	unauthorized:                 {http.StatusUnauthorized, "UnauthorizedException"},
	accessDenied:                 {http.StatusForbidden, "AccessDeniedException"},
	authorizerConfigurationError: {http.StatusInternalServerError, "AuthorizerConfigurationException"},
	// The table says 504, but access logs show a Lambda proxy integration
	// failure answered 502 under this type, so proxy overrides the status.
	integrationFailure: {http.StatusGatewayTimeout, "InternalServerErrorException"},
	integrationTimeout: {http.StatusGatewayTimeout, "InternalServerErrorException"},
	requestTooLarge:    {http.StatusRequestEntityTooLarge, "BadRequestException"},
}

// defaultTemplate is the body API Gateway renders for a response type whose
// customisation has no application/json template.
const defaultTemplate = `{"message":$context.error.messageString}`

// gatewayError is one response API Gateway generates itself instead of
// forwarding the request.
type gatewayError struct {
	typ string
	// status overrides the type's built-in status when non-zero; a Lambda
	// proxy failure is INTEGRATION_FAILURE answered with 502.
	status int
	// message is $context.error.message; nil renders messageString as null,
	// which is what an authorizer configuration error shows.
	message *string
}

func errorOf(typ, message string) gatewayError {
	return gatewayError{typ: typ, message: &message}
}

// writeGatewayResponse renders e the way API Gateway would: the type's own
// customisation, else DEFAULT_4XX/DEFAULT_5XX by class, else the built-in.
func (g *gateway) writeGatewayResponse(w http.ResponseWriter, r *http.Request, rc *requestCtx, e gatewayError) {
	b, ok := builtins[e.typ]
	if !ok {
		b = builtin{http.StatusInternalServerError, "InternalServerErrorException"}
	}
	status := b.status
	if e.status != 0 {
		status = e.status
	}
	custom, customised := g.cfg.GatewayResponses[e.typ]
	if !customised {
		fallback := default4XX
		if status >= 500 {
			fallback = default5XX
		}
		custom, customised = g.cfg.GatewayResponses[fallback]
	}
	body := defaultTemplate
	var headers map[string]string
	if customised {
		if custom.StatusCode != 0 {
			status = custom.StatusCode
		}
		if custom.Body != "" {
			body = custom.Body
		}
		headers = custom.Headers
	}

	h := w.Header()
	h.Set("Content-Type", "application/json")
	for name, value := range headers {
		h.Set(name, headerValue(value, r))
	}
	h.Set("X-Amzn-Requestid", rc.requestID)
	h.Set("X-Amz-Apigw-Id", rc.extendedRequestID)
	h.Set("X-Amzn-Errortype", b.errorType)
	rendered := g.render(body, rc, e)
	h.Set("Content-Length", strconv.Itoa(len(rendered)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(rendered))
	rc.status = status
	rc.errorType = e.typ
}

// headerValue resolves a gateway response header mapping: a quoted static
// value or a method.request.header reference.
func headerValue(v string, r *http.Request) string {
	if name, ok := strings.CutPrefix(v, "method.request.header."); ok {
		return r.Header.Get(name)
	}
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	return v
}

var contextVariable = regexp.MustCompile(`\$\{context\.[A-Za-z0-9_.]+\}|\$context\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*`)

// render substitutes the $context variables a gateway response template may
// use. Unknown variables render empty, as API Gateway renders them.
func (g *gateway) render(template string, rc *requestCtx, e gatewayError) string {
	return contextVariable.ReplaceAllStringFunc(template, func(v string) string {
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(v, "${"), "$"), "}")
		switch name {
		case "context.error.messageString":
			if e.message == nil {
				return "null"
			}
			return jsonString(*e.message)
		case "context.error.message":
			if e.message == nil {
				return ""
			}
			// Escaped but unquoted, so that "\"$context.error.message\"" in
			// a template stays valid JSON whatever the message holds.
			s := jsonString(*e.message)
			return s[1 : len(s)-1]
		case "context.error.responseType":
			return e.typ
		case "context.requestId":
			return rc.requestID
		case "context.extendedRequestId":
			return rc.extendedRequestID
		case "context.stage":
			return g.cfg.Stage
		case "context.apiId":
			return g.opts.APIID
		case "context.accountId":
			return g.opts.AccountID
		case "context.httpMethod":
			return rc.method
		case "context.resourcePath":
			return rc.resourcePath
		case "context.path":
			return "/" + g.cfg.Stage + rc.path
		case "context.identity.sourceIp":
			return rc.sourceIP
		case "context.requestTimeEpoch":
			return strconv.FormatInt(rc.start.UnixMilli(), 10)
		}
		return ""
	})
}

// jsonString quotes s as JSON without json.Marshal's HTML escaping, which
// API Gateway does not do.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
