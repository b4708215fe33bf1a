package authorizer

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contactlevel/metering/shared/apikey"
)

// Invoke makes the authorizer a lambda.Handler. It does what
// lambda.NewHandler(a.Handle) does, but decodes only the fields the
// authorizer reads: the full event type holds every header, query
// parameter and request detail in maps, and decoding them was most of the
// authorizer's own time and allocations per request.
func (a *Authorizer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var req invokeEvent
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	values := []string(req.MultiValueHeaders.Key)
	if len(values) == 0 {
		values = req.Headers.Key
	}
	raw, ok := keyFrom(values)
	rec, err := a.decide(ctx, raw, ok, req.RequestContext.RequestID)
	if err != nil {
		return nil, err
	}
	return json.Marshal(allowResponse{
		PrincipalID:    rec.ID,
		PolicyDocument: stagePolicy(req.MethodArn),
		Context:        allowContextOf(rec),
	})
}

// allowResponse is Allow's response with its context as a struct: the same
// JSON document, without making and encoding a map.
type allowResponse struct {
	PrincipalID    string                                  `json:"principalId"`
	PolicyDocument events.APIGatewayCustomAuthorizerPolicy `json:"policyDocument"`
	Context        allowContext                            `json:"context"`
}

// allowContext is Allow's context: ContextOrgID, ContextKeyID and, for a
// key that expires, ContextKeyExpires.
type allowContext struct {
	OrgID      string `json:"org_id"`
	KeyID      string `json:"key_id"`
	KeyExpires string `json:"key_expires,omitempty"`
}

func allowContextOf(rec apikey.Record) allowContext {
	c := allowContext{OrgID: rec.OrgID, KeyID: rec.ID}
	if !rec.Expires.IsZero() {
		c.KeyExpires = strconv.FormatInt(rec.Expires.Unix(), 10)
	}
	return c
}

func (c allowContext) asMap() map[string]any {
	m := map[string]any{ContextOrgID: c.OrgID, ContextKeyID: c.KeyID}
	if c.KeyExpires != "" {
		m[ContextKeyExpires] = c.KeyExpires
	}
	return m
}

// invokeEvent is the part of a REQUEST authorizer event the authorizer reads.
// The key header is a struct field, which encoding/json matches to object
// keys case-insensitively (as bytes.EqualFold, the rule KeyFromHeaders
// applies), and every other header is skipped without being stored.
type invokeEvent struct {
	MethodArn string `json:"methodArn"`
	Headers   struct {
		Key singleValues `json:"X-Api-Key"`
	} `json:"headers"`
	MultiValueHeaders struct {
		Key multiValues `json:"X-Api-Key"`
	} `json:"multiValueHeaders"`
	RequestContext struct {
		RequestID string `json:"requestId"`
	} `json:"requestContext"`
}

// singleValues collects the key header's value from every spelling of its
// name in headers: encoding/json calls UnmarshalJSON once per matching
// object key, so a name repeated in another case adds a value rather than
// replacing one, and keyFrom can refuse the ambiguity as KeyFromHeaders does.
type singleValues []string

// UnmarshalJSON appends one value; null counts as an empty value, as it
// does when decoded into a map[string]string.
func (v *singleValues) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*v = append(*v, "")
		return nil
	}
	if s, ok := plainString(b); ok {
		*v = append(*v, s)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*v = append(*v, s)
	return nil
}

// multiValues is singleValues for multiValueHeaders, whose values are lists.
type multiValues []string

// UnmarshalJSON appends the list's values; null adds none.
func (v *multiValues) UnmarshalJSON(b []byte) error {
	// The usual case, one value, without a second decoder.
	if len(b) > 2 && b[0] == '[' && b[len(b)-1] == ']' {
		if s, ok := plainString(b[1 : len(b)-1]); ok {
			*v = append(*v, s)
			return nil
		}
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*v = append(*v, list...)
	return nil
}

// plainString decodes a JSON string without escapes, the shape of every
// key; anything else (escapes, more than one string) is left to encoding/json.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	body := b[1 : len(b)-1]
	for _, c := range body {
		if c == '"' || c == '\\' || c < 0x20 {
			return "", false
		}
	}
	return string(body), true
}
