package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file parses and evaluates EventBridge Scheduler schedule expressions: rate(...), cron(...)
// and at(...), each in an IANA time zone.
//
// Daylight saving time follows EventBridge Scheduler: a cron occurrence whose local time is skipped
// by a forward transition does not fire, and a local time that happens twice in a backward
// transition fires once, at its first occurrence.

// Schedule is a parsed schedule expression.
type Schedule interface {
	// Next returns the first occurrence strictly after t (zero time and false when there is none,
	// e.g. a past at()).
	Next(t time.Time) (time.Time, bool)
	String() string
}

// ScheduleError reports an invalid schedule expression or time zone. Msg is suitable for the
// message of an AWS ValidationException.
type ScheduleError struct{ Msg string }

func (e *ScheduleError) Error() string { return e.Msg }

// The year range the cron year field accepts; Cron.Next never looks past cronMaxYear.
const (
	cronMinYear = 1970
	cronMaxYear = 2199
)

var (
	_ Schedule = Rate{}
	_ Schedule = (*Cron)(nil)
	_ Schedule = At{}
)

// ParseSchedule parses "rate(...)", "cron(...)" or "at(...)" in the given IANA time zone ("" is
// UTC). It returns a Rate, a *Cron or an At. Errors are *ScheduleError.
//
// A Rate from ParseSchedule is not anchored: its Next(t) is t plus the interval, so the caller
// passes the schedule's last fire time (or its creation time), or anchors it with Rate.Anchor.
func ParseSchedule(expr, timezone string) (Schedule, error) {
	loc, err := loadScheduleZone(timezone)
	if err != nil {
		return nil, err
	}
	kind, body, ok := strings.Cut(expr, "(")
	if !ok || !strings.HasSuffix(body, ")") {
		return nil, invalidExpr(expr, "it must be rate(value unit), cron(minutes hours day-of-month month day-of-week year) or at(yyyy-mm-ddThh:mm:ss)")
	}
	body = strings.TrimSuffix(body, ")")
	switch kind {
	case "rate":
		return parseRate(expr, body)
	case "cron":
		return parseCron(expr, body, loc)
	case "at":
		return parseAt(expr, body, loc)
	}
	return nil, invalidExpr(expr, "it must start with rate(, cron( or at(")
}

func invalidExpr(expr, format string, args ...any) *ScheduleError {
	return &ScheduleError{Msg: fmt.Sprintf("Invalid Schedule Expression %s. %s.", expr, upperFirst(fmt.Sprintf(format, args...)))}
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func loadScheduleZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	// "Local" is the server's own zone, which a client cannot mean.
	if name == "Local" {
		return nil, &ScheduleError{Msg: fmt.Sprintf("Invalid ScheduleExpressionTimezone %q: not an IANA time zone name.", name)}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &ScheduleError{Msg: fmt.Sprintf("Invalid ScheduleExpressionTimezone %q: not a known IANA time zone.", name)}
	}
	return loc, nil
}

// Rate is a rate(value unit) schedule: an occurrence every Interval.
//
// A Rate has no fixed occurrences of its own. Unanchored (as ParseSchedule returns it), Next(t) is
// t + Interval: the caller passes the time the schedule last fired, or was created. Anchor returns
// a Rate whose occurrences are base + k·Interval for k ≥ 0.
type Rate struct {
	value    int
	unit     string
	interval time.Duration
	base     time.Time
	anchored bool
}

// Interval is the time between occurrences.
func (r Rate) Interval() time.Duration { return r.interval }

// Anchor returns r with occurrences at base + k·Interval for every k ≥ 0.
func (r Rate) Anchor(base time.Time) Rate {
	r.base, r.anchored = base, true
	return r
}

// Next returns t + Interval when r is not anchored, and otherwise the first base + k·Interval
// strictly after t.
func (r Rate) Next(t time.Time) (time.Time, bool) {
	if !r.anchored {
		return t.Add(r.interval), true
	}
	if t.Before(r.base) {
		return r.base, true
	}
	k := t.Sub(r.base)/r.interval + 1
	return r.base.Add(k * r.interval), true
}

func (r Rate) String() string { return fmt.Sprintf("rate(%d %s)", r.value, r.unit) }

// scale returns r with each of its minutes lasting minute (Service.ScaleMinute).
func (r Rate) scale(minute time.Duration) Rate {
	r.interval = r.interval / time.Minute * minute
	return r
}

func parseRate(expr, body string) (Rate, error) {
	parts := strings.Split(body, " ")
	if len(parts) != 2 {
		return Rate{}, invalidExpr(expr, "a rate expression is rate(value unit), for example rate(5 minutes)")
	}
	digits, unit := parts[0], parts[1]
	value, err := strconv.Atoi(digits)
	if err != nil || !isDigits(digits) || value <= 0 {
		return Rate{}, invalidExpr(expr, "the rate value %q must be a positive integer", digits)
	}
	var per time.Duration
	switch strings.TrimSuffix(unit, "s") {
	case "minute":
		per = time.Minute
	case "hour":
		per = time.Hour
	case "day":
		per = 24 * time.Hour
	default:
		return Rate{}, invalidExpr(expr, "the rate unit %q must be minute, minutes, hour, hours, day or days", unit)
	}
	plural := strings.HasSuffix(unit, "s")
	if value == 1 && plural {
		return Rate{}, invalidExpr(expr, "a rate of 1 takes the singular unit %s", strings.TrimSuffix(unit, "s"))
	}
	if value != 1 && !plural {
		return Rate{}, invalidExpr(expr, "a rate of %d takes the plural unit %ss", value, unit)
	}
	if int64(value) > int64(1<<63-1)/int64(per) {
		return Rate{}, invalidExpr(expr, "the rate value %d is too large", value)
	}
	return Rate{value: value, unit: unit, interval: time.Duration(value) * per}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// At is a one-time at(yyyy-mm-ddThh:mm:ss) schedule.
type At struct {
	expr string
	when time.Time
}

// Time is the instant the schedule fires. A local time that happens twice is its first
// occurrence; one skipped by a forward transition is moved forward by the length of the gap.
func (a At) Time() time.Time { return a.when }

// Next returns Time when it is after t.
func (a At) Next(t time.Time) (time.Time, bool) {
	if a.when.After(t) {
		return a.when, true
	}
	return time.Time{}, false
}

func (a At) String() string { return a.expr }

func parseAt(expr, body string, loc *time.Location) (At, error) {
	const layout = "2006-01-02T15:04:05"
	// Parse in UTC only to validate the fields; resolve applies the zone's rules.
	w, err := time.Parse(layout, body)
	if err != nil || len(body) != len(layout) {
		return At{}, invalidExpr(expr, "the time %q must be a valid date and time in the form yyyy-mm-ddThh:mm:ss", body)
	}
	when, _ := resolve(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), loc)
	return At{expr: expr, when: when}, nil
}

// Cron is a cron(minutes hours day-of-month month day-of-week year) schedule, evaluated in its time
// zone.
type Cron struct {
	expr    string
	loc     *time.Location
	minutes bitset // bit m for minute m
	hours   bitset // bit h for hour h
	months  bitset // bit m-1 for month m
	years   bitset // bit y-1970 for year y

	// The day rule. For daySet a day matches when its day of month is in dom (bit d-1) and its
	// weekday in dow (bit 0 for Sunday); the field that is ? holds every value.
	days    dayKind
	dom     bitset
	dow     bitset
	day     int          // dayNearestWeekday: the day of month; dayNth: which occurrence (1-5)
	weekday time.Weekday // dayLastOfWeek, dayNth
}

type dayKind uint8

const (
	daySet            dayKind = iota // lists, ranges and steps of either field
	dayLast                          // L in day-of-month
	dayLastWeekday                   // LW in day-of-month
	dayNearestWeekday                // nW in day-of-month
	dayLastOfWeek                    // nL in day-of-week
	dayNth                           // n#k in day-of-week
)

type bitset [4]uint64

func (b *bitset) add(i int)     { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// cronField describes one of the fields parsed by parseList.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
	step     bool     // whether / is allowed
}

var (
	minutesField = cronField{name: "minutes", min: 0, max: 59, step: true}
	hoursField   = cronField{name: "hours", min: 0, max: 23, step: true}
	domField     = cronField{name: "day-of-month", min: 1, max: 31, step: true}
	monthField   = cronField{name: "month", min: 1, max: 12, step: true,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	dowField  = cronField{name: "day-of-week", min: 1, max: 7, names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	yearField = cronField{name: "year", min: cronMinYear, max: cronMaxYear, step: true}
)

func (f cronField) valid() string {
	s := fmt.Sprintf("%d-%d", f.min, f.max)
	if f.names != nil {
		s += fmt.Sprintf(" or %s-%s", f.names[0], f.names[len(f.names)-1])
	}
	return s
}

func parseCron(expr, body string, loc *time.Location) (*Cron, error) {
	fields := strings.Fields(strings.ToUpper(body))
	if len(fields) != 6 {
		return nil, invalidExpr(expr, "a cron expression has six fields (minutes hours day-of-month month day-of-week year), not %d", len(fields))
	}
	c := &Cron{expr: expr, loc: loc}
	var err error
	if c.minutes, err = parseList(minutesField, fields[0]); err != nil {
		return nil, invalidExpr(expr, "%v", err)
	}
	if c.hours, err = parseList(hoursField, fields[1]); err != nil {
		return nil, invalidExpr(expr, "%v", err)
	}
	if c.months, err = parseList(monthField, fields[3]); err != nil {
		return nil, invalidExpr(expr, "%v", err)
	}
	if c.years, err = parseList(yearField, fields[5]); err != nil {
		return nil, invalidExpr(expr, "%v", err)
	}
	dom, dow := fields[2], fields[4]
	switch {
	case dom == "?" && dow == "?":
		return nil, invalidExpr(expr, "day-of-month and day-of-week cannot both be ?; use ? in exactly one of them")
	case dom != "?" && dow != "?":
		return nil, invalidExpr(expr, "day-of-month and day-of-week cannot both be specified; use ? in exactly one of them")
	case dow == "?":
		c.dow = fullSet(dowField)
		err = c.parseDayOfMonth(dom)
	default:
		c.dom = fullSet(domField)
		err = c.parseDayOfWeek(dow)
	}
	if err != nil {
		return nil, invalidExpr(expr, "%v", err)
	}
	return c, nil
}

func (c *Cron) parseDayOfMonth(s string) error {
	switch {
	case s == "L":
		c.days = dayLast
	case s == "LW":
		c.days = dayLastWeekday
	case strings.HasSuffix(s, "W"):
		n := strings.TrimSuffix(s, "W")
		d, err := strconv.Atoi(n)
		if err != nil || !isDigits(n) || d < 1 || d > 31 {
			return fmt.Errorf("day-of-month %q must be a day 1-31 followed by W, alone (W finds the nearest weekday)", s)
		}
		c.days, c.day = dayNearestWeekday, d
	default:
		dom, err := parseList(domField, s)
		if err != nil {
			return err
		}
		c.days, c.dom = daySet, dom
	}
	return nil
}

func (c *Cron) parseDayOfWeek(s string) error {
	switch {
	case s == "L":
		// L alone is the last day of the week: every Saturday.
		c.days = daySet
		c.dow.add(int(time.Saturday))
	case strings.Contains(s, "#"):
		if strings.Contains(s, ",") {
			return fmt.Errorf("day-of-week %q: an expression with # must stand alone, and only one is allowed", s)
		}
		wd, nth, _ := strings.Cut(s, "#")
		v, err := parseValue(dowField, wd)
		if err != nil {
			return err
		}
		k, err := strconv.Atoi(nth)
		if err != nil || !isDigits(nth) || k < 1 || k > 5 {
			return fmt.Errorf("day-of-week %q: the number after # must be 1-5", s)
		}
		c.days, c.weekday, c.day = dayNth, time.Weekday(v-1), k
	case strings.HasSuffix(s, "L"):
		v, err := parseValue(dowField, strings.TrimSuffix(s, "L"))
		if err != nil {
			return fmt.Errorf("day-of-week %q: L must follow a single day (%s), alone", s, dowField.valid())
		}
		c.days, c.weekday = dayLastOfWeek, time.Weekday(v-1)
	default:
		dow, err := parseList(dowField, s)
		if err != nil {
			return err
		}
		c.days, c.dow = daySet, dow
	}
	return nil
}

func fullSet(f cronField) bitset {
	var b bitset
	for v := f.min; v <= f.max; v++ {
		b.add(v - f.min)
	}
	return b
}

// parseList parses a comma-separated list of *, values, ranges (a-b) and, where the field allows,
// steps (*/s, a/s, a-b/s) into a set with bit v-f.min for each value v. A range whose start is after
// its end wraps past the field's maximum, as in Quartz (FRI-MON, 22-2), except for years.
func parseList(f cronField, s string) (bitset, error) {
	var b bitset
	for _, elem := range strings.Split(s, ",") {
		spec, stepText, hasStep := strings.Cut(elem, "/")
		step := 1
		if hasStep {
			if !f.step {
				return b, fmt.Errorf("%s %q: / is not allowed in %s", f.name, s, f.name)
			}
			n, err := strconv.Atoi(stepText)
			if err != nil || !isDigits(stepText) || n < 1 || n > f.max-f.min+1 {
				return b, fmt.Errorf("%s %q: the step after / must be 1-%d", f.name, s, f.max-f.min+1)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch from, to, isRange := strings.Cut(spec, "-"); {
		case spec == "*":
		case isRange:
			var err error
			if lo, err = parseValue(f, from); err != nil {
				return b, err
			}
			if hi, err = parseValue(f, to); err != nil {
				return b, err
			}
			if lo > hi && f.name == yearField.name {
				return b, fmt.Errorf("year range %q ends before it starts", spec)
			}
		default:
			var err error
			if lo, err = parseValue(f, spec); err != nil {
				return b, err
			}
			if !hasStep {
				hi = lo
			}
		}
		span := f.max - f.min + 1
		if hi < lo {
			hi += span
		}
		for v := lo; v <= hi; v += step {
			b.add((v - f.min) % span)
		}
	}
	return b, nil
}

// parseValue parses one number or name of field f.
func parseValue(f cronField, s string) (int, error) {
	if isDigits(s) {
		v, err := strconv.Atoi(s)
		if err != nil || v < f.min || v > f.max {
			return 0, fmt.Errorf("%s value %s is out of range %s", f.name, s, f.valid())
		}
		return v, nil
	}
	for i, name := range f.names {
		if s == name {
			return f.min + i, nil
		}
	}
	return 0, fmt.Errorf("%s value %q is not valid; use %s", f.name, s, f.valid())
}

// Next returns the first occurrence strictly after t, in the schedule's time zone, and false when
// there is none up to the end of 2199.
func (c *Cron) Next(t time.Time) (time.Time, bool) {
	// Walk local wall clocks from the minute after t's, skipping whole years, months, days and hours
	// that cannot match. Each matching wall clock maps to its first instant (resolve); walking in
	// wall clock order yields instants in order, except that in a backward transition the walk may
	// revisit wall clocks whose first instant is not after t, which the After check drops.
	lt := t.In(c.loc)
	s := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute()+1, 0, 0, time.UTC)
	if s.Year() < cronMinYear {
		s = time.Date(cronMinYear, time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	sy, sm, sd, sh, smin := s.Year(), s.Month(), s.Day(), s.Hour(), s.Minute()
	for y := sy; y <= cronMaxYear; y++ {
		if !c.years.has(y - cronMinYear) {
			continue
		}
		m0 := time.January
		if y == sy {
			m0 = sm
		}
		for m := m0; m <= time.December; m++ {
			if !c.months.has(int(m) - 1) {
				continue
			}
			days := c.daysOf(y, m)
			startMonth := y == sy && m == sm
			d0 := 1
			if startMonth {
				d0 = sd
			}
			for d := d0; days>>d != 0; d++ {
				if days&(1<<d) == 0 {
					continue
				}
				startDay := startMonth && d == sd
				h0 := 0
				if startDay {
					h0 = sh
				}
				for h := h0; h < 24; h++ {
					if !c.hours.has(h) {
						continue
					}
					min0 := 0
					if startDay && h == sh {
						min0 = smin
					}
					for mi := min0; mi < 60; mi++ {
						if !c.minutes.has(mi) {
							continue
						}
						if u, ok := resolve(y, m, d, h, mi, 0, c.loc); ok && u.After(t) {
							return u, true
						}
					}
				}
			}
		}
	}
	return time.Time{}, false
}

func (c *Cron) String() string { return c.expr }

// daysOf returns the days of month m of year y that match, as bit d for day d.
func (c *Cron) daysOf(y int, m time.Month) uint32 {
	last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).Weekday()
	weekday := func(d int) time.Weekday { return (first + time.Weekday(d-1)) % 7 }
	var d int
	switch c.days {
	case daySet:
		var days uint32
		for d := 1; d <= last; d++ {
			if c.dom.has(d-1) && c.dow.has(int(weekday(d))) {
				days |= 1 << d
			}
		}
		return days
	case dayLast:
		d = last
	case dayLastWeekday:
		d = last
		switch weekday(d) {
		case time.Saturday:
			d--
		case time.Sunday:
			d -= 2
		}
	case dayNearestWeekday:
		// The nearest weekday within the month: a Saturday the 1st moves to Monday the 3rd, a Sunday
		// that is the last day moves back to Friday.
		d = c.day
		if d > last {
			return 0
		}
		switch weekday(d) {
		case time.Saturday:
			if d == 1 {
				d = 3
			} else {
				d--
			}
		case time.Sunday:
			if d == last {
				d -= 2
			} else {
				d++
			}
		}
	case dayLastOfWeek:
		d = last - int((weekday(last)-c.weekday+7)%7)
	case dayNth:
		d = 1 + int((c.weekday-first+7)%7) + 7*(c.day-1)
		if d > last {
			return 0
		}
	}
	return 1 << d
}

// resolve returns the first instant at which the wall clock in loc reads the given time, and true.
// When no instant does (the time is skipped by a forward transition) it returns the instant the
// time would have had under the offset in force before the transition, which falls just after the
// gap, and false.
func resolve(y int, mo time.Month, d, h, mi, sec int, loc *time.Location) (time.Time, bool) {
	guess := time.Date(y, mo, d, h, mi, sec, 0, loc)
	start, end := guess.ZoneBounds()
	const margin = 48 * time.Hour // far more than any offset change
	if (start.IsZero() || guess.Sub(start) > margin) && (end.IsZero() || end.Sub(guess) > margin) {
		return guess, true // not near a transition: the wall clock is unique
	}
	wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
	// The wall clock can only belong to guess's zone period or one next to it.
	probes := []time.Time{guess}
	if !start.IsZero() {
		probes = append(probes, start.Add(-time.Second))
	}
	if !end.IsZero() {
		probes = append(probes, end)
	}
	var first, after time.Time
	for _, p := range probes {
		_, off := p.Zone()
		u := wall.Add(-time.Duration(off) * time.Second).In(loc)
		switch w := wallClock(u); {
		case w.Equal(wall):
			if first.IsZero() || u.Before(first) {
				first = u
			}
		case w.After(wall):
			if after.IsZero() || u.Before(after) {
				after = u
			}
		}
	}
	if !first.IsZero() {
		return first, true
	}
	if !after.IsZero() {
		return after, false
	}
	return guess, false
}

// wallClock returns t's wall clock, read as UTC.
func wallClock(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
}
