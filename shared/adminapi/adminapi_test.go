package adminapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/adminapi"
	"github.com/contactlevel/metering/shared/ddbtest"
)

func TestRoutes(t *testing.T) {
	s := ddbtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(adminapi.New(admin.New(s.Client, s.Tables, log), log))
	t.Cleanup(srv.Close)
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", method, path, res.Header.Get("Cache-Control"))
		}
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	steps := []struct {
		method, path, body string
		status             int
		check              func(map[string]any) bool
	}{
		{"POST", "/admin/orgs", `{"organization_id":"org_a","name":"A","plan":"growth"}`, 201, func(m map[string]any) bool {
			return m["key"].(map[string]any)["key"] != nil
		}},
		{"POST", "/admin/orgs", `{"organization_id":"org_a","name":"A","plan":"growth"}`, 409, nil},
		{"POST", "/admin/orgs", `{"name":"A","plan":"gold"}`, 422, nil},
		{"POST", "/admin/orgs", `{"name":"A","plan":"free","extra":1}`, 400, nil},
		{"GET", "/admin/orgs", "", 200, func(m map[string]any) bool { return len(m["organizations"].([]any)) == 1 }},
		{"GET", "/admin/orgs/org_a", "", 200, func(m map[string]any) bool { return m["balance"].(float64) == 10000 }},
		{"GET", "/admin/orgs/org_b", "", 404, nil},
		{"POST", "/admin/orgs/org_a/keys", `{"name":"ci","expires_in":"1h"}`, 201, func(m map[string]any) bool { return m["expires_at"] != nil }},
		{"POST", "/admin/orgs/org_a/keys", `{"expires_in":"soon"}`, 422, nil},
		{"GET", "/admin/orgs/org_a/keys", "", 200, func(m map[string]any) bool { return len(m["keys"].([]any)) == 2 }},
		{"POST", "/admin/orgs/org_a/keys/key_nope/revoke", "", 404, nil},
		{"POST", "/admin/orgs/org_a/keys/key_nope/rotate", `{"grace_seconds":90000}`, 422, nil},
		{"POST", "/admin/orgs/org_a/credits/grants", `{"bucket":"bonus","amount":5,"reference":"r1","expires_at":"2099-01-01T00:00:00Z"}`, 201, nil},
		{"POST", "/admin/orgs/org_a/credits/grants", `{"bucket":"bonus","amount":5,"reference":"r1","expires_at":"2099-01-01T00:00:00Z"}`, 200, func(m map[string]any) bool { return m["duplicate"] == true }},
		{"POST", "/admin/orgs/org_a/credits/grants", `{"bucket":"bonus","amount":0}`, 422, nil},
		{"POST", "/admin/orgs/org_a/credits/adjustments", `{"bucket":"purchased","amount":-1,"reason":"x"}`, 409, nil},
		{"POST", "/admin/orgs/org_a/credits/adjustments", `{"bucket":"subscription","amount":-1,"reason":"x"}`, 201, func(m map[string]any) bool { return m["balance_after"].(float64) == 10004 }},
		{"GET", "/admin/orgs/org_a/ledger?limit=2", "", 200, func(m map[string]any) bool {
			return len(m["entries"].([]any)) == 2 && m["next_cursor"] != nil
		}},
		{"GET", "/admin/orgs/org_a/ledger?limit=x", "", 422, nil},
		{"GET", "/admin/nope", "", 404, nil},
	}
	var keyID string
	for _, st := range steps {
		status, out := call(st.method, st.path, st.body)
		if status != st.status || (st.check != nil && !st.check(out)) {
			t.Errorf("%s %s %s: %d %v", st.method, st.path, st.body, status, out)
		}
		if k, ok := out["key_id"].(string); ok && st.path == "/admin/orgs/org_a/keys" {
			keyID = k
		}
	}
	status, out := call("POST", "/admin/orgs/org_a/keys/"+keyID+"/rotate", `{"grace_seconds":60}`)
	if status != 201 || out["new_key"].(map[string]any)["key"] == nil {
		t.Errorf("rotate: %d %v", status, out)
	}
	if status, out := call("POST", "/admin/orgs/org_a/keys/"+keyID+"/revoke", ""); status != 200 || out["status"] != "revoked" {
		t.Errorf("revoke: %d %v", status, out)
	}
	if status, _ := call("POST", "/admin/orgs/org_a/keys/"+keyID+"/revoke", ""); status != 409 {
		t.Errorf("second revoke: %d", status)
	}
}
