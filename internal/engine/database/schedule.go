package database

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// schedule is a parsed rotation_schedule: a standard five-field cron
// expression, "minute hour day-of-month month day-of-week", evaluated in
// UTC. Each field is a comma-separated list of "*", "N", "N-M", each
// optionally followed by "/STEP", or "N/STEP" (N to the field's maximum).
// Months may be JAN-DEC and days of the week SUN-SAT (0 and 7 are both
// Sunday). As in cron, when both day fields are restricted (neither
// starts with "*"), a day matches if either does. Predefined schedules
// ("@daily") are refused, as Vault refuses them.
type schedule struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day of week", min: 0, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// maxScheduleLen bounds a rotation_schedule.
const maxScheduleLen = 256

// parseSchedule parses a rotation_schedule; a schedule that never fires
// (such as February 30th) is refused.
func parseSchedule(s string) (*schedule, error) {
	bad := func(format string, args ...any) error {
		return &ParseError{Field: "rotation_schedule", Msg: fmt.Sprintf(format, args...)}
	}
	if len(s) > maxScheduleLen {
		return nil, bad("longer than %d bytes", maxScheduleLen)
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return nil, bad("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	var sets [5]uint64
	for i, f := range fields {
		set, err := parseCronField(f, cronFields[i])
		if err != nil {
			return nil, bad("%s", err)
		}
		sets[i] = set
	}
	sc := &schedule{minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar: strings.HasPrefix(fields[2], "*"), dowStar: strings.HasPrefix(fields[4], "*")}
	if sc.dow&(1<<7) != 0 {
		sc.dow |= 1 // 7 is Sunday too
	}
	if _, ok := sc.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)); !ok {
		return nil, bad("never fires")
	}
	return sc, nil
}

func parseCronField(f string, cf cronField) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > cf.max-cf.min+1 {
				return 0, fmt.Errorf("%s: bad step %q", cf.name, stepStr)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*":
			lo, hi = cf.min, cf.max
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, cf); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = cronValue(b, cf); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("%s: range %q runs backwards", cf.name, rng)
				}
			} else if hasStep {
				hi = cf.max
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func cronValue(s string, cf cronField) (int, error) {
	for i, n := range cf.names {
		if strings.EqualFold(s, n) {
			return cf.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < cf.min || v > cf.max {
		return 0, fmt.Errorf("%s: %q is not a value from %d to %d", cf.name, s, cf.min, cf.max)
	}
	return v, nil
}

func (sc *schedule) dayMatches(t time.Time) bool {
	if sc.month&(1<<uint(t.Month())) == 0 {
		return false
	}
	dom := sc.dom&(1<<uint(t.Day())) != 0
	dow := sc.dow&(1<<uint(t.Weekday())) != 0
	if sc.domStar || sc.dowStar {
		return dom && dow
	}
	return dom || dow
}

// next returns the first minute strictly after after (in UTC) that the
// schedule matches, looking at most five years ahead.
func (sc *schedule) next(after time.Time) (time.Time, bool) {
	t := after.UTC().Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 1)
	for t.Before(limit) {
		if sc.dayMatches(t) {
			for h := t.Hour(); h < 24; h++ {
				if sc.hour&(1<<uint(h)) == 0 {
					continue
				}
				m0 := 0
				if h == t.Hour() {
					m0 = t.Minute()
				}
				for m := m0; m < 60; m++ {
					if sc.minute&(1<<uint(m)) != 0 {
						return time.Date(t.Year(), t.Month(), t.Day(), h, m, 0, 0, time.UTC), true
					}
				}
			}
		}
		t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}, false
}
