package credits

import (
	"fmt"
	"slices"
	"strings"
)

// Plans is the catalogue of subscription plans an organization can be put
// on. Their terms are copied onto each organization when it is created, so
// changing a plan here changes new organizations only.
var Plans = []Plan{
	{ID: "free", Monthly: 100, RolloverCap: 100},
	{ID: "starter", Monthly: 1000, RolloverCap: 2000},
	{ID: "growth", Monthly: 10000, RolloverCap: 20000},
	{ID: "scale", Monthly: 100000}, // no cap: unused credits keep rolling over
}

// ErrUnknownPlan means a plan ID is not in the catalogue.
var ErrUnknownPlan = fmt.Errorf("unknown plan (want one of %s)", planIDs())

// PlanByID finds a plan of the catalogue.
func PlanByID(id string) (Plan, error) {
	i := slices.IndexFunc(Plans, func(p Plan) bool { return p.ID == id })
	if i < 0 {
		return Plan{}, fmt.Errorf("%q: %w", id, ErrUnknownPlan)
	}
	return Plans[i], nil
}

func planIDs() string {
	ids := make([]string, len(Plans))
	for i, p := range Plans {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}
