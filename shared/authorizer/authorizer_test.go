package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/testkeys"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/api/contacts/create"

type fakeKeys struct {
	recs  map[string]apikey.Record
	err   error
	calls int
}

func (f *fakeKeys) Lookup(_ context.Context, hash string) (apikey.Record, error) {
	f.calls++
	if f.err != nil {
		return apikey.Record{}, f.err
	}
	r, ok := f.recs[hash]
	if !ok {
		return apikey.Record{}, apikey.ErrNotFound
	}
	return r, nil
}

func setup(t testing.TB, mutate func(*apikey.Record)) (*Authorizer, *fakeKeys, apikey.Key) {
	t.Helper()
	k, rec, err := apikey.Issue("org_a", "test", now.Add(-time.Hour), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	testkeys.Record(t, string(k))
	if mutate != nil {
		mutate(&rec)
	}
	f := &fakeKeys{recs: map[string]apikey.Record{rec.Hash: rec}}
	// The authorizer's logs go to the test's output, which `make test`
	// scans for keys.
	return New(f, func() time.Time { return now }, slog.New(slog.NewJSONHandler(t.Output(), nil))), f, k
}

func request(headers map[string]string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{Type: "REQUEST", MethodArn: arn, Headers: headers}
}

func TestAllowsAValidKeyForTheWholeStage(t *testing.T) {
	a, _, k := setup(t, nil)
	res, err := a.Handle(context.Background(), request(map[string]string{"X-Api-Key": string(k)}))
	if err != nil {
		t.Fatal(err)
	}
	st := res.PolicyDocument.Statement
	if len(st) != 1 || st[0].Effect != "Allow" || st[0].Resource[0] != "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*" {
		t.Fatalf("policy %+v", res.PolicyDocument)
	}
	if res.Context[ContextOrgID] != "org_a" || res.Context[ContextKeyID] == "" || res.PrincipalID != res.Context[ContextKeyID] {
		t.Fatalf("context %+v principal %q", res.Context, res.PrincipalID)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*apikey.Record)
		header  func(k apikey.Key) map[string]string
		lookups int
	}{
		{"missing", nil, func(apikey.Key) map[string]string { return nil }, 0},
		{"empty", nil, func(apikey.Key) map[string]string { return map[string]string{"X-Api-Key": ""} }, 0},
		{"malformed", nil, func(apikey.Key) map[string]string { return map[string]string{"X-Api-Key": "hello"} }, 0},
		{"bad checksum", nil, func(k apikey.Key) map[string]string {
			return map[string]string{"X-Api-Key": string(k[:apikey.Len-1]) + "x"}
		}, 0},
		{"unknown", nil, func(apikey.Key) map[string]string {
			other, _ := apikey.New(nil)
			return map[string]string{"X-Api-Key": string(other)}
		}, 1},
		{"expired now", func(r *apikey.Record) { r.Expires = now }, func(k apikey.Key) map[string]string {
			return map[string]string{"X-Api-Key": string(k)}
		}, 1},
		{"revoked", func(r *apikey.Record) { r.Revoked = now.Add(-time.Minute) }, func(k apikey.Key) map[string]string {
			return map[string]string{"X-Api-Key": string(k)}
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, f, k := setup(t, c.mutate)
			_, err := a.Handle(context.Background(), request(c.header(k)))
			if err == nil || err.Error() != "Unauthorized" {
				t.Fatalf("got %v, want Unauthorized", err)
			}
			if f.calls != c.lookups {
				t.Fatalf("%d lookups, want %d", f.calls, c.lookups)
			}
		})
	}
}

func TestExpiryInTheFutureIsAllowed(t *testing.T) {
	a, _, k := setup(t, func(r *apikey.Record) { r.Expires = now.Add(time.Second) })
	if _, err := a.Handle(context.Background(), request(map[string]string{"x-api-key": string(k)})); err != nil {
		t.Fatal(err)
	}
}

func TestStorageFailureIsNotUnauthorized(t *testing.T) {
	a, f, k := setup(t, nil)
	f.err = errors.New("throttled")
	_, err := a.Handle(context.Background(), request(map[string]string{"X-Api-Key": string(k)}))
	if err == nil || err.Error() == "Unauthorized" {
		t.Fatalf("got %v; a storage failure must not claim the key is bad", err)
	}
}

func TestKeyFromHeaders(t *testing.T) {
	cases := []struct {
		name   string
		single map[string]string
		multi  map[string][]string
		want   string
		ok     bool
	}{
		{"canonical", map[string]string{"X-Api-Key": "k"}, nil, "k", true},
		{"lower case", map[string]string{"x-api-key": "k"}, nil, "k", true},
		{"surrounding whitespace", map[string]string{"X-Api-Key": " \tk "}, nil, "k", true},
		{"repeated same", nil, map[string][]string{"X-Api-Key": {"k", "k"}}, "k", true},
		{"repeated different", nil, map[string][]string{"X-Api-Key": {"k", "j"}}, "", false},
		{"repeated across case", nil, map[string][]string{"X-Api-Key": {"k"}, "x-api-key": {"j"}}, "", false},
		{"empty", map[string]string{"X-Api-Key": "  "}, nil, "", false},
		{"newline", map[string]string{"X-Api-Key": "k\nk"}, nil, "", false},
		{"absent", map[string]string{"Other": "k"}, nil, "", false},
	}
	for _, c := range cases {
		got, ok := KeyFromHeaders(c.single, c.multi)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestStageArn(t *testing.T) {
	for in, want := range map[string]string{
		arn: "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*/*",
		"arn:aws:execute-api:us-east-1:1:api/stage/GET/": "arn:aws:execute-api:us-east-1:1:api/stage/*/*",
	} {
		if got := StageArn(in); got != want {
			t.Errorf("%s: got %s", in, got)
		}
	}
}

// FuzzHandle feeds the authorizer arbitrary X-Api-Key headers: whatever the
// name's case, the values and their number, it never panics, allows only a
// stored, usable key, refuses everything else with exactly "Unauthorized",
// and looks up only values shaped like a key.
func FuzzHandle(f *testing.F) {
	a, keys, k := setup(f, nil)
	f.Add("X-Api-Key", string(k), "")
	f.Add("x-api-key", " "+string(k)+"\t", "")
	f.Add("X-API-KEY", string(k), string(k))
	f.Add("X-Api-Key", string(k), "cl_other")
	f.Add("X-Api-Key", "", "")
	f.Add("X-Api-Key", string(k)+"\n", "")
	f.Add("Authorization", string(k), "")
	f.Add("X-Api-Key", "cl_"+string(k[3:len(k)-1])+"x", "")
	f.Fuzz(func(t *testing.T, name, v1, v2 string) {
		req := request(map[string]string{name: v1})
		if v2 != "" {
			req.MultiValueHeaders = map[string][]string{name: {v1, v2}}
		}
		before := keys.calls
		res, err := a.Handle(context.Background(), req)
		raw, ok := KeyFromHeaders(req.Headers, req.MultiValueHeaders)
		_, perr := apikey.Parse(raw)
		switch {
		case err == nil:
			if !ok || raw != string(k) || res.Context[ContextOrgID] != "org_a" {
				t.Fatalf("allowed %q (from %q %q)", raw, v1, v2)
			}
		case err != ErrUnauthorized:
			t.Fatalf("error %v, want Unauthorized", err)
		case (!ok || perr != nil) && keys.calls != before:
			t.Fatalf("looked up %q, which cannot be a key", raw)
		}
	})
}

func TestContextCarriesTheKeysExpiry(t *testing.T) {
	expires := now.Add(90 * time.Second)
	a, _, k := setup(t, func(r *apikey.Record) { r.Expires = expires })
	payload, _ := json.Marshal(request(map[string]string{"X-Api-Key": string(k)}))
	out, err := a.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var res events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if got := res.Context[ContextKeyExpires]; got != strconv.FormatInt(expires.Unix(), 10) {
		t.Fatalf("key_expires %v", got)
	}
	never, _, k2 := setup(t, nil)
	res2, err := never.Handle(context.Background(), request(map[string]string{"X-Api-Key": string(k2)}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res2.Context[ContextKeyExpires]; ok {
		t.Fatal("a key that never expires has an expiry in the context")
	}
}
