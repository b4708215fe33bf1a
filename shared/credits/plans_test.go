package credits

import (
	"errors"
	"testing"
)

func TestPlanByID(t *testing.T) {
	p, err := PlanByID("starter")
	if err != nil || p.Monthly != 1000 || p.RolloverCap != 2000 {
		t.Errorf("starter = %+v, %v", p, err)
	}
	if _, err := PlanByID("gold"); !errors.Is(err, ErrUnknownPlan) {
		t.Errorf("gold: %v", err)
	}
	seen := map[string]bool{}
	for _, p := range Plans {
		if seen[p.ID] || p.Monthly <= 0 || (p.RolloverCap != 0 && p.RolloverCap < p.Monthly) {
			t.Errorf("plan %+v: duplicate, no allotment, or a cap below one month's allotment", p)
		}
		seen[p.ID] = true
	}
}
