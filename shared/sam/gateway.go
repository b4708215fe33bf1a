package sam

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/contactlevel/metering/shared/apigateway"
)

// defaultAuthorizerTTL is API Gateway's authorizer result TTL when
// ReauthorizeEvery is not given.
const defaultAuthorizerTTL = 300 * time.Second

// GatewayConfig describes the template's REST API (its only
// AWS::Serverless::Api) for the local API Gateway emulator: the stage, one
// route per Api event of a function, the default Lambda REQUEST authorizer and
// the Gateway Responses. params overrides parameter defaults, e.g.
// {"AuthorizerCacheTtl": "0"}.
//
// FunctionTimeouts come from each function's Timeout (or Globals.Function's).
// Header values of Gateway Responses lose the single quotes SAM requires
// around static values ('application/json' becomes application/json);
// method.request.header.NAME references are kept as they are. A
// GatewayResponse without a StatusCode has StatusCode 0, meaning API Gateway
// keeps the status of the error it answers.
func (t *Template) GatewayConfig(params map[string]string) (apigateway.Config, error) {
	var cfg apigateway.Config
	apis := t.ofType(TypeAPI)
	if len(apis) != 1 {
		return cfg, fmt.Errorf("want exactly one %s, found %d", TypeAPI, len(apis))
	}
	apiID := apis[0]
	api := t.Resources[apiID].Properties
	res := resolver{t: t, params: params}
	fail := func(format string, args ...any) (apigateway.Config, error) {
		return apigateway.Config{}, fmt.Errorf("%s: %s", apiID, fmt.Sprintf(format, args...))
	}

	if v, ok := api["StageName"]; ok {
		s, err := res.str(v)
		if err != nil {
			return fail("StageName: %v", err)
		}
		cfg.Stage = s
	} else {
		return fail("StageName is required")
	}

	auth, _ := api["Auth"].(map[string]any)
	defaultAuth := ""
	if v, ok := auth["DefaultAuthorizer"]; ok {
		s, ok := v.(string)
		if !ok {
			return fail("Auth.DefaultAuthorizer must be a plain name")
		}
		defaultAuth = s
	}
	if auth != nil {
		if _, ok := auth["ApiKeyRequired"]; ok {
			return fail("Auth.ApiKeyRequired (usage-plan API keys) is not supported locally")
		}
	}
	if defaultAuth != "" && defaultAuth != "NONE" && defaultAuth != "AWS_IAM" {
		a, err := t.authorizer(res, auth, defaultAuth)
		if err != nil {
			return fail("authorizer %s: %v", defaultAuth, err)
		}
		cfg.Authorizer = a
	}

	globals, _ := t.Globals["Function"].(map[string]any)
	for _, fn := range t.Functions() {
		routes, err := t.routes(fn, apiID, defaultAuth)
		if err != nil {
			return apigateway.Config{}, err
		}
		cfg.Routes = append(cfg.Routes, routes...)

		timeout, ok := t.Resources[fn].Properties["Timeout"]
		if !ok {
			timeout, ok = globals["Timeout"]
		}
		if !ok {
			continue // Lambda's default is 3s, but leave it to the gateway's own bound
		}
		s, err := res.str(timeout)
		if err != nil {
			return apigateway.Config{}, fmt.Errorf("function %s: Timeout: %w", fn, err)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 900 {
			return apigateway.Config{}, fmt.Errorf("function %s: Timeout %q is not a number of seconds from 1 to 900", fn, s)
		}
		if cfg.FunctionTimeouts == nil {
			cfg.FunctionTimeouts = map[string]time.Duration{}
		}
		cfg.FunctionTimeouts[fn] = time.Duration(n) * time.Second
	}

	if v, ok := api["BinaryMediaTypes"]; ok {
		list, ok := v.([]any)
		if !ok {
			return fail("BinaryMediaTypes must be a list")
		}
		for _, item := range list {
			s, err := res.str(item)
			if err != nil {
				return fail("BinaryMediaTypes: %v", err)
			}
			cfg.BinaryMediaTypes = append(cfg.BinaryMediaTypes, s)
		}
	}

	if gr, ok := api["GatewayResponses"]; ok {
		m, ok := gr.(map[string]any)
		if !ok {
			return fail("GatewayResponses must be a mapping")
		}
		cfg.GatewayResponses = make(map[string]apigateway.GatewayResponse, len(m))
		for typ, spec := range m {
			r, err := gatewayResponse(res, spec)
			if err != nil {
				return fail("GatewayResponses.%s: %v", typ, err)
			}
			cfg.GatewayResponses[typ] = r
		}
	}
	return cfg, nil
}

// authorizer converts Auth.Authorizers[name].
func (t *Template) authorizer(res resolver, auth map[string]any, name string) (*apigateway.Authorizer, error) {
	all, _ := auth["Authorizers"].(map[string]any)
	spec, ok := all[name].(map[string]any)
	if !ok {
		return nil, errors.New("not defined under Auth.Authorizers")
	}
	fn, ok := getAttTarget(spec["FunctionArn"], "Arn")
	if !ok {
		return nil, errors.New("FunctionArn must be !GetAtt <Function>.Arn")
	}
	if r, ok := t.Resources[fn]; !ok || r.Type != TypeFunction {
		return nil, fmt.Errorf("FunctionArn names %s, which is not a function of the template", fn)
	}
	if pt, _ := spec["FunctionPayloadType"].(string); pt != "REQUEST" {
		return nil, fmt.Errorf("FunctionPayloadType %q is not supported locally (only REQUEST)", pt)
	}
	a := &apigateway.Authorizer{Function: fn, CacheTTL: defaultAuthorizerTTL}
	identity, _ := spec["Identity"].(map[string]any)
	if h, ok := identity["Headers"]; ok {
		list, ok := h.([]any)
		if !ok || len(list) != 1 {
			return nil, errors.New("Identity.Headers must list exactly one header")
		}
		if a.IdentityHeader, ok = list[0].(string); !ok {
			return nil, errors.New("Identity.Headers must hold plain header names")
		}
	}
	for _, k := range []string{"QueryStrings", "StageVariables", "Context"} {
		if _, ok := identity[k]; ok {
			return nil, fmt.Errorf("Identity.%s is not supported locally", k)
		}
	}
	if v, ok := identity["ReauthorizeEvery"]; ok {
		s, err := res.str(v)
		if err != nil {
			return nil, fmt.Errorf("Identity.ReauthorizeEvery: %w", err)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3600 {
			return nil, fmt.Errorf("Identity.ReauthorizeEvery: %q is not a number of seconds from 0 to 3600", s)
		}
		a.CacheTTL = time.Duration(n) * time.Second
	}
	return a, nil
}

// routes converts the Api events of function fn. Every Api event must belong
// to the template's one REST API.
func (t *Template) routes(fn, apiID, defaultAuth string) ([]apigateway.Route, error) {
	events, _ := t.Resources[fn].Properties["Events"].(map[string]any)
	names := make([]string, 0, len(events))
	for name := range events {
		names = append(names, name)
	}
	sort.Strings(names)
	var routes []apigateway.Route
	for _, name := range names {
		ev, _ := events[name].(map[string]any)
		if typ, _ := ev["Type"].(string); typ != "Api" {
			continue
		}
		fail := func(format string, args ...any) ([]apigateway.Route, error) {
			return nil, fmt.Errorf("function %s, event %s: %s", fn, name, fmt.Sprintf(format, args...))
		}
		props, _ := ev["Properties"].(map[string]any)
		if target, ok := refTarget(props["RestApiId"]); !ok || target != apiID {
			return fail("RestApiId must be !Ref %s (other APIs are not served locally)", apiID)
		}
		path, ok1 := props["Path"].(string)
		method, ok2 := props["Method"].(string)
		if !ok1 || !ok2 || !strings.HasPrefix(path, "/") {
			return fail("Path and Method must be plain strings, Path starting with /")
		}
		method = strings.ToUpper(method)
		if method == "ANY" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
			method = "ANY"
		}
		r := apigateway.Route{Method: method, Path: path, Function: fn}
		if auth, ok := props["Auth"].(map[string]any); ok {
			if v, ok := auth["Authorizer"]; ok {
				s, _ := v.(string)
				switch {
				case s == "NONE" || s == "AWS_IAM":
					r.Auth = s
				case s != "" && s == defaultAuth:
				default:
					return fail("Auth.Authorizer %v: only the default authorizer, NONE and AWS_IAM are supported locally", v)
				}
			}
			if _, ok := auth["ApiKeyRequired"]; ok {
				return fail("Auth.ApiKeyRequired (usage-plan API keys) is not supported locally")
			}
		}
		if r.Auth == "" && (defaultAuth == "NONE" || defaultAuth == "AWS_IAM") {
			r.Auth = defaultAuth
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// gatewayResponse converts one entry of GatewayResponses.
func gatewayResponse(res resolver, v any) (apigateway.GatewayResponse, error) {
	var out apigateway.GatewayResponse
	spec, ok := v.(map[string]any)
	if !ok {
		return out, errors.New("must be a mapping")
	}
	if sc, ok := spec["StatusCode"]; ok {
		s, err := res.str(sc)
		if err != nil {
			return out, fmt.Errorf("StatusCode: %w", err)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			return out, fmt.Errorf("StatusCode %q is not an HTTP status", s)
		}
		out.StatusCode = n
	}
	if rp, ok := spec["ResponseParameters"]; ok {
		m, _ := rp.(map[string]any)
		for k := range m {
			if k != "Headers" {
				return out, fmt.Errorf("ResponseParameters.%s is not supported locally", k)
			}
		}
		headers, ok := m["Headers"].(map[string]any)
		if !ok && m["Headers"] != nil {
			return out, errors.New("ResponseParameters.Headers must be a mapping")
		}
		if len(headers) > 0 {
			out.Headers = make(map[string]string, len(headers))
		}
		for name, hv := range headers {
			s, err := res.str(hv)
			if err != nil {
				return out, fmt.Errorf("header %s: %w", name, err)
			}
			switch {
			case len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'':
				out.Headers[name] = s[1 : len(s)-1]
			case strings.HasPrefix(s, "method.request.header."):
				out.Headers[name] = s // copies a request header
			default:
				return out, fmt.Errorf("header %s: %q is neither a static value in single quotes (e.g. \"'application/json'\") nor method.request.header.NAME", name, s)
			}
		}
	}
	if rt, ok := spec["ResponseTemplates"]; ok {
		m, ok := rt.(map[string]any)
		if !ok {
			return out, errors.New("ResponseTemplates must be a mapping")
		}
		if body, ok := m["application/json"]; ok {
			s, ok := body.(string)
			if !ok {
				return out, errors.New("ResponseTemplates application/json must be a plain string")
			}
			out.Body = s
		} else if len(m) > 0 {
			return out, errors.New("only an application/json response template is supported locally")
		}
	}
	return out, nil
}
