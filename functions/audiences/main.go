// Command audiences is the AudiencesFunction Lambda; what it runs is built in package lambdas.
package main

import "github.com/contactlevel/metering/shared/lambdas"

func main() { lambdas.Main(lambdas.Endpoints) }
