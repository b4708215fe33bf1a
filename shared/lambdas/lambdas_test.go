package lambdas_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/contactlevel/metering/shared/apikey"
	"github.com/contactlevel/metering/shared/credits"
	"github.com/contactlevel/metering/shared/ddbtest"
	"github.com/contactlevel/metering/shared/dynamo"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/localstack"
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
		if _, ok := localstack.Functions[fn]; !ok {
			t.Errorf("%s is in template.yaml but not in localstack.Functions", fn)
		}
		if _, ok := sampleEvents[fn]; !ok {
			t.Errorf("%s has no sample event", fn)
		}
	}
	if len(tmpl.Functions()) != len(localstack.Functions) {
		t.Errorf("template has %d functions, localstack.Functions %d", len(tmpl.Functions()), len(localstack.Functions))
	}
}

// TestMainsStartTheirConstructor keeps each function's main package (found
// through the Makefile's FUNCTIONS list, which sam build uses) starting the
// constructor that the local stack runs for it.
func TestMainsStartTheirConstructor(t *testing.T) {
	path, err := ddbtest.RepoFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\t(\w+Function):(\w+)`).FindAllStringSubmatch(string(makefile), -1) {
		dirs[m[1]] = m[2]
	}
	for fn, construct := range localstack.Functions {
		dir, ok := dirs[fn]
		if !ok {
			t.Errorf("%s is not in the Makefile's FUNCTIONS", fn)
			continue
		}
		name := runtime.FuncForPC(reflect.ValueOf(construct).Pointer()).Name()
		want := "lambdas.Main(lambdas." + name[strings.LastIndexByte(name, '.')+1:] + ")"
		main, err := ddbtest.RepoFile("functions/" + dir + "/main.go")
		if err != nil {
			t.Fatal(err)
		}
		src, err := os.ReadFile(main)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), want) {
			t.Errorf("functions/%s/main.go does not call %s", dir, want)
		}
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
			h, err := localstack.Functions[fn](ctx, func(k string) string { return env[k] })
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
	err := lambdas.Run(context.Background(), lambdas.Authorizer, func(string) string { return "" }, func(any) { t.Fatal("started") })
	if err == nil {
		t.Fatal("started without KEYS_TABLE")
	}
}
