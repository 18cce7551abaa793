package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// ts parses a UTC time written as 2006-01-02T15:04 or 2006-01-02T15:04:05.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	layout := "2006-01-02T15:04"
	if len(s) > len(layout) {
		layout = "2006-01-02T15:04:05"
	}
	v, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParseSchedule(t testing.TB, expr, zone string) Schedule {
	t.Helper()
	s, err := ParseSchedule(expr, zone)
	if err != nil {
		t.Fatalf("ParseSchedule(%q, %q): %v", expr, zone, err)
	}
	return s
}

type nextCase struct {
	expr string
	zone string
	from string // UTC
	want string // UTC; "" when there is no next occurrence
}

func runNextCases(t *testing.T, cases []nextCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.expr+"/"+tc.zone+"/"+tc.from, func(t *testing.T) {
			s := mustParseSchedule(t, tc.expr, tc.zone)
			got, ok := s.Next(ts(t, tc.from))
			if tc.want == "" {
				if ok {
					t.Fatalf("Next(%s) = %s, true; want none", tc.from, got.UTC())
				}
				if !got.IsZero() {
					t.Errorf("Next(%s) time = %s; want zero time with false", tc.from, got)
				}
				return
			}
			want := ts(t, tc.want)
			if !ok || !got.Equal(want) {
				t.Errorf("Next(%s) = %s, %v; want %s, true", tc.from, got.UTC().Format(time.RFC3339), ok, want.Format(time.RFC3339))
			}
		})
	}
}

// The 2026 calendar: January 1st is a Thursday; February 1st, March 1st and November 1st are
// Sundays; May 1st is a Friday; August 1st is a Saturday.

func TestScheduleCronAWSExamples(t *testing.T) {
	runNextCases(t, []nextCase{
		// 10:00 every day.
		{"cron(0 10 * * ? *)", "", "2026-03-15T09:00", "2026-03-15T10:00"},
		{"cron(0 10 * * ? *)", "", "2026-03-15T10:00", "2026-03-16T10:00"},
		// 12:15 every day.
		{"cron(15 12 * * ? *)", "", "2026-03-15T12:15:30", "2026-03-16T12:15"},
		{"cron(15 12 * * ? *)", "", "2026-12-31T13:00", "2027-01-01T12:15"},
		// 18:00 Monday to Friday. 2026-01-02 is a Friday.
		{"cron(0 18 ? * MON-FRI *)", "", "2026-01-02T18:00", "2026-01-05T18:00"},
		{"cron(0 18 ? * MON-FRI *)", "", "2026-01-05T17:59:59", "2026-01-05T18:00"},
		// 08:00 on the first of every month.
		{"cron(0 8 1 * ? *)", "", "2026-01-01T08:00", "2026-02-01T08:00"},
		{"cron(0 8 1 * ? *)", "", "2026-12-15T00:00", "2027-01-01T08:00"},
		// Every 15 minutes.
		{"cron(0/15 * * * ? *)", "", "2026-01-01T10:07", "2026-01-01T10:15"},
		{"cron(0/15 * * * ? *)", "", "2026-01-01T10:45", "2026-01-01T11:00"},
		{"cron(0/15 * * * ? *)", "", "2026-12-31T23:59:59", "2027-01-01T00:00"},
		// Every 10 minutes, Monday to Friday.
		{"cron(0/10 * ? * MON-FRI *)", "", "2026-01-02T23:55", "2026-01-05T00:00"},
		{"cron(0/10 * ? * MON-FRI *)", "", "2026-01-05T00:00", "2026-01-05T00:10"},
		// Every 5 minutes from 08:00 to 17:55, Monday to Friday.
		{"cron(0/5 8-17 ? * MON-FRI *)", "", "2026-01-05T17:55", "2026-01-06T08:00"},
		{"cron(0/5 8-17 ? * MON-FRI *)", "", "2026-01-05T07:59", "2026-01-05T08:00"},
		{"cron(0/5 8-17 ? * MON-FRI *)", "", "2026-01-05T12:31", "2026-01-05T12:35"},
		{"cron(0/5 8-17 ? * MON-FRI *)", "", "2026-01-03T09:00", "2026-01-05T08:00"},
		// 09:00 on the first Monday of every month.
		{"cron(0 9 ? * 2#1 *)", "", "2026-01-01T00:00", "2026-01-05T09:00"},
		{"cron(0 9 ? * 2#1 *)", "", "2026-01-05T09:00", "2026-02-02T09:00"},
		{"cron(0 9 ? * 2#1 *)", "", "2026-05-10T00:00", "2026-06-01T09:00"},
		// Midnight on the last day of every month.
		{"cron(0 0 L * ? *)", "", "2026-02-10T00:00", "2026-02-28T00:00"},
		{"cron(0 0 L * ? *)", "", "2026-02-28T00:00", "2026-03-31T00:00"},
		{"cron(0 0 L * ? *)", "", "2026-04-15T00:00", "2026-04-30T00:00"},
		{"cron(0 0 L * ? *)", "", "2028-02-01T00:00", "2028-02-29T00:00"},
		// Midnight on the last Friday of every month.
		{"cron(0 0 ? * 6L *)", "", "2026-01-01T00:00", "2026-01-30T00:00"},
		{"cron(0 0 ? * 6L *)", "", "2026-01-30T00:00", "2026-02-27T00:00"},
		{"cron(0 0 ? * 6L *)", "", "2026-07-01T00:00", "2026-07-31T00:00"},
		// Midnight on the last weekday of every month.
		{"cron(0 0 LW * ? *)", "", "2026-01-01T00:00", "2026-01-30T00:00"}, // the 31st is a Saturday
		{"cron(0 0 LW * ? *)", "", "2026-02-01T00:00", "2026-02-27T00:00"}, // the 28th is a Saturday
		{"cron(0 0 LW * ? *)", "", "2026-03-01T00:00", "2026-03-31T00:00"}, // a Tuesday
		{"cron(0 0 LW * ? *)", "", "2026-05-01T00:00", "2026-05-29T00:00"}, // the 31st is a Sunday
		// Midnight on the weekday nearest the 15th.
		{"cron(0 0 15W * ? *)", "", "2026-01-01T00:00", "2026-01-15T00:00"}, // a Thursday
		{"cron(0 0 15W * ? *)", "", "2026-01-15T00:00", "2026-02-16T00:00"}, // Sunday to Monday
		{"cron(0 0 15W * ? *)", "", "2026-02-15T12:00", "2026-02-16T00:00"},
		{"cron(0 0 15W * ? *)", "", "2026-08-01T00:00", "2026-08-14T00:00"}, // Saturday to Friday
	})
}

func TestScheduleCronFields(t *testing.T) {
	runNextCases(t, []nextCase{
		// W does not leave the month.
		{"cron(0 0 1W * ? *)", "", "2026-07-15T00:00", "2026-08-03T00:00"},  // Saturday the 1st to Monday the 3rd
		{"cron(0 0 1W * ? *)", "", "2026-01-15T00:00", "2026-02-02T00:00"},  // Sunday the 1st to Monday the 2nd
		{"cron(0 0 31W * ? *)", "", "2026-01-01T00:00", "2026-01-30T00:00"}, // Saturday the 31st to Friday
		{"cron(0 0 31W * ? *)", "", "2026-04-01T00:00", "2026-05-29T00:00"}, // no April 31st; Sunday the 31st to Friday
		{"cron(0 0 30W 2 ? *)", "", "2026-01-01T00:00", ""},
		// The fifth Monday: January and February 2026 have four.
		{"cron(0 0 ? * 2#5 *)", "", "2026-01-01T00:00", "2026-03-30T00:00"},
		{"cron(0 0 ? * MON#5 *)", "", "2026-01-01T00:00", "2026-03-30T00:00"},
		// L alone in day-of-week is the last day of every week, Saturday.
		{"cron(0 0 ? * L *)", "", "2026-01-01T00:00", "2026-01-03T00:00"},
		{"cron(0 0 ? * FRIL *)", "", "2026-01-01T00:00", "2026-01-30T00:00"},
		{"cron(0 0 ? * 1 *)", "", "2026-01-01T00:00", "2026-01-04T00:00"},
		{"cron(0 0 ? * * *)", "", "2026-01-01T00:00", "2026-01-02T00:00"},
		{"cron(0 0 ? * SUN,WED *)", "", "2026-01-01T00:00", "2026-01-04T00:00"},
		// Ranges that wrap past the maximum.
		{"cron(0 0 ? * FRI-MON *)", "", "2026-01-05T00:00", "2026-01-09T00:00"},
		{"cron(0 22-2 * * ? *)", "", "2026-01-01T02:00", "2026-01-01T22:00"},
		{"cron(0 22-2 * * ? *)", "", "2026-01-01T23:00", "2026-01-02T00:00"},
		// Steps, ranges with steps and lists.
		{"cron(0 0 1 JAN-MAR/2 ? *)", "", "2026-01-01T00:00", "2026-03-01T00:00"},
		{"cron(5/20 * * * ? *)", "", "2026-01-01T10:46", "2026-01-01T11:05"},
		{"cron(*/20 * * * ? *)", "", "2026-01-01T10:46", "2026-01-01T11:00"},
		{"cron(10-30/10 * * * ? *)", "", "2026-01-01T10:30", "2026-01-01T11:10"},
		{"cron(0 0 */10 * ? *)", "", "2026-01-21T00:00", "2026-01-31T00:00"},
		{"cron(0 0 */10 * ? *)", "", "2026-01-31T00:00", "2026-02-01T00:00"},
		{"cron(0 0 1,15 * ? *)", "", "2026-01-01T00:00", "2026-01-15T00:00"},
		{"cron(0 0 1 1 ? 2030/5)", "", "2026-06-01T00:00", "2030-01-01T00:00"},
		{"cron(0 0 1 1 ? 2030/5)", "", "2030-01-01T00:00", "2035-01-01T00:00"},
		{"cron(0 0 1 1,7 ? 2027,2029-2030)", "", "2027-07-01T00:00", "2029-01-01T00:00"},
		// Names are not case sensitive.
		{"cron(0 18 ? * mon-fri *)", "", "2026-01-02T18:00", "2026-01-05T18:00"},
		{"cron(0 0 1 dec ? *)", "", "2026-01-01T00:00", "2026-12-01T00:00"},
		// Days that never come.
		{"cron(0 0 31 4 ? *)", "", "2026-01-01T00:00", ""},
		{"cron(0 0 30 2 ? *)", "", "2026-01-01T00:00", ""},
	})
}

func TestScheduleCronYearLimits(t *testing.T) {
	runNextCases(t, []nextCase{
		{"cron(0 0 1 1 ? 2199)", "", "2198-06-01T00:00", "2199-01-01T00:00"},
		{"cron(0 0 1 1 ? 2199)", "", "2199-06-01T00:00", ""},
		{"cron(59 23 31 12 ? 2199)", "", "2199-12-31T23:58", "2199-12-31T23:59"},
		{"cron(59 23 31 12 ? 2199)", "", "2199-12-31T23:59", ""},
		{"cron(0 0 * * ? *)", "", "2199-12-31T00:00", ""},
		{"cron(0 0 * * ? *)", "", "2250-01-01T00:00", ""},
		{"cron(0 0 * * ? 2025)", "", "2026-01-01T00:00", ""},
		{"cron(0 0 1 1 ? 1970)", "", "0001-01-01T00:00", "1970-01-01T00:00"},
		{"cron(0 0 1 1 ? 1970-2199)", "", "1900-05-01T00:00", "1970-01-01T00:00"},
	})
}

func TestScheduleCronLeapYears(t *testing.T) {
	runNextCases(t, []nextCase{
		{"cron(0 0 29 2 ? *)", "", "2026-01-01T00:00", "2028-02-29T00:00"},
		{"cron(0 0 29 2 ? *)", "", "2028-02-29T00:00", "2032-02-29T00:00"},
		{"cron(0 0 29 2 ? *)", "", "2096-03-01T00:00", "2104-02-29T00:00"}, // 2100 is not a leap year
		{"cron(0 0 29 2 ? *)", "", "2196-03-01T00:00", ""},
		{"cron(0 0 L 2 ? *)", "", "2100-01-01T00:00", "2100-02-28T00:00"},
	})
}

// In America/New_York in 2026 clocks go from 02:00 EST to 03:00 EDT on March 8th (07:00Z) and from
// 02:00 EDT back to 01:00 EST on November 1st (06:00Z).
func TestScheduleCronDaylightSaving(t *testing.T) {
	const ny = "America/New_York"
	runNextCases(t, []nextCase{
		// 02:30 does not exist on March 8th: skipped.
		{"cron(30 2 * * ? *)", ny, "2026-03-07T12:00", "2026-03-09T06:30"},
		// 02:30 happens once on November 1st, in EST.
		{"cron(30 2 * * ? *)", ny, "2026-10-31T12:00", "2026-11-01T07:30"},
		// 01:30 on March 8th is EST.
		{"cron(30 1 * * ? *)", ny, "2026-03-07T12:00", "2026-03-08T06:30"},
		// 01:30 happens twice on November 1st: fire at the first (EDT) only.
		{"cron(30 1 * * ? *)", ny, "2026-10-31T12:00", "2026-11-01T05:30"},
		{"cron(30 1 * * ? *)", ny, "2026-11-01T05:30", "2026-11-02T06:30"},
		{"cron(30 1 * * ? *)", ny, "2026-11-01T06:00", "2026-11-02T06:30"},
		// Every 15 minutes skips the missing hour and does not repeat the doubled one.
		{"cron(0/15 * * * ? *)", ny, "2026-03-08T06:45", "2026-03-08T07:00"},
		{"cron(0/15 * * * ? *)", ny, "2026-11-01T05:40", "2026-11-01T05:45"},
		{"cron(0/15 * * * ? *)", ny, "2026-11-01T05:45", "2026-11-01T07:00"},
		{"cron(0/15 * * * ? *)", ny, "2026-11-01T06:20", "2026-11-01T07:00"},
		// Local time is kept across the change.
		{"cron(0 10 * * ? *)", ny, "2026-01-01T00:00", "2026-01-01T15:00"},
		{"cron(0 10 * * ? *)", ny, "2026-06-01T00:00", "2026-06-01T14:00"},
		// A zone without daylight saving and a half-hour offset.
		{"cron(0 9 * * ? *)", "Asia/Kolkata", "2026-01-01T00:00", "2026-01-01T03:30"},
	})
}

// TestScheduleCronBruteForce checks Next against a minute-by-minute walk over instants across both
// 2026 transitions in New York.
func TestScheduleCronBruteForce(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	exprs := []string{
		"cron(0/15 * * * ? *)",
		"cron(30 1 * * ? *)",
		"cron(30 2 * * ? *)",
		"cron(* 1-2 * * ? *)",
		"cron(59 0-3 ? * SUN *)",
		"cron(0 0 ? * * *)",
	}
	windows := [][2]string{{"2026-03-07T18:00", "2026-03-09T06:00"}, {"2026-10-31T18:00", "2026-11-02T06:00"}}
	for _, expr := range exprs {
		c := mustParseSchedule(t, expr, "America/New_York").(*Cron)
		for _, w := range windows {
			for from := ts(t, w[0]); from.Before(ts(t, w[1])); from = from.Add(29 * time.Minute) {
				limit := from.Add(48 * time.Hour)
				want := bruteNext(c, loc, from, limit)
				got, ok := c.Next(from)
				if want.IsZero() && ok && !got.Before(limit) {
					continue // beyond the walk
				}
				if !ok || !got.Equal(want) {
					t.Errorf("%s: Next(%s) = %s, %v; want %s", expr, from.Format(time.RFC3339),
						got.UTC().Format(time.RFC3339), ok, want.Format(time.RFC3339))
				}
			}
		}
	}
}

// bruteNext walks instants a minute at a time and returns the first after from whose wall clock
// matches c and has not been seen an hour earlier (New York's clocks move by an hour), or the zero
// time if there is none before limit.
func bruteNext(c *Cron, loc *time.Location, from, limit time.Time) time.Time {
	for u := from.Truncate(time.Minute).Add(time.Minute); u.Before(limit); u = u.Add(time.Minute) {
		l := u.In(loc)
		if wallClock(l.Add(-time.Hour)).Equal(wallClock(l)) {
			continue
		}
		y, m, d := l.Date()
		if c.years.has(y-cronMinYear) && c.months.has(int(m)-1) && c.daysOf(y, m)&(1<<d) != 0 &&
			c.hours.has(l.Hour()) && c.minutes.has(l.Minute()) {
			return u.UTC()
		}
	}
	return time.Time{}
}

func TestScheduleRate(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
	}{
		{"rate(1 minute)", time.Minute},
		{"rate(5 minutes)", 5 * time.Minute},
		{"rate(1 hour)", time.Hour},
		{"rate(12 hours)", 12 * time.Hour},
		{"rate(1 day)", 24 * time.Hour},
		{"rate(7 days)", 7 * 24 * time.Hour},
	}
	from := ts(t, "2026-01-01T10:00:30")
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			r, ok := mustParseSchedule(t, tc.expr, "America/New_York").(Rate)
			if !ok {
				t.Fatalf("ParseSchedule(%q) is not a Rate", tc.expr)
			}
			if got := r.Interval(); got != tc.want {
				t.Errorf("Interval() = %s; want %s", got, tc.want)
			}
			if got, ok := r.Next(from); !ok || !got.Equal(from.Add(tc.want)) {
				t.Errorf("Next(%s) = %s, %v; want %s, true", from, got, ok, from.Add(tc.want))
			}
			if got := r.String(); got != tc.expr {
				t.Errorf("String() = %q; want %q", got, tc.expr)
			}
		})
	}
}

func TestScheduleRateAnchor(t *testing.T) {
	r := mustParseSchedule(t, "rate(5 minutes)", "").(Rate).Anchor(ts(t, "2026-01-01T10:00:00"))
	tests := []struct{ from, want string }{
		{"2026-01-01T09:00", "2026-01-01T10:00"},
		{"2026-01-01T10:00", "2026-01-01T10:05"},
		{"2026-01-01T10:04:59", "2026-01-01T10:05"},
		{"2026-01-01T10:05", "2026-01-01T10:10"},
		{"2026-01-02T10:01", "2026-01-02T10:05"},
	}
	for _, tc := range tests {
		got, ok := r.Next(ts(t, tc.from))
		if want := ts(t, tc.want); !ok || !got.Equal(want) {
			t.Errorf("Next(%s) = %s, %v; want %s, true", tc.from, got, ok, want)
		}
	}
}

func TestScheduleAt(t *testing.T) {
	runNextCases(t, []nextCase{
		{"at(2026-06-01T12:00:00)", "", "2026-06-01T11:59:59", "2026-06-01T12:00"},
		{"at(2026-06-01T12:00:00)", "", "2026-06-01T12:00", ""},
		{"at(2026-06-01T12:00:00)", "", "2027-01-01T00:00", ""},
		{"at(2026-06-01T12:00:00)", "America/New_York", "2026-01-01T00:00", "2026-06-01T16:00"},
		{"at(2028-02-29T23:59:59)", "", "2026-01-01T00:00", "2028-02-29T23:59:59"},
		// A time skipped by the spring change is moved past the gap: 03:30 EDT.
		{"at(2026-03-08T02:30:00)", "America/New_York", "2026-01-01T00:00", "2026-03-08T07:30"},
		// A time that happens twice is its first occurrence, in EDT.
		{"at(2026-11-01T01:30:00)", "America/New_York", "2026-01-01T00:00", "2026-11-01T05:30"},
	})
}

func TestScheduleString(t *testing.T) {
	for _, expr := range []string{"rate(5 minutes)", "cron(0/5 8-17 ? * MON-FRI *)", "at(2026-06-01T12:00:00)"} {
		if got := mustParseSchedule(t, expr, "").String(); got != expr {
			t.Errorf("String() = %q; want %q", got, expr)
		}
	}
}

func TestScheduleInvalid(t *testing.T) {
	tests := []struct {
		expr, zone string
		want       string // a fragment of the message
	}{
		{"cron(0 10 * * * *)", "", "cannot both be specified"},
		{"cron(0 10 ? * ? *)", "", "cannot both be ?"},
		{"cron(0 10 1 * MON *)", "", "cannot both be specified"},
		{"cron(0 10 * * ?)", "", "six fields"},
		{"cron(0 10 * * ? * *)", "", "six fields"},
		{"cron()", "", "six fields"},
		{"cron(60 10 * * ? *)", "", "minutes value 60 is out of range 0-59"},
		{"cron(0 24 * * ? *)", "", "hours value 24"},
		{"cron(0 0 0 * ? *)", "", "day-of-month value 0"},
		{"cron(0 0 32 * ? *)", "", "day-of-month value 32"},
		{"cron(0 0 1 13 ? *)", "", "month value 13"},
		{"cron(0 0 1 0 ? *)", "", "month value 0"},
		{"cron(0 0 ? * 0 *)", "", "day-of-week value 0"},
		{"cron(0 0 ? * 8 *)", "", "day-of-week value 8"},
		{"cron(0 0 * * ? 1969)", "", "year value 1969"},
		{"cron(0 0 * * ? 2200)", "", "year value 2200"},
		{"cron(0 0 * * ? 2030-2020)", "", "ends before it starts"},
		{"cron(0 9 ? * 2#6 *)", "", "1-5"},
		{"cron(0 9 ? * 2#0 *)", "", "1-5"},
		{"cron(0 9 ? * 8#1 *)", "", "day-of-week value 8"},
		{"cron(0 9 ? * 3#1,6#3 *)", "", "only one is allowed"},
		{"cron(0 9 ? * 2#1#2 *)", "", "1-5"},
		{"cron(0/0 * * * ? *)", "", "step"},
		{"cron(0/61 * * * ? *)", "", "step"},
		{"cron(*/ * * * ? *)", "", "step"},
		{"cron(/5 * * * ? *)", "", "minutes value"},
		{"cron(5- * * * ? *)", "", "minutes value"},
		{"cron(-5 * * * ? *)", "", "minutes value"},
		{"cron(1,,2 * * * ? *)", "", "minutes value"},
		{"cron(L * * * ? *)", "", "minutes value"},
		{"cron(? 0 * * ? *)", "", "minutes value"},
		{"cron(0 0 ? * MON/2 *)", "", "/ is not allowed"},
		{"cron(0 0 ? * W *)", "", "day-of-week value"},
		{"cron(0 0 ? * LW *)", "", "day-of-week value"},
		{"cron(0 0 ? * 8L *)", "", "L must follow a single day"},
		{"cron(0 0 ? * 2L,3 *)", "", "day-of-week value"},
		{"cron(0 0 ? * MON-FRIL *)", "", "L must follow a single day"},
		{"cron(0 0 ? * JAN *)", "", "day-of-week value"},
		{"cron(0 0 1 MON ? *)", "", "month value"},
		{"cron(0 0 1 JANUARY ? *)", "", "month value"},
		{"cron(0 0 1#2 * ? *)", "", "day-of-month value"},
		{"cron(0 0 L,5 * ? *)", "", "day-of-month value"},
		{"cron(0 0 L-2 * ? *)", "", "day-of-month value"},
		{"cron(0 0 W * ? *)", "", "followed by W"},
		{"cron(0 0 32W * ? *)", "", "followed by W"},
		{"cron(0 0 0W * ? *)", "", "followed by W"},
		{"cron(0 0 1-5W * ? *)", "", "followed by W"},
		{"cron(0 0 1.5 * ? *)", "", "day-of-month value"},
		{"rate(0 minutes)", "", "positive integer"},
		{"rate(-1 minutes)", "", "positive integer"},
		{"rate(+5 minutes)", "", "positive integer"},
		{"rate(1.5 hours)", "", "positive integer"},
		{"rate(1 minutes)", "", "singular unit minute"},
		{"rate(2 hour)", "", "plural unit hours"},
		{"rate(5 weeks)", "", "unit"},
		{"rate(5 Minutes)", "", "unit"},
		{"rate(5)", "", "rate(value unit)"},
		{"rate()", "", "rate(value unit)"},
		{"rate(5  minutes)", "", "rate(value unit)"},
		{"rate(99999999999 days)", "", "too large"},
		{"rate(5 minutes", "", "must be"},
		{"every(5 minutes)", "", "must start with"},
		{"", "", "must be"},
		{"cron 0 10 * * ? *", "", "must be"},
		{"at(2026-02-30T00:00:00)", "", "valid date"},
		{"at(2026-13-01T00:00:00)", "", "valid date"},
		{"at(2026-06-01T24:00:00)", "", "valid date"},
		{"at(2026-06-01 12:00:00)", "", "valid date"},
		{"at(2026-06-01T12:00)", "", "valid date"},
		{"at(2026-06-01T12:00:00Z)", "", "valid date"},
		{"at()", "", "valid date"},
		{"cron(0 10 * * ? *)", "Mars/Olympus_Mons", "Invalid ScheduleExpressionTimezone"},
		{"cron(0 10 * * ? *)", "Local", "Invalid ScheduleExpressionTimezone"},
		{"rate(5 minutes)", "../etc/passwd", "Invalid ScheduleExpressionTimezone"},
	}
	for _, tc := range tests {
		t.Run(tc.expr+"/"+tc.zone, func(t *testing.T) {
			s, err := ParseSchedule(tc.expr, tc.zone)
			if err == nil {
				t.Fatalf("ParseSchedule(%q, %q) = %v; want an error", tc.expr, tc.zone, s)
			}
			var se *ScheduleError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v; want *ScheduleError", err, err)
			}
			if !strings.Contains(strings.ToLower(se.Msg), strings.ToLower(tc.want)) {
				t.Errorf("message %q; want it to contain %q", se.Msg, tc.want)
			}
			if tc.zone == "" && !strings.HasPrefix(se.Msg, "Invalid Schedule Expression "+tc.expr+". ") {
				t.Errorf("message %q; want it to start with %q", se.Msg, "Invalid Schedule Expression "+tc.expr+". ")
			}
		})
	}
}

func BenchmarkScheduleNextLeapDay(b *testing.B) {
	c := mustParseSchedule(b, "cron(0 0 29 2 ? *)", "America/New_York")
	from := ts(b, "2029-03-01T00:00")
	for b.Loop() {
		if _, ok := c.Next(from); !ok {
			b.Fatal("no next leap day")
		}
	}
}

func BenchmarkScheduleNextEveryFiveMinutes(b *testing.B) {
	c := mustParseSchedule(b, "cron(0/5 8-17 ? * MON-FRI *)", "America/New_York")
	from := ts(b, "2026-01-02T23:00") // Friday evening: the next is Monday
	for b.Loop() {
		if _, ok := c.Next(from); !ok {
			b.Fatal("no next")
		}
	}
}

func BenchmarkScheduleNextNever(b *testing.B) {
	c := mustParseSchedule(b, "cron(0 0 30 2 ? *)", "America/New_York")
	from := ts(b, "2026-01-01T00:00")
	for b.Loop() {
		if _, ok := c.Next(from); ok {
			b.Fatal("February 30th")
		}
	}
}

// TestScheduleRateScale: a scaled minute (Service.ScaleMinute, tests of real processes) shortens
// every unit of a rate by the same factor and leaves its text alone.
func TestScheduleRateScale(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want time.Duration
	}{
		{"rate(1 minute)", time.Second},
		{"rate(5 minutes)", 5 * time.Second},
		{"rate(1 hour)", time.Minute},
		{"rate(2 days)", 48 * time.Minute},
	} {
		r := mustParseSchedule(t, tc.expr, "").(Rate).scale(time.Second)
		if r.Interval() != tc.want || r.String() != tc.expr {
			t.Errorf("%s scaled to 1 s minutes = %v (%s), want %v", tc.expr, r.Interval(), r, tc.want)
		}
		from := time.Unix(100, 0)
		if got, _ := r.Next(from); !got.Equal(from.Add(tc.want)) {
			t.Errorf("%s scaled: Next(%v) = %v, want %v", tc.expr, from, got, from.Add(tc.want))
		}
	}
}
