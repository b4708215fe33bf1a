package lambdas_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/rollover"
	"github.com/contactlevel/metering/shared/testkeys"
)

// sampleEvents names the file in events/ that `sam local invoke` uses for
// each function. Feeding them to the real handlers keeps them from rotting.
var sampleEvents = map[string]string{
	"AuthorizerFunction": "authorizer.json",
	"CreditsFunction":    "credits.json",
	"ContactsFunction":   "contacts-create.json",
	"AudiencesFunction":  "audiences-create.json",
	"AdminFunction":      "admin-org-show.json",
	"RolloverFunction":   "rollover.json",
}

func TestEveryTemplateFunctionIsRegisteredWithASampleEvent(t *testing.T) {
	tmpl := ddbtest.Template(t)
	for _, fn := range tmpl.Functions() {
		if _, ok := lambdas.Registry[fn]; !ok {
			t.Errorf("%s is in template.yaml but not in lambdas.Registry", fn)
		}
		if _, ok := sampleEvents[fn]; !ok {
			t.Errorf("%s has no sample event", fn)
		}
	}
	if len(tmpl.Functions()) != len(lambdas.Registry) {
		t.Errorf("template has %d functions, registry %d", len(tmpl.Functions()), len(lambdas.Registry))
	}
}

func TestSampleEvents(t *testing.T) {
	s := ddbtest.New(t)
	ctx := context.Background()
	c := &dynamo.Credits{Client: s.Client, Table: s.Tables.Orgs}
	if err := c.Open(ctx, "org_demo", "Demo", credits.Plan{}, credits.Balance{Subscription: 10}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for fn, file := range sampleEvents {
		t.Run(fn, func(t *testing.T) {
			path, err := ddbtest.RepoFile("events/" + file)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			env := s.Template.FunctionEnv(fn, s.Names, nil)
			h, err := lambdas.Registry[fn](ctx, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if fn == "AuthorizerFunction" {
				var req events.APIGatewayCustomAuthorizerRequestTypeRequest
				if err := json.Unmarshal(payload, &req); err != nil {
					t.Fatal(err)
				}
				raw, _ := apikey.Parse(req.Headers["X-Api-Key"])
				testkeys.Record(t, string(raw))
				_, rec, _ := apikey.Issue("org_demo", "sample", time.Now(), time.Time{})
				rec.Hash = raw.Hash()
				if err := (dynamo.Keys{Client: s.Client, Table: s.Tables.Keys}).Put(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			out, err := h.Invoke(ctx, payload)
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			if fn == "AuthorizerFunction" {
				var res events.APIGatewayCustomAuthorizerResponse
				if err := json.Unmarshal(out, &res); err != nil || res.PolicyDocument.Statement[0].Effect != "Allow" || res.Context["org_id"] != "org_demo" {
					t.Fatalf("authorizer answered %s (%v)", out, err)
				}
				return
			}
			if fn == "RolloverFunction" {
				var rep rollover.Report
				if err := json.Unmarshal(out, &rep); err != nil || !rep.Done || rep.Period != "2026-12" {
					t.Fatalf("rollover answered %s (%v)", out, err)
				}
				return
			}
			var res events.APIGatewayProxyResponse
			if err := json.Unmarshal(out, &res); err != nil || res.StatusCode != 200 {
				t.Fatalf("answered %s (%v)", out, err)
			}
		})
	}
}

func TestRunRefusesAMissingTable(t *testing.T) {
	err := lambdas.Run(context.Background(), "AuthorizerFunction", func(string) string { return "" }, func(any) { t.Fatal("started") })
	if err == nil {
		t.Fatal("started without KEYS_TABLE")
	}
	if err := lambdas.Run(context.Background(), "NoSuchFunction", os.Getenv, func(any) {}); err == nil {
		t.Fatal("ran an unknown function")
	}
}
