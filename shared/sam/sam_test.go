package sam

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/apigateway"
)

const templatePath = "../../template.yaml"

func load(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestParameters(t *testing.T) {
	got := load(t).Defaults()
	for name, want := range map[string]string{"StageName": "prod", "AuthorizerCacheTtl": "60", "LogLevel": "INFO"} {
		if got[name] != want {
			t.Errorf("default of %s = %q, want %q", name, got[name], want)
		}
	}
}

func TestFunctions(t *testing.T) {
	tpl := load(t)
	want := []string{"AuthorizerFunction", "CreditsFunction", "ContactsFunction", "AudiencesFunction", "AdminFunction", "RolloverFunction"}
	if got := tpl.Functions(); !reflect.DeepEqual(got, want) {
		t.Errorf("Functions() = %v, want %v", got, want)
	}
	for _, fn := range want {
		r := tpl.Resources[fn]
		if got, _ := r.Metadata["BuildMethod"].(string); got != "makefile" {
			t.Errorf("%s: BuildMethod = %q, want makefile", fn, got)
		}
	}
}

func TestFunctionEnv(t *testing.T) {
	tpl := load(t)
	if err := tpl.CheckEnv(); err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{"KeysTable": "p-KeysTable", "OrgsTable": "p-OrgsTable"}
	got := tpl.FunctionEnv("CreditsFunction", tables, map[string]string{"LogLevel": "DEBUG"})
	want := map[string]string{
		"KEYS_TABLE":      "p-KeysTable",
		"ORGS_TABLE":      "p-OrgsTable",
		"CONTACTS_TABLE":  "ContactsTable", // no entry: the logical ID
		"AUDIENCES_TABLE": "AudiencesTable",
		"LOG_LEVEL":       "DEBUG",

		"IDEMPOTENCY_TABLE": "IdempotencyTable",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionEnv = %v, want %v", got, want)
	}
	env := tpl.FunctionEnv("AuthorizerFunction", nil, nil)
	if got := env["LOG_LEVEL"]; got != "INFO" {
		t.Errorf("LOG_LEVEL default = %q, want INFO", got)
	}
	if got, ok := env["AWS_ENDPOINT_URL_DYNAMODB"]; ok {
		t.Errorf("AWS_ENDPOINT_URL_DYNAMODB = %q without DynamoDBEndpoint, want it left out", got)
	}
	env = tpl.FunctionEnv("AuthorizerFunction", nil, map[string]string{"DynamoDBEndpoint": "http://127.0.0.1:8000"})
	if got := env["AWS_ENDPOINT_URL_DYNAMODB"]; got != "http://127.0.0.1:8000" {
		t.Errorf("AWS_ENDPOINT_URL_DYNAMODB = %q, want the DynamoDBEndpoint parameter", got)
	}
	if got := tpl.FunctionEnv("NoSuchFunction", nil, nil); len(got) != 0 {
		t.Errorf("FunctionEnv of a missing function = %v, want empty", got)
	}
}

func TestTables(t *testing.T) {
	tables, err := load(t).Tables()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Table{}
	for _, tb := range tables {
		byID[tb.LogicalID] = tb
		if tb.Input.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("%s: BillingMode = %s", tb.LogicalID, tb.Input.BillingMode)
		}
		if tb.Input.TableName != nil {
			t.Errorf("%s: TableName set in the template input", tb.LogicalID)
		}
	}
	keys := []string{"KeysTable", "OrgsTable", "ContactsTable", "AudiencesTable"}
	for _, id := range keys {
		if _, ok := byID[id]; !ok {
			t.Fatalf("table %s missing; have %v", id, tables)
		}
	}
	hashRange := func(ks []types.KeySchemaElement) string {
		var parts []string
		for _, k := range ks {
			parts = append(parts, string(k.KeyType)+"="+aws.ToString(k.AttributeName))
		}
		return strings.Join(parts, ",")
	}
	for id, want := range map[string]string{
		"KeysTable":      "HASH=key_hash",
		"OrgsTable":      "HASH=org_id,RANGE=sk",
		"ContactsTable":  "HASH=org_id,RANGE=contact_id",
		"AudiencesTable": "HASH=org_id,RANGE=audience_id",
	} {
		if got := hashRange(byID[id].Input.KeySchema); got != want {
			t.Errorf("%s key schema = %s, want %s", id, got, want)
		}
	}
	k := byID["KeysTable"]
	if k.TTLAttribute != "expires_at" {
		t.Errorf("KeysTable TTL attribute = %q, want expires_at", k.TTLAttribute)
	}
	if len(k.Input.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("KeysTable GSIs = %d, want 1", len(k.Input.GlobalSecondaryIndexes))
	}
	g := k.Input.GlobalSecondaryIndexes[0]
	if aws.ToString(g.IndexName) != "by-org" || hashRange(g.KeySchema) != "HASH=org_id,RANGE=key_id" ||
		g.Projection.ProjectionType != types.ProjectionTypeAll {
		t.Errorf("KeysTable GSI = %s %s %s", aws.ToString(g.IndexName), hashRange(g.KeySchema), g.Projection.ProjectionType)
	}
	if byID["OrgsTable"].TTLAttribute != "" {
		t.Errorf("OrgsTable has a TTL attribute")
	}
}

func TestGatewayConfig(t *testing.T) {
	tpl := load(t)
	cfg, err := tpl.GatewayConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stage != "prod" {
		t.Errorf("Stage = %q, want prod", cfg.Stage)
	}
	for _, want := range []apigateway.Route{
		{Method: "GET", Path: "/api/credits", Function: "CreditsFunction"},
		{Method: "POST", Path: "/api/contacts/create", Function: "ContactsFunction"},
		{Method: "POST", Path: "/api/audiences/create", Function: "AudiencesFunction"},
	} {
		if !slices.Contains(cfg.Routes, want) {
			t.Errorf("route %+v missing; routes: %+v", want, cfg.Routes)
		}
	}
	// The admin API is IAM-authorized, never by the API-key authorizer.
	admin := 0
	for _, r := range cfg.Routes {
		if strings.HasPrefix(r.Path, "/admin/") {
			admin++
			if r.Auth != "AWS_IAM" || r.Function != "AdminFunction" {
				t.Errorf("admin route %+v is not AWS_IAM-authorized", r)
			}
		}
	}
	if len(cfg.Routes)-admin != 3 || admin != 10 {
		t.Errorf("got %d routes (%d admin), want 3 and 10: %+v", len(cfg.Routes), admin, cfg.Routes)
	}

	wantAuth := apigateway.Authorizer{Function: "AuthorizerFunction", IdentityHeader: "X-Api-Key", CacheTTL: 60 * time.Second}
	if cfg.Authorizer == nil || *cfg.Authorizer != wantAuth {
		t.Errorf("Authorizer = %+v, want %+v", cfg.Authorizer, wantAuth)
	}

	invalidKey := apigateway.GatewayResponse{
		StatusCode: 401,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       `{"detail": "Invalid or missing API key"}`,
	}
	for _, typ := range []string{"UNAUTHORIZED", "ACCESS_DENIED"} {
		if got := cfg.GatewayResponses[typ]; !reflect.DeepEqual(got, invalidKey) {
			t.Errorf("%s = %+v, want %+v", typ, got, invalidKey)
		}
	}
	notFound := cfg.GatewayResponses["MISSING_AUTHENTICATION_TOKEN"]
	if notFound.StatusCode != 404 || notFound.Body != `{"detail": "Not Found"}` {
		t.Errorf("MISSING_AUTHENTICATION_TOKEN = %+v", notFound)
	}
	d4 := cfg.GatewayResponses["DEFAULT_4XX"]
	if d4.StatusCode != 0 || d4.Body != `{"detail": $context.error.messageString}` || d4.Headers["Content-Type"] != "application/json" {
		t.Errorf("DEFAULT_4XX = %+v", d4)
	}
	for _, typ := range []string{"DEFAULT_5XX", "AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"} {
		r, ok := cfg.GatewayResponses[typ]
		if !ok || !strings.HasPrefix(r.Body, `{"detail": `) || r.Headers["Content-Type"] != "application/json" {
			t.Errorf("%s = %+v", typ, r)
		}
	}

	for _, fn := range []string{"AuthorizerFunction", "CreditsFunction", "ContactsFunction", "AudiencesFunction"} {
		if got := cfg.FunctionTimeouts[fn]; got != 10*time.Second {
			t.Errorf("timeout of %s = %v, want 10s", fn, got)
		}
	}

	// Parameters override defaults.
	cfg, err = tpl.GatewayConfig(map[string]string{"AuthorizerCacheTtl": "0", "StageName": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Authorizer.CacheTTL != 0 || cfg.Stage != "dev" {
		t.Errorf("with overrides: CacheTTL %v, Stage %q; want 0, dev", cfg.Authorizer.CacheTTL, cfg.Stage)
	}
	if _, err := tpl.GatewayConfig(map[string]string{"AuthorizerCacheTtl": "soon"}); err == nil {
		t.Error("GatewayConfig accepted a non-numeric AuthorizerCacheTtl")
	}
}

func TestShortFormIntrinsics(t *testing.T) {
	tpl, err := Parse([]byte(`
Parameters:
  Name: {Type: String, Default: world}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Arn: !GetAtt Other.Arn
      Sub: !Sub "hello ${Name}"
      SubList: !Sub ["${A}-${AWS::Region}", {A: !Ref Name}]
      Join: !Join [":", [a, !Ref Name]]
      Nested: !If [Cond, !Ref Name, !Ref "AWS::NoValue"]
      Environment:
        Variables:
          GREETING: !Sub "hello ${Name}, ${!Literal}"
          JOINED: !Join ["/", [x, !Ref Name]]
          NUM: 42
`))
	if err != nil {
		t.Fatal(err)
	}
	p := tpl.Resources["Fn"].Properties
	checks := map[string]any{
		"Arn":     map[string]any{"Fn::GetAtt": []any{"Other", "Arn"}},
		"Sub":     map[string]any{"Fn::Sub": "hello ${Name}"},
		"SubList": map[string]any{"Fn::Sub": []any{"${A}-${AWS::Region}", map[string]any{"A": map[string]any{"Ref": "Name"}}}},
		"Join":    map[string]any{"Fn::Join": []any{":", []any{"a", map[string]any{"Ref": "Name"}}}},
		"Nested":  map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "Name"}, map[string]any{"Ref": "AWS::NoValue"}}},
	}
	for k, want := range checks {
		if !reflect.DeepEqual(p[k], want) {
			t.Errorf("%s = %#v, want %#v", k, p[k], want)
		}
	}
	env := tpl.FunctionEnv("Fn", nil, nil)
	want := map[string]string{"GREETING": "hello world, ${Literal}", "JOINED": "x/world", "NUM": "42"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env = %v, want %v", env, want)
	}
	r := resolver{t: tpl}
	if s, err := r.str(p["SubList"]); err != nil || s != "world-us-east-1" {
		t.Errorf("SubList resolves to %q, %v", s, err)
	}
}

func TestConditions(t *testing.T) {
	tpl, err := Parse([]byte(`
Parameters:
  Env: {Type: String, Default: dev}
  Flag: {Type: String, Default: ""}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  HasFlag: !Not [!Equals [!Ref Flag, ""]]
  ProdOrFlag: !Or [!Condition IsProd, !Condition HasFlag]
  ProdAndFlag: !And [{Condition: IsProd}, {Condition: HasFlag}]
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          MODE: !If [IsProd, live, test]
          FLAG: !If [HasFlag, !Ref Flag, !Ref AWS::NoValue]
          EITHER: !If [ProdOrFlag, "yes", "no"]
          BOTH: !If [ProdAndFlag, "yes", "no"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.CheckEnv(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		params map[string]string
		want   map[string]string
	}{
		{nil, map[string]string{"MODE": "test", "EITHER": "no", "BOTH": "no"}},
		{map[string]string{"Flag": "x"}, map[string]string{"MODE": "test", "FLAG": "x", "EITHER": "yes", "BOTH": "no"}},
		{map[string]string{"Env": "prod", "Flag": "x"}, map[string]string{"MODE": "live", "FLAG": "x", "EITHER": "yes", "BOTH": "yes"}},
	} {
		if got := tpl.FunctionEnv("Fn", nil, c.params); !reflect.DeepEqual(got, c.want) {
			t.Errorf("params %v: env %v, want %v", c.params, got, c.want)
		}
	}
}

func TestUnresolvableEnv(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          QUEUE: !GetAtt Queue.Arn
          OK: fine
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.CheckEnv(); err == nil {
		t.Error("CheckEnv accepted !GetAtt in an environment variable")
	}
	if env := tpl.FunctionEnv("Fn", nil, nil); !reflect.DeepEqual(env, map[string]string{"OK": "fine"}) {
		t.Errorf("env = %v", env)
	}
}

func TestGatewayConfigInline(t *testing.T) {
	const base = `
Parameters:
  Stage: {Type: String, Default: v1}
Globals:
  Function:
    Timeout: 5
Resources:
  Auth:
    Type: AWS::Serverless::Function
  Health:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 3
      Events:
        Get:
          Type: Api
          Properties:
            RestApiId: !Ref MyApi
            Path: /health
            Method: get
            Auth:
              Authorizer: NONE
  MyApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
      BinaryMediaTypes: [image~1png]
      Auth:
        DefaultAuthorizer: Key
        Authorizers:
          Key:
            FunctionArn: !GetAtt Auth.Arn
            FunctionPayloadType: REQUEST
            Identity:
              Headers: [Authorization]
      GatewayResponses:
        UNAUTHORIZED:
          ResponseParameters:
            Headers:
              X-Echo: method.request.header.X-Request
`
	tpl, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tpl.GatewayConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Stage != "v1" || len(cfg.Routes) != 1 || cfg.Routes[0] != (apigateway.Route{Method: "GET", Path: "/health", Function: "Health", Auth: "NONE"}) {
		t.Errorf("stage %q routes %+v", cfg.Stage, cfg.Routes)
	}
	if cfg.Authorizer == nil || cfg.Authorizer.CacheTTL != 300*time.Second || cfg.Authorizer.IdentityHeader != "Authorization" {
		t.Errorf("authorizer %+v, want API Gateway's default TTL of 300s", cfg.Authorizer)
	}
	if !reflect.DeepEqual(cfg.BinaryMediaTypes, []string{"image~1png"}) {
		t.Errorf("BinaryMediaTypes = %v", cfg.BinaryMediaTypes)
	}
	if cfg.FunctionTimeouts["Health"] != 3*time.Second || cfg.FunctionTimeouts["Auth"] != 5*time.Second {
		t.Errorf("FunctionTimeouts = %v", cfg.FunctionTimeouts)
	}
	u := cfg.GatewayResponses["UNAUTHORIZED"]
	if u.StatusCode != 0 || u.Headers["X-Echo"] != "method.request.header.X-Request" {
		t.Errorf("UNAUTHORIZED = %+v", u)
	}

	for name, bad := range map[string]string{
		"unquoted header":    strings.Replace(base, "method.request.header.X-Request", "application/json", 1),
		"token authorizer":   strings.Replace(base, "FunctionPayloadType: REQUEST", "FunctionPayloadType: TOKEN", 1),
		"other api":          strings.Replace(base, "RestApiId: !Ref MyApi", "RestApiId: !Ref OtherApi", 1),
		"unknown authorizer": strings.Replace(base, "Authorizer: NONE", "Authorizer: Other", 1),
	} {
		tpl, err := Parse([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.GatewayConfig(nil); err == nil {
			t.Errorf("%s: GatewayConfig accepted it", name)
		}
	}
}
