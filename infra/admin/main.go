// Command admin is the operators' CLI: organizations, keys, credit grants
// and adjustments, and the ledger, through package admin, straight against
// DynamoDB. It reads the same configuration as the functions: the endpoint
// from AWS_ENDPOINT_URL_DYNAMODB and the tables from KEYS_TABLE and
// ORGS_TABLE, defaulting to what `make run` uses (DynamoDB Local on
// http://127.0.0.1:8000, tables named by their logical IDs).
//
//	go run ./infra/admin org create --name "Acme" --plan starter
//	go run ./infra/admin --help
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2) // the usage error was printed with the command's help
	default:
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}
