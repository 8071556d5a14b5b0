package netdiag

import (
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// Bufferbloat grades on the DSLReports speed test's scale: the grade is the
// latency increase under load (loaded minus idle). Source: DSLReports'
// bufferbloat FAQ, as the issue specifies it.
var bufferbloatGrades = []struct {
	grade string
	below time.Duration
}{
	{"A+", 5 * time.Millisecond},
	{"A", 30 * time.Millisecond},
	{"B", 60 * time.Millisecond},
	{"C", 200 * time.Millisecond},
	{"D", 400 * time.Millisecond},
}

// gradeF is the grade for an increase of 400 ms or more.
const gradeF = "F"

// BufferbloatGrade grades a latency increase under load.
func BufferbloatGrade(increase time.Duration) string {
	for _, g := range bufferbloatGrades {
		if increase < g.below {
			return g.grade
		}
	}
	return gradeF
}

// gradeRank orders grades, best first: A+ is 0, F is 5.
func gradeRank(g string) int {
	for i, b := range bufferbloatGrades {
		if b.grade == g {
			return i
		}
	}
	return len(bufferbloatGrades)
}

func defaultThresholds() report.Thresholds {
	t := report.Thresholds{BufferbloatGradesMS: map[string]float64{}, StableWithinPct: stableWithin * 100, DirectionBudgetMS: directionBudget.Milliseconds(),
		Verdicts: verdictThresholds()}
	for _, g := range bufferbloatGrades {
		t.BufferbloatGradesMS[g.grade] = ms(g.below)
	}
	return t
}
