// Command rollover is the RolloverFunction Lambda: the monthly subscription
// rollover, run by EventBridge Scheduler (see template.yaml).
package main

import "github.com/contactlevel/metering/shared/lambdas"

func main() { lambdas.Main(lambdas.Rollover) }
