package localstack_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
)

// raw sends request bytes as they are, so that header spellings the Go
// client would normalise reach the gateway, and returns status and body.
func (e *env) raw(request string) (int, string) {
	e.t.Helper()
	u, _ := url.Parse(e.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		e.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestKeyHeaderEdgeCases pins what the gateway and the authorizer make of
// unusual X-Api-Key headers, end to end; the README states the same rules.
func TestKeyHeaderEdgeCases(t *testing.T) {
	e := start(t, map[string]string{"AuthorizerCacheTtl": "0"})
	e.org("org_h", credits.Balance{Subscription: 5})
	key := e.key("org_h", nil)
	get := func(headers string) string {
		return "GET /api/credits HTTP/1.1\r\nHost: api\r\nConnection: close\r\n" + headers + "\r\n"
	}
	cases := []struct {
		name    string
		request string
		want    int
	}{
		{"canonical", get("X-Api-Key: " + key + "\r\n"), 200},
		{"lower-case name", get("x-api-key: " + key + "\r\n"), 200},
		{"upper-case name", get("X-API-KEY: " + key + "\r\n"), 200},
		{"surrounding whitespace", get("X-Api-Key: \t " + key + " \t\r\n"), 200},
		{"repeated, same value", get("X-Api-Key: " + key + "\r\nX-Api-Key: " + key + "\r\n"), 200},
		{"repeated, another value", get("X-Api-Key: " + key + "\r\nX-Api-Key: cl_other\r\n"), 401},
		{"repeated, valid key last", get("X-Api-Key: cl_other\r\nx-api-key: " + key + "\r\n"), 401},
		{"empty value", get("X-Api-Key: \r\n"), 401},
		{"only whitespace", get("X-Api-Key:  \t \r\n"), 401},
		{"absent", get(""), 401},
		{"in another header", get("Authorization: Bearer " + key + "\r\n"), 401},
		// A newline cannot be inside a header value on the wire: a bare LF
		// ends the line, and what follows is a malformed header line.
		{"newline in the value", get("X-Api-Key: " + key[:20] + "\n" + key[20:] + "\r\n"), 400},
		// An obsolete line folding (RFC 9112 5.2) is joined with a space,
		// which no key contains.
		{"folded value", get("X-Api-Key: " + key[:20] + "\r\n " + key[20:] + "\r\n"), 401},
		// Control characters are refused by the HTTP server before the
		// gateway; the authorizer refuses them too (KeyFromHeaders).
		{"key with a trailing control character", get("X-Api-Key: " + key + "\x7f\r\n"), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.raw(c.request)
			if status != c.want {
				t.Fatalf("status %d, want %d: %s", status, c.want, body)
			}
			switch c.want {
			case 200:
				if !strings.Contains(body, `"organization_id":"org_h"`) {
					t.Fatalf("body %s", body)
				}
			case 401:
				if body != unauthorized {
					t.Fatalf("body %q", body)
				}
			}
		})
	}
}

// TestOrganizationsAreIsolated: organization A's key cannot read or write B's
// data or balance, whatever it puts in the body, the query or the path.
func TestOrganizationsAreIsolated(t *testing.T) {
	e := start(t, nil)
	e.org("org_a", credits.Balance{Subscription: 10})
	e.org("org_b", credits.Balance{Subscription: 10})
	a, b := e.key("org_a", nil), e.key("org_b", nil)

	for name, c := range map[string]struct{ method, path, body string }{
		"body names B":               {"POST", "/api/contacts/create", `{"organization_id":"org_b","first_name":"x"}`},
		"body names B, audience":     {"POST", "/api/audiences/create", `{"organization_id":"org_b","name":"x"}`},
		"body names B twice":         {"POST", "/api/contacts/create", `{"organization_id":"org_a","organization_id":"org_b"}`},
		"body names B in other case": {"POST", "/api/contacts/create", `{"organization_id":"org_a","ORGANIZATION_ID":"org_b"}`},
	} {
		status, body := e.do(c.method, c.path, a, c.body)
		if status != 403 || !strings.Contains(body, "does not match") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	// Query and path parameters naming B are ignored or unknown.
	for _, p := range []string{
		"/api/contacts/create?organization_id=org_b&org_id=org_b",
		"/api/contacts/create?required_credits=1&org=org_b",
	} {
		if status, body := e.do("POST", p, a, `{"organization_id":"org_a","first_name":"q"}`); status != 200 || !strings.Contains(body, `"organization_id":"org_a"`) {
			t.Errorf("%s: %d %s", p, status, body)
		}
	}
	for _, p := range []string{"/api/credits?organization_id=org_b", "/api/credits?org_id=org_b"} {
		if status, body := e.do("GET", p, a, ""); status != 200 || !strings.Contains(body, `"organization_id":"org_a"`) || !strings.Contains(body, `"balance":8`) {
			t.Errorf("%s: %d %s", p, status, body)
		}
	}
	for _, p := range []string{"/api/credits/org_b", "/api/orgs/org_b/credits", "/api/contacts/create/org_b"} {
		if status, _ := e.do("GET", p, a, ""); status != 404 {
			t.Errorf("%s: %d", p, status)
		}
	}
	// An Idempotency-Key is the organization's own: B's first use of A's key
	// is B's own request, charged to B, never a replay of A's response.
	req := func(key, org string) (int, string, string) {
		r, _ := http.NewRequest("POST", e.url+"/api/contacts/create", strings.NewReader(`{"organization_id":"`+org+`","first_name":"i"}`))
		r.Header.Set("X-Api-Key", key)
		r.Header.Set("Idempotency-Key", "shared-key")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Idempotent-Replayed"), string(body)
	}
	if status, replayed, body := req(a, "org_a"); status != 200 || replayed != "" {
		t.Fatalf("A: %d %q %s", status, replayed, body)
	}
	if status, replayed, body := req(b, "org_b"); status != 200 || replayed != "" || strings.Contains(body, "org_a") {
		t.Fatalf("B with A's idempotency key: %d %q %s", status, replayed, body)
	}
	if status, _, _ := req(a, "org_b"); status != 422 && status != 403 {
		t.Fatalf("A replaying with B's body: %d", status)
	}

	if got := e.balance(a); got != 7 {
		t.Errorf("A's balance %d, want 7", got)
	}
	if got := e.balance(b); got != 9 {
		t.Errorf("B's balance %d, want 9 (only its own request)", got)
	}
	out, err := e.stack.Client.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(e.stack.Tables.Contacts),
		KeyConditionExpression:    aws.String("org_id = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "org_b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 1 {
		t.Errorf("org_b holds %d contacts, want only its own 1", out.Count)
	}
}

// The acceptance test end to end: 100 concurrent requests with one
// Idempotency-Key, through the gateway, authorizer and Lambda environments,
// on an organization with 5 credits.
func TestConcurrentIdempotentRequestsThroughTheGateway(t *testing.T) {
	e := start(t, nil)
	e.org("org_i", credits.Balance{Subscription: 5})
	key := e.key("org_i", nil)
	var fresh, replayed, conflict, other atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := http.NewRequest("POST", e.url+"/api/contacts/create", strings.NewReader(`{"organization_id":"org_i","first_name":"Once"}`))
			r.Header.Set("X-Api-Key", key)
			r.Header.Set("Idempotency-Key", "create-once")
			res, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode == 200 && res.Header.Get("Idempotent-Replayed") == "":
				fresh.Add(1)
			case res.StatusCode == 200:
				replayed.Add(1)
			case res.StatusCode == 409:
				conflict.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("gateway, 100 concurrent requests with one Idempotency-Key: %d charged, %d replayed, %d 409, %d other",
		fresh.Load(), replayed.Load(), conflict.Load(), other.Load())
	if fresh.Load() != 1 || replayed.Load()+conflict.Load() != 99 {
		t.Fatalf("want exactly one charge and 99 replays or 409s")
	}
	if got := e.balance(key); got != 4 {
		t.Fatalf("balance %d, want 4", got)
	}
}
