package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/admin"
	"github.com/contactlevel/metering/shared/apigateway"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/localstack"
	"github.com/contactlevel/metering/shared/testkeys"
)

// stack is the template's API over fresh tables, with an injected gateway
// clock, the admin CLI pointed at the same tables, and every log line any
// of them writes.
type stack struct {
	t      *testing.T
	ddb    *ddbtest.Stack
	url    string
	token  string
	clock  atomic.Int64 // gateway time, unix nanoseconds
	logs   *syncBuffer
	getenv func(string) string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureStdout sends what the functions log (lambdas.Logger writes to
// stdout, as Lambda wants) to w until the test ends.
func captureStdout(t *testing.T, w io.Writer) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = pw
	done := make(chan struct{})
	go func() { _, _ = io.Copy(w, r); close(done) }()
	t.Cleanup(func() {
		os.Stdout = old
		pw.Close()
		<-done
	})
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, ddb: ddbtest.New(t), token: localstack.NewAdminToken(), logs: &syncBuffer{}}
	s.clock.Store(time.Now().UnixNano())
	captureStdout(t, s.logs)
	gw, err := localstack.Gateway(t.Context(), s.ddb.Template, s.ddb.Names,
		map[string]string{"AuthorizerCacheTtl": "60", "LogLevel": "DEBUG"},
		apigateway.Options{
			Clock:   func() time.Time { return time.Unix(0, s.clock.Load()) },
			IAMAuth: localstack.AdminBearer(s.token),
		})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	env := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": os.Getenv(ddbtest.EndpointVar),
		"KEYS_TABLE":                s.ddb.Tables.Keys,
		"ORGS_TABLE":                s.ddb.Tables.Orgs,
		"LOG_LEVEL":                 "DEBUG",
	}
	s.getenv = func(k string) string { return env[k] }
	return s
}

// advance moves the gateway's clock, e.g. past the authorizer cache window.
func (s *stack) advance(d time.Duration) { s.clock.Add(int64(d)) }

// cli runs the admin command and returns its output; failures fail the test.
func (s *stack) cli(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.try(args...)
	if err != nil {
		s.t.Fatalf("admin %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func (s *stack) try(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := run(s.t.Context(), args, &stdout, io.MultiWriter(&stderr, s.logs), s.getenv)
	return stdout.String(), stderr.String(), err
}

func (s *stack) cliJSON(v any, args ...string) {
	s.t.Helper()
	out := s.cli(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("admin %s printed %q: %v", strings.Join(args, " "), out, err)
	}
}

func (s *stack) call(method, path string, header map[string]string, body string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (s *stack) createContact(key string) int {
	s.t.Helper()
	status, body := s.call("POST", "/api/contacts/create", map[string]string{"X-Api-Key": key}, `{"organization_id":"org_acme","first_name":"Ada"}`)
	if status != 200 && status != 401 {
		s.t.Fatalf("contacts/create: %d %s", status, body)
	}
	return status
}

func (s *stack) balance(key string) int64 {
	s.t.Helper()
	status, body := s.call("GET", "/api/credits", map[string]string{"X-Api-Key": key}, "")
	var out struct{ Balance int64 }
	if err := json.Unmarshal([]byte(body), &out); status != 200 || err != nil {
		s.t.Fatalf("credits: %d %s", status, body)
	}
	return out.Balance
}

// TestAcceptanceFlow is the acceptance script: create an
// organization with the CLI, call the API with its key, rotate with a
// minute's grace (both keys work), revoke the old key (401 once the
// authorizer cache window has passed), grant 10 purchased credits twice
// with one reference (the balance rises by 10 once), and read it all back
// in the ledger. No raw key may be stored or logged on the way.
func TestAcceptanceFlow(t *testing.T) {
	s := newStack(t)
	var created admin.Created
	s.cliJSON(&created, "org", "create", "--id", "org_acme", "--name", "Acme Inc", "--plan", "starter")
	k1 := created.Key.RawKey
	if !strings.HasPrefix(k1, "cl_") || created.Org.Balance != 1000 {
		t.Fatalf("created %+v", created)
	}
	if s.createContact(k1) != 200 {
		t.Fatal("the first key does not work")
	}

	var rotated admin.Rotated
	s.cliJSON(&rotated, "key", "rotate", "--org", "org_acme", "--key", created.Key.ID, "--grace", "1m")
	k2 := rotated.New.RawKey
	s.advance(61 * time.Second) // past the cache: both keys go through the authorizer again
	if s.createContact(k1) != 200 || s.createContact(k2) != 200 {
		t.Fatal("during the grace period both keys must work")
	}

	s.cli("key", "revoke", "--org", "org_acme", "--key", created.Key.ID)
	if s.createContact(k1) != 200 {
		t.Fatal("a cached authorization should still answer within the cache window")
	}
	s.advance(61 * time.Second)
	if s.createContact(k1) != 401 {
		t.Fatal("the revoked key still works after the cache window")
	}
	if s.createContact(k2) != 200 {
		t.Fatal("the new key stopped working")
	}

	before := s.balance(k2)
	var g1, g2 admin.Granted
	s.cliJSON(&g1, "credits", "grant", "--org", "org_acme", "--bucket", "purchased", "--amount", "10", "--ref", "pay_123")
	s.cliJSON(&g2, "credits", "grant", "--org", "org_acme", "--bucket", "purchased", "--amount", "10", "--ref", "pay_123")
	if after := s.balance(k2); after != before+10 || g1.Duplicate || !g2.Duplicate || g1.Entry != g2.Entry {
		t.Fatalf("balance %d -> %d; grants %+v, %+v", before, after, g1, g2)
	}
	if out := s.cli("credits", "grant", "--org", "org_acme", "--amount", "10", "--ref", "pay_123"); !strings.Contains(out, "already granted; nothing added") {
		t.Errorf("a duplicate grant's text output: %q", out)
	}

	var page admin.LedgerPage
	s.cliJSON(&page, "ledger", "list", "--org", "org_acme")
	if len(page.Entries) != 2 || page.Entries[0].Reference != "pay_123" || page.Entries[0].Amount != 10 ||
		page.Entries[0].BalanceAfter != before+10 || page.Entries[1].Amount != 1000 {
		t.Fatalf("ledger = %+v", page.Entries)
	}
	text := s.cli("ledger", "list", "--org", "org_acme")
	if !strings.Contains(text, "pay_123") || !strings.Contains(text, "BALANCE AFTER") {
		t.Errorf("ledger text: %q", text)
	}
	var org admin.Org
	s.cliJSON(&org, "org", "show", "--org", "org_acme")
	if org.UsedThisPeriod != 5 || org.Keys != 2 || org.ActiveKeys != 1 || org.Balance != before+10 {
		t.Errorf("org show = %+v", org)
	}
	var keys struct{ Keys []admin.Key }
	s.cliJSON(&keys, "key", "list", "--org", "org_acme")
	if len(keys.Keys) != 2 || keys.Keys[0].Status != "revoked" || keys.Keys[0].RotatedAt == nil || keys.Keys[1].Status != "active" {
		t.Errorf("key list = %+v", keys.Keys)
	}

	// The admin API: the local admin credential opens it, an API key never does.
	bearer := map[string]string{"Authorization": "Bearer " + s.token}
	status, body := s.call("GET", "/admin/orgs/org_acme", bearer, "")
	if status != 200 || !strings.Contains(body, `"organization_id":"org_acme"`) {
		t.Errorf("admin API with the credential: %d %s", status, body)
	}
	status, body = s.call("POST", "/admin/orgs/org_acme/credits/grants", bearer, `{"bucket":"purchased","amount":10,"reference":"pay_123"}`)
	if status != 200 || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("duplicate grant through the API: %d %s", status, body)
	}
	var issued admin.IssuedKey
	status, body = s.call("POST", "/admin/orgs/org_acme/keys", bearer, `{"name":"dashboard","expires_in":"720h"}`)
	if err := json.Unmarshal([]byte(body), &issued); status != 201 || err != nil || issued.RawKey == "" {
		t.Fatalf("issue through the API: %d %s", status, body)
	}
	for name, h := range map[string]map[string]string{
		"api key":         {"X-Api-Key": k2},
		"wrong bearer":    {"Authorization": "Bearer " + localstack.NewAdminToken()},
		"no credential":   {},
		"key as bearer":   {"Authorization": "Bearer " + k2},
		"api key, bearer": {"X-Api-Key": k2, "Authorization": "Bearer nope"},
	} {
		if status, body := s.call("GET", "/admin/orgs", h, ""); status == 200 {
			t.Errorf("%s opened the admin API: %s", name, body)
		}
	}

	// No raw key in any table or any log line.
	raw := []string{k1, k2, issued.RawKey}
	for _, k := range raw {
		testkeys.Record(t, k) // for make test's scan of all output
	}
	for _, table := range s.ddb.Names {
		out, err := s.ddb.Client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		dump, _ := json.Marshal(out.Items)
		for _, k := range raw {
			if bytes.Contains(dump, []byte(k)) {
				t.Errorf("table %s stores a raw key", table)
			}
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"principal":"`+localstack.LocalAdminPrincipal+`"`) {
		t.Errorf("the admin API did not log its caller")
	}
	if !strings.Contains(logs, "key rotated") || !strings.Contains(logs, "credits granted") {
		t.Fatalf("the logs were not captured: %q", logs)
	}
	for _, k := range raw {
		if strings.Contains(logs, k) {
			t.Errorf("a raw key was logged")
		}
	}
}

func TestUsageAndErrors(t *testing.T) {
	s := newStack(t)
	out, _, err := s.try("--help")
	if err != nil || !strings.Contains(out, "org create") || !strings.Contains(out, "ledger list") {
		t.Errorf("--help: %v %q", err, out)
	}
	for _, c := range commands {
		out, _, err := s.try(c.group, c.name, "--help")
		if err != nil || !strings.Contains(out, "Usage: admin "+c.group+" "+c.name) || !strings.Contains(out, "-json") {
			t.Errorf("%s %s --help: %v %q", c.group, c.name, err, out)
		}
	}
	for _, args := range [][]string{{}, {"nope"}, {"org"}, {"org", "nope"}, {"org", "show", "--nope"}, {"org", "show", "org_x"}} {
		if _, _, err := s.try(args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	for args, want := range map[string]string{
		"org show --org org_nope":                                  "not found",
		"org show":                                                 "--org is required",
		"org create --name x --plan gold":                          "unknown plan",
		"credits grant --org org_nope --amount 5":                  "not found",
		"key rotate --org org_nope --key key_x --grace 25h":        "grace",
		"credits grant --org org_x --amount 5 --expires yesterday": "RFC 3339",
	} {
		if _, _, err := s.try(strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
			if !errors.Is(err, errUsage) || want != "RFC 3339" {
				t.Errorf("%s: err = %v, want %q", args, err, want)
			}
		}
	}
	if out := s.cli("plan", "list"); !strings.Contains(out, "starter") {
		t.Errorf("plan list: %q", out)
	}
	if out := s.cli("org", "list"); !strings.Contains(out, "ID") {
		t.Errorf("org list: %q", out)
	}
}
