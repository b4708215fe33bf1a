// Command admin is the AdminFunction Lambda, the admin API behind IAM
// authorization; what it runs is built in package lambdas.
package main

import "github.com/contactlevel/metering/shared/lambdas"

func main() { lambdas.Main(lambdas.Admin) }
