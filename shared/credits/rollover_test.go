package credits

import (
	"errors"
	"testing"
	"time"
)

func TestRolloverAmount(t *testing.T) {
	for _, c := range []struct {
		name string
		plan Plan
		sub  int64
		want int64
	}{
		{"no cap adds the allotment", Plan{Monthly: 1000}, 250, 1000},
		{"room under the cap", Plan{Monthly: 1000, RolloverCap: 3000}, 1500, 1000},
		{"cut to the cap", Plan{Monthly: 1000, RolloverCap: 3000}, 2500, 500},
		{"exactly at the cap", Plan{Monthly: 1000, RolloverCap: 3000}, 3000, 0},
		{"above the cap keeps the excess", Plan{Monthly: 1000, RolloverCap: 3000}, 4000, 0},
		{"cap below the allotment", Plan{Monthly: 1000, RolloverCap: 600}, 0, 600},
		{"no allotment", Plan{RolloverCap: 10}, 0, 0},
		{"negative allotment is none", Plan{Monthly: -5}, 0, 0},
	} {
		if got := c.plan.RolloverAmount(c.sub); got != c.want {
			t.Errorf("%s: RolloverAmount(%d) = %d, want %d", c.name, c.sub, got, c.want)
		}
	}
}

func TestPeriod(t *testing.T) {
	p, err := ParsePeriod("2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "2026-12" || p.Next().String() != "2027-01" || !p.Start().Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("period %v next %v start %v", p, p.Next(), p.Start())
	}
	if got := PeriodOf(time.Date(2026, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -3600))); got.String() != "2027-01" {
		t.Fatalf("PeriodOf in UTC: %v", got)
	}
	if got := PeriodOf(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); got.String() != "2027-01" {
		t.Fatalf("PeriodOf at the scheduled instant: %v", got)
	}
	for _, bad := range []string{"", "2026-13", "2026-00", "2026-1", "26-12", "2026-12-01", "2026/12", "1999-12", " 2026-12"} {
		if _, err := ParsePeriod(bad); !errors.Is(err, ErrInvalidPeriod) {
			t.Errorf("ParsePeriod(%q) = %v, want ErrInvalidPeriod", bad, err)
		}
	}
	if !(Period{}).IsZero() || (Period{}).String() != "" {
		t.Fatal("zero period")
	}
}

func TestExpiredGrants(t *testing.T) {
	b := Balance{Bonus: []Grant{
		{ID: "a", Remaining: 5, ExpiresAt: now},
		{ID: "b", Remaining: 5, ExpiresAt: now.Add(time.Second)},
		{ID: "c", Remaining: 0, ExpiresAt: now.Add(-time.Hour)},
		{ID: "d", Remaining: 9},
	}}
	got := b.ExpiredGrants(now)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Fatalf("expired %+v", got)
	}
}

func TestRolloverShard(t *testing.T) {
	counts := make([]int, 8)
	for i := range 8000 {
		s := RolloverShard("org_"+string(rune('a'+i%26))+time.Duration(i).String(), 8)
		if s < 0 || s >= 8 {
			t.Fatalf("shard %d", s)
		}
		counts[s]++
	}
	for s, n := range counts {
		if n < 700 || n > 1300 {
			t.Errorf("shard %d has %d of 8000 organizations", s, n)
		}
	}
	if RolloverShard("org_x", 8) != RolloverShard("org_x", 8) || RolloverShard("org_x", 1) != 0 {
		t.Fatal("shard not stable")
	}
}
