package cwlogs

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flint-run/flint/internal/logs"
)

// retentionDays are the values PutRetentionPolicy accepts, as AWS lists them.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

var groupNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]{1,512}$`) })

const (
	maxEvents     = 10000   // GetLogEvents' and FilterLogEvents' largest (and default) limit
	maxEventBytes = 1 << 20 // and their largest response
	// timeSlack: a record is stored after its lines were written, so one stored this long
	// before a startTime still cannot hold a line at or after it (clocks of cluster nodes
	// may differ by a little).
	timeSlack = time.Minute
)

// group is a request's log group, resolved.
type group struct {
	name      string // /aws/lambda/NAME or a custom group
	created   time.Time
	retention int
}

// groupOf resolves logGroupName or logGroupIdentifier (a name or an ARN) to an existing group.
func (s *Service) groupOf(ctx context.Context, name, ident string) (*group, error) {
	switch {
	case name != "" && ident != "":
		return nil, errInvalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	case name == "" && ident == "":
		return nil, errInvalid("Either logGroupName or logGroupIdentifier must be specified.")
	case ident != "":
		name = ident
		if strings.HasPrefix(ident, "arn:") {
			_, after, ok := strings.Cut(ident, ":log-group:")
			if !ok {
				return nil, errInvalid("Invalid log group identifier %s.", ident)
			}
			name = strings.TrimSuffix(after, ":*")
		}
	}
	if !groupNameRE().MatchString(name) {
		return nil, errInvalid("1 validation error detected: Value '%s' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+", name)
	}
	g, found, err := s.store.Group(ctx, name)
	if err != nil {
		return nil, errInternal(err)
	}
	days, err := s.store.Retention(ctx, name)
	if err != nil {
		return nil, errInternal(err)
	}
	if !found && days == 0 {
		return nil, errNoGroup()
	}
	return &group{name: name, created: g.First, retention: days}, nil
}

func (s *Service) groupARN(name string) string {
	return "arn:aws:logs:" + s.region + ":" + s.account + ":log-group:" + name
}

// DescribeLogGroups

type describeLogGroupsInput struct {
	LogGroupNamePrefix  string `json:"logGroupNamePrefix"`
	LogGroupNamePattern string `json:"logGroupNamePattern"`
	NextToken           string `json:"nextToken"`
	Limit               *int   `json:"limit"`
}

type logGroupOut struct {
	LogGroupName      string `json:"logGroupName"`
	CreationTime      int64  `json:"creationTime"`
	RetentionInDays   *int   `json:"retentionInDays,omitempty"`
	MetricFilterCount int    `json:"metricFilterCount"`
	ARN               string `json:"arn"`
	LogGroupARN       string `json:"logGroupArn"`
	StoredBytes       int64  `json:"storedBytes"`
	LogGroupClass     string `json:"logGroupClass"`
}

type describeLogGroupsOutput struct {
	LogGroups []logGroupOut `json:"logGroups"`
	NextToken string        `json:"nextToken,omitempty"`
}

func (s *Service) describeLogGroups(ctx context.Context, in *describeLogGroupsInput) (*describeLogGroupsOutput, error) {
	if in.LogGroupNamePrefix != "" && in.LogGroupNamePattern != "" {
		return nil, errInvalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
	}
	limit, err := limitOf(in.Limit, 50)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(in.NextToken, "g")
	if err != nil {
		return nil, err
	}
	groups, err := s.store.Groups(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	ret, err := s.store.Retentions(ctx)
	if err != nil {
		return nil, errInternal(err)
	}
	byName := map[string]logGroupOut{}
	add := func(name string, created time.Time) {
		if in.LogGroupNamePrefix != "" && !strings.HasPrefix(name, in.LogGroupNamePrefix) ||
			in.LogGroupNamePattern != "" && !strings.Contains(name, in.LogGroupNamePattern) {
			return
		}
		g, seen := byName[name]
		if !seen || created.UnixMilli() < g.CreationTime {
			g = logGroupOut{LogGroupName: name, CreationTime: created.UnixMilli(), ARN: s.groupARN(name) + ":*",
				LogGroupARN: s.groupARN(name), LogGroupClass: "STANDARD"}
		}
		if pol, ok := ret[name]; ok {
			g.RetentionInDays = &pol.Days
		}
		byName[name] = g
	}
	for _, g := range groups {
		add(g.Name, g.First)
	}
	for name, pol := range ret {
		// A group whose records have all expired: it dates from its policy, at the latest.
		add(name, pol.Set)
	}
	out := &describeLogGroupsOutput{LogGroups: []logGroupOut{}}
	names := make([]string, 0, len(byName))
	for n := range byName {
		if n > after {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for i, n := range names {
		if i == limit {
			out.NextToken = encodeToken("g", names[i-1])
			break
		}
		out.LogGroups = append(out.LogGroups, byName[n])
	}
	return out, nil
}

// DescribeLogStreams

type describeLogStreamsInput struct {
	LogGroupName        string `json:"logGroupName"`
	LogGroupIdentifier  string `json:"logGroupIdentifier"`
	LogStreamNamePrefix string `json:"logStreamNamePrefix"`
	OrderBy             string `json:"orderBy"`
	Descending          bool   `json:"descending"`
	NextToken           string `json:"nextToken"`
	Limit               *int   `json:"limit"`
}

type logStreamOut struct {
	LogStreamName       string `json:"logStreamName"`
	CreationTime        int64  `json:"creationTime"`
	FirstEventTimestamp int64  `json:"firstEventTimestamp"`
	LastEventTimestamp  int64  `json:"lastEventTimestamp"`
	LastIngestionTime   int64  `json:"lastIngestionTime"`
	ARN                 string `json:"arn"`
	StoredBytes         int64  `json:"storedBytes"`
}

type describeLogStreamsOutput struct {
	LogStreams []logStreamOut `json:"logStreams"`
	NextToken  string         `json:"nextToken,omitempty"`
}

func (s *Service) describeLogStreams(ctx context.Context, in *describeLogStreamsInput) (*describeLogStreamsOutput, error) {
	switch in.OrderBy {
	case "", "LogStreamName", "LastEventTime":
	default:
		return nil, errInvalid("1 validation error detected: Value '%s' at 'orderBy' failed to satisfy constraint: Member must satisfy enum value set: [LogStreamName, LastEventTime]", in.OrderBy)
	}
	if in.OrderBy == "LastEventTime" && in.LogStreamNamePrefix != "" {
		return nil, errInvalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
	}
	limit, err := limitOf(in.Limit, 50)
	if err != nil {
		return nil, err
	}
	offTok, err := decodeToken(in.NextToken, "s")
	if err != nil {
		return nil, err
	}
	offset := 0
	if offTok != "" {
		if offset, err = strconv.Atoi(offTok); err != nil || offset < 0 {
			return nil, errBadToken()
		}
	}
	g, err := s.groupOf(ctx, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	streams := map[string]*logStreamOut{}
	cut := s.cut(g.retention).UnixMilli()
	err = s.store.ScanGroup(ctx, g.name, s.fromTime(g, 0), func(r logs.Record) bool {
		for _, e := range events(r) {
			if e.ts < cut || in.LogStreamNamePrefix != "" && !strings.HasPrefix(e.stream, in.LogStreamNamePrefix) {
				continue
			}
			st := streams[e.stream]
			if st == nil {
				st = &logStreamOut{LogStreamName: e.stream, CreationTime: e.ts, FirstEventTimestamp: e.ts,
					ARN: s.groupARN(g.name) + ":log-stream:" + e.stream}
				streams[e.stream] = st
			}
			st.FirstEventTimestamp = min(st.FirstEventTimestamp, e.ts)
			st.CreationTime = st.FirstEventTimestamp
			st.LastEventTimestamp = max(st.LastEventTimestamp, e.ts)
			st.LastIngestionTime = max(st.LastIngestionTime, e.ingest)
		}
		return true
	})
	if err != nil {
		return nil, errInternal(err)
	}
	list := make([]logStreamOut, 0, len(streams))
	for _, st := range streams {
		list = append(list, *st)
	}
	slices.SortFunc(list, func(a, b logStreamOut) int {
		if in.OrderBy == "LastEventTime" && a.LastEventTimestamp != b.LastEventTimestamp {
			return cmpInt(a.LastEventTimestamp, b.LastEventTimestamp)
		}
		return strings.Compare(a.LogStreamName, b.LogStreamName)
	})
	if in.Descending {
		slices.Reverse(list)
	}
	out := &describeLogStreamsOutput{LogStreams: []logStreamOut{}}
	if offset < len(list) {
		list = list[offset:]
		if len(list) > limit {
			list = list[:limit]
			out.NextToken = encodeToken("s", strconv.Itoa(offset+limit))
		}
		out.LogStreams = list
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fromTime is where a scan for events at or after startTime (ms, 0: none) in g begins.
func (s *Service) fromTime(g *group, startTime int64) logs.From {
	t := s.cut(g.retention)
	if startTime > 0 {
		if st := time.UnixMilli(startTime); st.After(t) {
			t = st
		}
	}
	if t.IsZero() {
		return logs.From{}
	}
	return logs.From{Time: t.Add(-timeSlack)}
}

// GetLogEvents

type getLogEventsInput struct {
	LogGroupName       string `json:"logGroupName"`
	LogGroupIdentifier string `json:"logGroupIdentifier"`
	LogStreamName      string `json:"logStreamName"`
	StartTime          *int64 `json:"startTime"`
	EndTime            *int64 `json:"endTime"`
	NextToken          string `json:"nextToken"`
	Limit              *int   `json:"limit"`
	StartFromHead      *bool  `json:"startFromHead"`
}

type outputEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

type getLogEventsOutput struct {
	Events            []outputEvent `json:"events"`
	NextForwardToken  string        `json:"nextForwardToken"`
	NextBackwardToken string        `json:"nextBackwardToken"`
}

// Stream tokens: "f/<36 digits of sequence><20 digits of line>/s" reads forward from that
// position, "b/…/s" backward from it (the event there excluded).
func streamToken(dir byte, p pos) string { return string(dir) + "/" + p.id() + "/s" }

func parseStreamToken(tok string) (dir byte, p pos, err error) {
	if len(tok) != 2+56+2 || tok[1] != '/' || tok[58:] != "/s" || tok[0] != 'f' && tok[0] != 'b' {
		return 0, pos{}, errBadToken()
	}
	seq, err1 := strconv.ParseUint(tok[2:38], 10, 64)
	line, err2 := strconv.Atoi(tok[38:58])
	if err1 != nil || err2 != nil || line < 0 {
		return 0, pos{}, errBadToken()
	}
	return tok[0], pos{seq, line}, nil
}

func (s *Service) getLogEvents(ctx context.Context, in *getLogEventsInput) (*getLogEventsOutput, error) {
	if in.LogStreamName == "" {
		return nil, errInvalid("1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null")
	}
	limit, err := limitOf(in.Limit, maxEvents)
	if err != nil {
		return nil, err
	}
	var dir byte
	var at pos
	if in.NextToken != "" {
		if dir, at, err = parseStreamToken(in.NextToken); err != nil {
			return nil, err
		}
	} else if in.StartFromHead != nil && *in.StartFromHead {
		dir = 'h' // from the head
	}
	g, err := s.groupOf(ctx, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	cut := s.cut(g.retention).UnixMilli()
	lo, hi := window(in.StartTime, in.EndTime)
	from := logs.From{}
	if dir == 'f' {
		from.Seq = max(at.seq, 1)
	}
	var got []event
	var bytes int
	found := false
	var end pos // just past the last event read
	err = s.store.ScanGroup(ctx, g.name, from, func(r logs.Record) bool {
		end = pos{r.Seq + 1, 0}
		for _, e := range events(r) {
			if e.stream != in.LogStreamName || e.ts < cut {
				continue
			}
			found = true
			if e.ts < lo || e.ts >= hi {
				continue
			}
			switch dir {
			case 'f':
				if e.pos.less(at) {
					continue
				}
			case 'b':
				if !e.pos.less(at) {
					return false
				}
			}
			got = append(got, e)
			bytes += len(e.msg) + 26
			if dir == 'f' || dir == 'h' {
				if len(got) >= limit || bytes >= maxEventBytes {
					return false
				}
				continue
			}
			// Backward and tail reads keep the newest limit events.
			for len(got) > limit || bytes > maxEventBytes && len(got) > 1 {
				bytes -= len(got[0].msg) + 26
				got = got[1:]
			}
		}
		return true
	})
	if err != nil {
		return nil, errInternal(err)
	}
	if !found && in.NextToken == "" && !s.streamExists(ctx, g, in.LogStreamName) {
		return nil, errNoStream()
	}
	out := &getLogEventsOutput{Events: make([]outputEvent, 0, len(got))}
	for _, e := range got {
		out.Events = append(out.Events, outputEvent{Timestamp: e.ts, Message: e.msg, IngestionTime: e.ingest})
	}
	switch {
	case len(got) > 0:
		last := got[len(got)-1].pos
		out.NextForwardToken = streamToken('f', pos{last.seq, last.line + 1})
		out.NextBackwardToken = streamToken('b', got[0].pos)
	case in.NextToken != "":
		// At either end AWS answers with the token it was given.
		out.NextForwardToken, out.NextBackwardToken = streamToken('f', at), streamToken('b', at)
	default:
		out.NextForwardToken, out.NextBackwardToken = streamToken('f', end), streamToken('b', end)
	}
	return out, nil
}

// streamExists reports whether g has a stream named name (with events outside the retention
// too: it is a rare path, for the error).
func (s *Service) streamExists(ctx context.Context, g *group, name string) bool {
	found := false
	_ = s.store.ScanGroup(ctx, g.name, logs.From{}, func(r logs.Record) bool {
		for _, e := range events(r) {
			if e.stream == name {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// FilterLogEvents

type filterLogEventsInput struct {
	LogGroupName        string   `json:"logGroupName"`
	LogGroupIdentifier  string   `json:"logGroupIdentifier"`
	LogStreamNames      []string `json:"logStreamNames"`
	LogStreamNamePrefix string   `json:"logStreamNamePrefix"`
	StartTime           *int64   `json:"startTime"`
	EndTime             *int64   `json:"endTime"`
	FilterPattern       *string  `json:"filterPattern"`
	NextToken           string   `json:"nextToken"`
	Limit               *int     `json:"limit"`
	Interleaved         *bool    `json:"interleaved"` // deprecated: results are always interleaved
}

type filteredEvent struct {
	LogStreamName string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

type filterLogEventsOutput struct {
	Events    []filteredEvent `json:"events"`
	NextToken string          `json:"nextToken,omitempty"`
}

func (s *Service) filterLogEvents(ctx context.Context, in *filterLogEventsInput) (*filterLogEventsOutput, error) {
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != "" {
		return nil, errInvalid("You cannot specify both logStreamNames and logStreamNamePrefix.")
	}
	if len(in.LogStreamNames) > 100 {
		return nil, errInvalid("1 validation error detected: Value at 'logStreamNames' failed to satisfy constraint: Member must have length less than or equal to 100")
	}
	limit, err := limitOf(in.Limit, maxEvents)
	if err != nil {
		return nil, err
	}
	pattern := &Pattern{}
	if in.FilterPattern != nil {
		if len(*in.FilterPattern) > 1024 {
			return nil, errInvalid("1 validation error detected: Value at 'filterPattern' failed to satisfy constraint: Member must have length less than or equal to 1024")
		}
		if pattern, err = ParsePattern(*in.FilterPattern); err != nil {
			return nil, errInvalid("Invalid filter pattern: %s", strings.TrimPrefix(err.Error(), errPattern.Error()+": "))
		}
	}
	var at pos
	if in.NextToken != "" {
		t, err := decodeToken(in.NextToken, "e")
		if err != nil {
			return nil, err
		}
		seq, line, ok := strings.Cut(t, "/")
		var e1, e2 error
		at.seq, e1 = strconv.ParseUint(seq, 10, 64)
		at.line, e2 = strconv.Atoi(line)
		if !ok || e1 != nil || e2 != nil || at.seq == 0 || at.line < 0 {
			return nil, errBadToken()
		}
	}
	g, err := s.groupOf(ctx, in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	cut := s.cut(g.retention).UnixMilli()
	lo, hi := window(in.StartTime, in.EndTime)
	from := logs.From{Seq: at.seq}
	if at.seq == 0 {
		from = s.fromTime(g, max(lo, 0))
	}
	out := &filterLogEventsOutput{Events: []filteredEvent{}}
	bytes := 0
	err = s.store.ScanGroup(ctx, g.name, from, func(r logs.Record) bool {
		for _, e := range events(r) {
			if e.pos.less(at) || e.ts < cut || e.ts < lo || e.ts >= hi ||
				len(in.LogStreamNames) > 0 && !slices.Contains(in.LogStreamNames, e.stream) ||
				in.LogStreamNamePrefix != "" && !strings.HasPrefix(e.stream, in.LogStreamNamePrefix) ||
				!pattern.Match(e.msg) {
				continue
			}
			if len(out.Events) >= limit || bytes+len(e.msg) > maxEventBytes && len(out.Events) > 0 {
				out.NextToken = encodeToken("e", fmt.Sprintf("%d/%d", e.pos.seq, e.pos.line))
				return false
			}
			bytes += len(e.msg)
			out.Events = append(out.Events, filteredEvent{LogStreamName: e.stream, Timestamp: e.ts, Message: e.msg,
				IngestionTime: e.ingest, EventID: e.pos.id()})
		}
		return true
	})
	if err != nil {
		return nil, errInternal(err)
	}
	return out, nil
}

// Retention and deletion

type retentionInput struct {
	LogGroupName    string `json:"logGroupName"`
	RetentionInDays *int   `json:"retentionInDays"`
}

type empty struct{}

func (s *Service) putRetentionPolicy(ctx context.Context, in *retentionInput) (*empty, error) {
	if in.RetentionInDays == nil {
		return nil, errInvalid("1 validation error detected: Value null at 'retentionInDays' failed to satisfy constraint: Member must not be null")
	}
	days := *in.RetentionInDays
	if !slices.Contains(retentionDays, days) {
		list := make([]string, len(retentionDays))
		for i, d := range retentionDays {
			list[i] = strconv.Itoa(d)
		}
		return nil, errInvalid("1 validation error detected: Value '%d' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [%s]", days, strings.Join(list, ", "))
	}
	g, err := s.groupOf(ctx, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	if err := s.store.SetRetention(ctx, g.name, days); err != nil {
		return nil, errInternal(err)
	}
	// Applied at once: what is older is not returned from now on, and leaves JetStream now.
	if err := s.store.Expire(ctx, g.name, s.cut(days)); err != nil {
		s.log.Warn("expire function logs", "log_group", g.name, "err", err)
	}
	return &empty{}, nil
}

func (s *Service) deleteRetentionPolicy(ctx context.Context, in *retentionInput) (*empty, error) {
	g, err := s.groupOf(ctx, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	if err := s.store.SetRetention(ctx, g.name, 0); err != nil {
		return nil, errInternal(err)
	}
	return &empty{}, nil
}

func (s *Service) deleteLogGroup(ctx context.Context, in *retentionInput) (*empty, error) {
	g, err := s.groupOf(ctx, in.LogGroupName, "")
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteGroup(ctx, g.name); err != nil {
		return nil, errInternal(err)
	}
	return &empty{}, nil
}

// Helpers

func limitOf(limit *int, max int) (int, error) {
	if limit == nil {
		return max, nil
	}
	if *limit < 1 || *limit > max {
		return 0, errInvalid("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", *limit, max)
	}
	return *limit, nil
}

// Pagination tokens are opaque to callers: base64 of "<kind>:<value>".
func encodeToken(kind, v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + v))
}

func decodeToken(tok, kind string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", errBadToken()
	}
	v, ok := strings.CutPrefix(string(b), kind+":")
	if !ok {
		return "", errBadToken()
	}
	return v, nil
}

func errBadToken() error { return errInvalid("The specified nextToken is invalid.") }

// window is a request's time range in epoch milliseconds: from start, before end; an absent
// bound is open.
func window(start, end *int64) (lo, hi int64) {
	lo, hi = -1<<63, 1<<63-1
	if start != nil {
		lo = *start
	}
	if end != nil {
		hi = *end
	}
	return lo, hi
}
