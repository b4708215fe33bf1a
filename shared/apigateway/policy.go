package apigateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// authorizerOutput is what API Gateway reads from a REQUEST authorizer. It
// is parsed by hand rather than into events.APIGatewayCustomAuthorizerResponse
// because IAM accepts a string where a list is expected and a lone statement
// where a list of statements is expected, and an authorizer written in
// another language may use either form.
type authorizerOutput struct {
	principalID string
	statements  []statement
	context     map[string]any // values are strings, as the endpoint sees them
}

type statement struct {
	effect    string
	actions   []string
	resources []string
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var l []string
		err := json.Unmarshal(b, &l)
		*s = l
		return err
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = []string{one}
	return nil
}

type rawStatement struct {
	Effect   string       `json:"Effect"`
	Action   stringOrList `json:"Action"`
	Resource stringOrList `json:"Resource"`
}

type statementList []rawStatement

func (s *statementList) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var l []rawStatement
		err := json.Unmarshal(b, &l)
		*s = l
		return err
	}
	var one rawStatement
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = statementList{one}
	return nil
}

// parseAuthorizerOutput rejects what API Gateway rejects with an
// AuthorizerConfigurationException: no principalId, no policy, an effect
// other than Allow or Deny, and context values that are objects or arrays.
func parseAuthorizerOutput(payload []byte) (authorizerOutput, error) {
	var raw struct {
		PrincipalID    *string `json:"principalId"`
		PolicyDocument *struct {
			Statement statementList `json:"Statement"`
		} `json:"policyDocument"`
		Context map[string]json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return authorizerOutput{}, fmt.Errorf("authorizer output: %w", err)
	}
	if raw.PrincipalID == nil || *raw.PrincipalID == "" {
		return authorizerOutput{}, errors.New("authorizer output: no principalId")
	}
	if raw.PolicyDocument == nil {
		return authorizerOutput{}, errors.New("authorizer output: no policyDocument")
	}
	out := authorizerOutput{principalID: *raw.PrincipalID}
	for _, s := range raw.PolicyDocument.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return authorizerOutput{}, fmt.Errorf("authorizer output: statement effect %q", s.Effect)
		}
		out.statements = append(out.statements, statement{s.Effect, s.Action, s.Resource})
	}
	if len(raw.Context) > 0 {
		out.context = make(map[string]any, len(raw.Context))
	}
	for k, v := range raw.Context {
		value, keep, err := contextValue(v)
		if err != nil {
			return authorizerOutput{}, fmt.Errorf("authorizer output: context %q: %w", k, err)
		}
		if keep {
			out.context[k] = value
		}
	}
	return out, nil
}

// contextValue stringifies a context value as API Gateway does before it
// hands the context to a REST API's integration: 1 becomes "1" and true
// becomes "true". A null is dropped rather than failing the request.
func contextValue(v json.RawMessage) (string, bool, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
		return "", false, nil
	case v[0] == '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err == nil, err
	case v[0] == '{' || v[0] == '[':
		return "", false, errors.New("objects and arrays are not allowed")
	default: // number or boolean, already in its textual form
		return string(v), true, nil
	}
}

type decision int

const (
	implicitDeny decision = iota
	allow
	explicitDeny
)

// evaluate applies IAM's rule: an explicit Deny wins, otherwise a matching
// Allow is needed.
func (o authorizerOutput) evaluate(methodARN string) decision {
	d := implicitDeny
	for _, s := range o.statements {
		if !s.covers(methodARN) {
			continue
		}
		if s.effect == "Deny" {
			return explicitDeny
		}
		d = allow
	}
	return d
}

func (s statement) covers(methodARN string) bool {
	actionOK := false
	for _, a := range s.actions {
		// Action names are case-insensitive in IAM.
		if wildcardMatch(strings.ToLower(a), "execute-api:invoke") {
			actionOK = true
			break
		}
	}
	if !actionOK {
		return false
	}
	for _, r := range s.resources {
		if wildcardMatch(r, methodARN) {
			return true
		}
	}
	return false
}

// wildcardMatch is IAM's ARN matching: '*' matches any run of characters,
// '/' and ':' included, and '?' matches exactly one character.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
