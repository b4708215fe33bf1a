// Package ddbtest gives integration tests fresh tables in DynamoDB Local,
// created from template.yaml so that tests exercise the tables that deploy.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/contactlevel/metering/shared/config"
	"github.com/contactlevel/metering/shared/lambdas"
	"github.com/contactlevel/metering/shared/sam"
)

// EndpointVar is the variable that points the SDK, and so these tests, at
// DynamoDB Local. `make test` starts DynamoDB Local and sets it.
const EndpointVar = "AWS_ENDPOINT_URL_DYNAMODB"

// Stack is one test's set of tables.
type Stack struct {
	Client *dynamodb.Client
	Tables config.Tables
	// Names maps each table's logical ID in template.yaml to its name here.
	Names    map[string]string
	Template *sam.Template
}

var (
	loadOnce sync.Once
	tmpl     *sam.Template
	loadErr  error
)

// Template loads the repository's template.yaml once per test binary.
func Template(t testing.TB) *sam.Template {
	t.Helper()
	loadOnce.Do(func() {
		var path string
		if path, loadErr = RepoFile("template.yaml"); loadErr == nil {
			tmpl, loadErr = sam.Load(path)
		}
	})
	if loadErr != nil {
		t.Fatalf("load template: %v", loadErr)
	}
	return tmpl
}

// New creates every table of template.yaml under a random prefix, so that
// tests running side by side never share data. It fails the test when
// DynamoDB Local is not configured: skipping would hide the tests that matter most.
func New(t testing.TB) *Stack {
	t.Helper()
	if os.Getenv(EndpointVar) == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts DynamoDB Local", EndpointVar)
	}
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	ctx := context.Background()
	client, err := lambdas.DynamoDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp := Template(t)
	names, err := tp.CreateTables(ctx, client, Prefix())
	if err != nil {
		t.Fatalf("create tables: %v", err)
	}
	return &Stack{
		Client:   client,
		Names:    names,
		Template: tp,
		Tables: config.Tables{
			Keys:      names["KeysTable"],
			Orgs:      names["OrgsTable"],
			Contacts:  names["ContactsTable"],
			Audiences: names["AudiencesTable"],

			Idempotency: names["IdempotencyTable"],
		},
	}
}

// Prefix is a random table-name prefix.
func Prefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + "-"
}

// RepoFile finds a file at the repository's root by walking up from the
// working directory to the folder that holds go.mod.
func RepoFile(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
