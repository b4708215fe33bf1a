// Package config reads the settings every function and tool shares from the
// environment, so that the template, the local gateway and the CLI agree on names.
package config

// Tables holds the DynamoDB table names a process talks to.
type Tables struct {
	Keys      string
	Orgs      string
	Contacts  string
	Audiences string
	// Idempotency holds Idempotency-Key records of charged requests.
	Idempotency string
}

// TablesFromEnv reads the table names from the variables template.yaml sets
// on every function.
func TablesFromEnv(getenv func(string) string) Tables {
	return Tables{
		Keys:      getenv("KEYS_TABLE"),
		Orgs:      getenv("ORGS_TABLE"),
		Contacts:  getenv("CONTACTS_TABLE"),
		Audiences: getenv("AUDIENCES_TABLE"),

		Idempotency: getenv("IDEMPOTENCY_TABLE"),
	}
}
