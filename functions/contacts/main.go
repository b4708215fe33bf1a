// Command contacts is the ContactsFunction Lambda; what it runs is built in package lambdas.
package main

import "github.com/contactlevel/metering/shared/lambdas"

func main() { lambdas.Main(lambdas.Endpoints) }
