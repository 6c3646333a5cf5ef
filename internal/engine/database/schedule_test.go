package database

import (
	"strings"
	"testing"
	"time"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("2006-01-02 15:04 Mon", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		spec, after, want string
	}{
		{"* * * * *", "2024-05-01 12:00 Wed", "2024-05-01 12:01 Wed"},
		{"0 * * * *", "2024-05-01 12:00 Wed", "2024-05-01 13:00 Wed"},
		{"30 2 * * *", "2024-05-01 12:00 Wed", "2024-05-02 02:30 Thu"},
		{"*/15 * * * *", "2024-05-01 12:07 Wed", "2024-05-01 12:15 Wed"},
		{"5/20 * * * *", "2024-05-01 12:26 Wed", "2024-05-01 12:45 Wed"},
		{"0 9-17/4 * * *", "2024-05-01 13:00 Wed", "2024-05-01 17:00 Wed"},
		{"0 0 1 * *", "2024-05-01 12:00 Wed", "2024-06-01 00:00 Sat"},
		{"0 0 * * MON", "2024-05-01 12:00 Wed", "2024-05-06 00:00 Mon"},
		{"0 0 * * 7", "2024-05-01 12:00 Wed", "2024-05-05 00:00 Sun"},
		{"0 0 * * sun,sat", "2024-05-01 12:00 Wed", "2024-05-04 00:00 Sat"},
		{"0 0 29 FEB *", "2024-05-01 12:00 Wed", "2028-02-29 00:00 Tue"},
		// Both day fields restricted: either matches.
		{"0 0 13 * FRI", "2024-05-01 12:00 Wed", "2024-05-03 00:00 Fri"},
		{"0 0 1,15 JAN-MAR *", "2024-03-15 00:00 Fri", "2025-01-01 00:00 Wed"},
		{"59 23 31 12 *", "2024-12-31 23:59 Tue", "2025-12-31 23:59 Wed"},
	}
	for _, tc := range tests {
		sc, err := parseSchedule(tc.spec)
		if err != nil {
			t.Errorf("parseSchedule(%q) = %v", tc.spec, err)
			continue
		}
		got, ok := sc.next(at(tc.after))
		if !ok || !got.Equal(at(tc.want)) {
			t.Errorf("%q next after %s = %v (%v), want %s", tc.spec, tc.after, got.Format("2006-01-02 15:04 Mon"), ok, tc.want)
		}
	}
}

func TestScheduleRefused(t *testing.T) {
	for spec, want := range map[string]string{
		"":                 "want 5 fields",
		"* * * *":          "want 5 fields",
		"* * * * * *":      "want 5 fields",
		"@daily":           "want 5 fields",
		"60 * * * *":       "minute",
		"* 24 * * *":       "hour",
		"* * 0 * *":        "day of month",
		"* * * 13 *":       "month",
		"* * * * 8":        "day of week",
		"*/0 * * * *":      "bad step",
		"5-1 * * * *":      "runs backwards",
		"x * * * *":        "minute",
		"0 0 30 2 *":       "never fires",
		"0 0 31 APR,JUN *": "never fires",
	} {
		_, err := parseSchedule(spec)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "rotation_schedule: ") {
			t.Errorf("parseSchedule(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}
