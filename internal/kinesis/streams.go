package kinesis

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/esm"
)

// Stream metadata keys beside esm.ShardsMetadata.
const (
	metaMode    = "flint.kinesis.mode"
	metaCreated = "flint.kinesis.created" // Unix milliseconds
	metaTags    = "flint.kinesis.tags"    // JSON object
)

const (
	defaultRetention = 24 * time.Hour
	minRetentionH    = 24
	maxRetentionH    = 8760
	onDemandShards   = 4
	maxShards        = 500 // AWS's default shard quota; a mapping runs lanes for each
)

var (
	// awsNameRE is what Kinesis accepts as a stream name; flintNameRE what a JetStream stream
	// and a subject token can hold (no dots).
	awsNameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`) })
	flintNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`) })
	arnRE       = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:[a-z0-9-]*:\d{0,12}:stream/(.+)$`)
	})
)

// stream is a Kinesis stream as its JetStream stream describes it.
type stream struct {
	name      string
	shards    esm.Shards
	mode      string // PROVISIONED or ON_DEMAND
	created   time.Time
	retention time.Duration
	tags      map[string]string
	st        jetstream.Stream
	info      *jetstream.StreamInfo
}

func (s *Service) arn(name string) string { return esm.KinesisARN(s.region, s.account, name) }

// nameOf resolves a request's StreamName or StreamARN.
func nameOf(name, arn string) (string, error) {
	if arn != "" {
		m := arnRE().FindStringSubmatch(arn)
		if m == nil {
			return "", errValidation("Value '%s' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+", arn)
		}
		if name != "" && name != m[1] {
			return "", errInvalid("StreamARN %s and StreamName %s name different streams.", arn, name)
		}
		name = m[1]
	}
	if name == "" {
		return "", errInvalid("Either StreamName or StreamARN must be provided.")
	}
	if !awsNameRE().MatchString(name) {
		return "", errValidation("Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", name)
	}
	return name, nil
}

// load reads stream name; ResourceNotFoundException when there is no such Kinesis stream.
func (s *Service) load(ctx context.Context, name string) (*stream, error) {
	if !flintNameRE().MatchString(name) || asyncq.ReservedStreamName(name) {
		return nil, s.errNoStream(name)
	}
	st, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, s.errNoStream(name)
	}
	if err != nil {
		return nil, errInternal(err)
	}
	info := st.CachedInfo()
	k := describe(info)
	if k == nil {
		return nil, s.errNoStream(name)
	}
	k.st = st
	return k, nil
}

// describe reads a Kinesis stream from its JetStream info (nil: not a Kinesis stream).
func describe(info *jetstream.StreamInfo) *stream {
	meta := info.Config.Metadata
	n := esm.StreamShards(meta)
	if n == 0 {
		return nil
	}
	k := &stream{name: info.Config.Name, shards: esm.NewShards(n), mode: meta[metaMode], info: info,
		retention: info.Config.MaxAge, created: info.Created}
	if ms, err := strconv.ParseInt(meta[metaCreated], 10, 64); err == nil {
		k.created = time.UnixMilli(ms)
	}
	if k.mode == "" {
		k.mode = "PROVISIONED"
	}
	_ = json.Unmarshal([]byte(meta[metaTags]), &k.tags)
	return k
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

type modeDetails struct {
	StreamMode string `json:"StreamMode"`
}

// CreateStream

type createStreamInput struct {
	StreamName        string            `json:"StreamName"`
	ShardCount        *int              `json:"ShardCount"`
	StreamModeDetails *modeDetails      `json:"StreamModeDetails"`
	Tags              map[string]string `json:"Tags"`
}

func (s *Service) createStream(ctx context.Context, in *createStreamInput) (struct{}, error) {
	none := struct{}{}
	if in.StreamName == "" {
		return none, errValidation("Value null at 'streamName' failed to satisfy constraint: Member must not be null")
	}
	if _, err := nameOf(in.StreamName, ""); err != nil {
		return none, err
	}
	if !flintNameRE().MatchString(in.StreamName) {
		return none, errInvalid("Flint stream names are 1 to 64 characters of [a-zA-Z0-9_-] (no dots: a name is a JetStream stream name and a subject token): %s", in.StreamName)
	}
	if asyncq.ReservedStreamName(in.StreamName) {
		return none, errInvalid("Stream names starting FLINT_, KV_ or OBJ_ are Flint's own streams: %s", in.StreamName)
	}
	mode := "PROVISIONED"
	if in.ShardCount == nil {
		mode = "ON_DEMAND" // neither a shard count nor a mode: on-demand, as Kinesis now does
	}
	if in.StreamModeDetails != nil {
		switch in.StreamModeDetails.StreamMode {
		case "PROVISIONED", "ON_DEMAND":
			mode = in.StreamModeDetails.StreamMode
		default:
			return none, errValidation("Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]", in.StreamModeDetails.StreamMode)
		}
	}
	n := onDemandShards
	switch {
	case mode == "ON_DEMAND" && in.ShardCount != nil:
		return none, errInvalid("ShardCount cannot be specified for a stream in ON_DEMAND mode.")
	case mode == "PROVISIONED" && in.ShardCount == nil:
		return none, errInvalid("ShardCount is required for a stream in PROVISIONED mode.")
	case in.ShardCount != nil:
		n = *in.ShardCount
		if n < 1 {
			return none, errValidation("Value '%d' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", n)
		}
		if n > maxShards {
			return none, kinesisError("LimitExceededException", "This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d (Flint's), requested %d.", s.account, s.region, maxShards, n)
		}
	}
	if len(in.Tags) > 50 {
		return none, errValidation("Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	meta := map[string]string{esm.ShardsMetadata: strconv.Itoa(n), metaMode: mode,
		metaCreated: strconv.FormatInt(s.now().UnixMilli(), 10)}
	if len(in.Tags) > 0 {
		b, _ := json.Marshal(in.Tags)
		meta[metaTags] = string(b)
	}
	cfg := jetstream.StreamConfig{Name: in.StreamName, Subjects: []string{esm.StreamSubject(in.StreamName) + ".>"},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, MaxAge: defaultRetention,
		Duplicates: 2 * time.Minute, Description: "Kinesis stream (Flint stream: mappings read it)", Metadata: meta}
	st, err := s.js.Stream(ctx, in.StreamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = s.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return none, s.errInUse(in.StreamName)
		}
	case err != nil:
	default:
		// A Flint stream already (a mapping or a destination made it): it becomes a Kinesis
		// stream, keeping its records and its other subjects. A queue cannot.
		old := st.CachedInfo().Config
		if describe(st.CachedInfo()) != nil || old.Retention != jetstream.LimitsPolicy {
			return none, s.errInUse(in.StreamName)
		}
		for _, sub := range old.Subjects {
			if !slices.Contains(cfg.Subjects, sub) {
				cfg.Subjects = append(cfg.Subjects, sub)
			}
		}
		cfg.Description = old.Description
		_, err = s.js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return none, errInternal(err)
	}
	return none, nil
}

// DescribeStream, DescribeStreamSummary, ListShards

type streamRef struct {
	StreamName string `json:"StreamName"`
	StreamARN  string `json:"StreamARN"`
}

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type seqRange struct {
	StartingSequenceNumber string `json:"StartingSequenceNumber"`
}

type shardOut struct {
	ShardId             string       `json:"ShardId"`
	HashKeyRange        hashKeyRange `json:"HashKeyRange"`
	SequenceNumberRange seqRange     `json:"SequenceNumberRange"`
}

type monitoring struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

func (k *stream) shard(i int) shardOut {
	lo, hi := k.shards.Range(i)
	return shardOut{ShardId: esm.ShardID(i), HashKeyRange: hashKeyRange{lo.String(), hi.String()},
		SequenceNumberRange: seqRange{esm.SequenceNumber(max(k.info.State.FirstSeq, 1))}}
}

// shardIndex reads a ShardId ("shardId-000000000003", or "3" as Kinesis also takes).
func (k *stream) shardIndex(id string) (int, bool) {
	d := strings.TrimPrefix(id, "shardId-")
	if d == "" || len(d) > 12 || strings.TrimLeft(d, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.Atoi(d)
	return i, err == nil && i < k.shards.N
}

type describeStreamInput struct {
	streamRef
	Limit                 *int   `json:"Limit"`
	ExclusiveStartShardId string `json:"ExclusiveStartShardId"`
}

type streamDescription struct {
	StreamName              string       `json:"StreamName"`
	StreamARN               string       `json:"StreamARN"`
	StreamStatus            string       `json:"StreamStatus"`
	StreamModeDetails       modeDetails  `json:"StreamModeDetails"`
	Shards                  []shardOut   `json:"Shards"`
	HasMoreShards           bool         `json:"HasMoreShards"`
	RetentionPeriodHours    int          `json:"RetentionPeriodHours"`
	StreamCreationTimestamp float64      `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []monitoring `json:"EnhancedMonitoring"`
	EncryptionType          string       `json:"EncryptionType"`
}

func (s *Service) describeStream(ctx context.Context, in *describeStreamInput) (any, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 10000 {
			return nil, errValidation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000", *in.Limit)
		}
		limit = *in.Limit
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	from := 0
	if in.ExclusiveStartShardId != "" {
		if i, ok := k.shardIndex(in.ExclusiveStartShardId); ok {
			from = i + 1
		} else {
			from = k.shards.N
		}
	}
	d := streamDescription{StreamName: name, StreamARN: s.arn(name), StreamStatus: "ACTIVE",
		StreamModeDetails: modeDetails{k.mode}, Shards: []shardOut{}, RetentionPeriodHours: int(k.retention / time.Hour),
		StreamCreationTimestamp: epoch(k.created), EnhancedMonitoring: []monitoring{{ShardLevelMetrics: []string{}}}, EncryptionType: "NONE"}
	for i := from; i < k.shards.N && len(d.Shards) < limit; i++ {
		d.Shards = append(d.Shards, k.shard(i))
	}
	d.HasMoreShards = from+len(d.Shards) < k.shards.N
	return map[string]any{"StreamDescription": d}, nil
}

func (s *Service) describeStreamSummary(ctx context.Context, in *streamRef) (any, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"StreamDescriptionSummary": map[string]any{
		"StreamName": name, "StreamARN": s.arn(name), "StreamStatus": "ACTIVE", "StreamModeDetails": modeDetails{k.mode},
		"RetentionPeriodHours": int(k.retention / time.Hour), "StreamCreationTimestamp": epoch(k.created),
		"EnhancedMonitoring": []monitoring{{ShardLevelMetrics: []string{}}}, "EncryptionType": "NONE",
		"OpenShardCount": k.shards.N, "ConsumerCount": 0,
	}}, nil
}

type listShardsInput struct {
	streamRef
	NextToken             string `json:"NextToken"`
	MaxResults            *int   `json:"MaxResults"`
	ExclusiveStartShardId string `json:"ExclusiveStartShardId"`
}

func (s *Service) listShards(ctx context.Context, in *listShardsInput) (any, error) {
	if in.NextToken != "" && (in.StreamName != "" || in.StreamARN != "" || in.ExclusiveStartShardId != "") {
		return nil, errInvalid("NextToken and StreamName cannot be provided together.")
	}
	limit := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10000 {
			return nil, errValidation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 10000", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	ref, start := in.streamRef, in.ExclusiveStartShardId
	if in.NextToken != "" {
		var tok struct{ Name, After string }
		if b, err := decodeToken(in.NextToken); err != nil || json.Unmarshal(b, &tok) != nil {
			return nil, errInvalid("Invalid NextToken.")
		}
		ref, start = streamRef{StreamName: tok.Name}, tok.After
	}
	name, err := nameOf(ref.StreamName, ref.StreamARN)
	if err != nil {
		return nil, err
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	from := 0
	if start != "" {
		if i, ok := k.shardIndex(start); ok {
			from = i + 1
		} else {
			from = k.shards.N
		}
	}
	out := []shardOut{}
	for i := from; i < k.shards.N && len(out) < limit; i++ {
		out = append(out, k.shard(i))
	}
	resp := map[string]any{"Shards": out}
	if from+len(out) < k.shards.N {
		b, _ := json.Marshal(struct{ Name, After string }{name, out[len(out)-1].ShardId})
		resp["NextToken"] = encodeToken(b)
	}
	return resp, nil
}

// ListStreams

type listStreamsInput struct {
	Limit                    *int   `json:"Limit"`
	ExclusiveStartStreamName string `json:"ExclusiveStartStreamName"`
	NextToken                string `json:"NextToken"`
}

func (s *Service) listStreams(ctx context.Context, in *listStreamsInput) (any, error) {
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 10000 {
			return nil, errValidation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000", *in.Limit)
		}
		limit = *in.Limit
	}
	after := in.ExclusiveStartStreamName
	if in.NextToken != "" {
		b, err := decodeToken(in.NextToken)
		if err != nil {
			return nil, kinesisError("ExpiredNextTokenException", "Invalid NextToken.")
		}
		after = string(b)
	}
	var all []*stream
	lister := s.js.ListStreams(ctx)
	for info := range lister.Info() {
		if k := describe(info); k != nil && k.name > after {
			all = append(all, k)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, errInternal(err)
	}
	slices.SortFunc(all, func(a, b *stream) int { return strings.Compare(a.name, b.name) })
	more := len(all) > limit
	all = all[:min(limit, len(all))]
	names, sums := []string{}, []map[string]any{}
	for _, k := range all {
		names = append(names, k.name)
		sums = append(sums, map[string]any{"StreamName": k.name, "StreamARN": s.arn(k.name), "StreamStatus": "ACTIVE",
			"StreamModeDetails": modeDetails{k.mode}, "StreamCreationTimestamp": epoch(k.created)})
	}
	resp := map[string]any{"StreamNames": names, "StreamSummaries": sums, "HasMoreStreams": more}
	if more {
		resp["NextToken"] = encodeToken([]byte(names[len(names)-1]))
	}
	return resp, nil
}

// DeleteStream

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion bool `json:"EnforceConsumerDeletion"`
}

func (s *Service) deleteStream(ctx context.Context, in *deleteStreamInput) (struct{}, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return struct{}{}, err
	}
	if _, err := s.load(ctx, name); err != nil {
		return struct{}{}, err
	}
	if err := s.js.DeleteStream(ctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
		return struct{}{}, s.errNoStream(name)
	} else if err != nil {
		return struct{}{}, errInternal(err)
	}
	return struct{}{}, nil
}

// IncreaseStreamRetentionPeriod, DecreaseStreamRetentionPeriod

type retentionInput struct {
	streamRef
	RetentionPeriodHours *int `json:"RetentionPeriodHours"`
}

func (s *Service) increaseRetention(ctx context.Context, in *retentionInput) (struct{}, error) {
	return struct{}{}, s.setRetention(ctx, in, true)
}

func (s *Service) decreaseRetention(ctx context.Context, in *retentionInput) (struct{}, error) {
	return struct{}{}, s.setRetention(ctx, in, false)
}

func (s *Service) setRetention(ctx context.Context, in *retentionInput, increase bool) error {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.RetentionPeriodHours == nil {
		return errValidation("Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null")
	}
	h := *in.RetentionPeriodHours
	if h < minRetentionH {
		return errInvalid("Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionH, h)
	}
	if h > maxRetentionH {
		return errInvalid("Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionH, h)
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return err
	}
	cur := int(k.retention / time.Hour)
	if increase && h < cur {
		return errInvalid("Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, name, cur)
	}
	if !increase && h > cur {
		return errInvalid("Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, name, cur)
	}
	cfg := k.info.Config
	cfg.MaxAge = time.Duration(h) * time.Hour
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		return errInternal(err)
	}
	return nil
}

// AddTagsToStream, ListTagsForStream, RemoveTagsFromStream: the tags live in the stream's
// metadata with the rest of its description.

const maxTags = 50

type addTagsInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

func (s *Service) addTags(ctx context.Context, in *addTagsInput) (struct{}, error) {
	if len(in.Tags) < 1 || len(in.Tags) > 10 {
		return struct{}{}, errValidation("Value at 'tags' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	return struct{}{}, s.retag(ctx, in.streamRef, func(tags map[string]string) {
		for k, v := range in.Tags {
			tags[k] = v
		}
	})
}

type removeTagsInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

func (s *Service) removeTags(ctx context.Context, in *removeTagsInput) (struct{}, error) {
	if len(in.TagKeys) < 1 || len(in.TagKeys) > 50 {
		return struct{}{}, errValidation("Value at 'tagKeys' failed to satisfy constraint: Member must have length between 1 and 50")
	}
	return struct{}{}, s.retag(ctx, in.streamRef, func(tags map[string]string) {
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
	})
}

// retag changes a stream's tags with change and stores them.
func (s *Service) retag(ctx context.Context, ref streamRef, change func(map[string]string)) error {
	name, err := nameOf(ref.StreamName, ref.StreamARN)
	if err != nil {
		return err
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return err
	}
	tags := map[string]string{}
	for key, v := range k.tags {
		tags[key] = v
	}
	change(tags)
	for key, v := range tags {
		if len(key) < 1 || len(key) > 128 || len(v) > 256 {
			return errInvalid("Tag keys are 1 to 128 characters and values at most 256: %q.", key)
		}
	}
	if len(tags) > maxTags {
		return kinesisError("LimitExceededException", "Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags.", name, s.account, maxTags)
	}
	cfg := k.info.Config
	meta := make(map[string]string, len(cfg.Metadata))
	for key, v := range cfg.Metadata {
		meta[key] = v
	}
	delete(meta, metaTags)
	if len(tags) > 0 {
		b, _ := json.Marshal(tags)
		meta[metaTags] = string(b)
	}
	cfg.Metadata = meta
	if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
		return errInternal(err)
	}
	return nil
}

type listTagsInput struct {
	streamRef
	ExclusiveStartTagKey string `json:"ExclusiveStartTagKey"`
	Limit                *int   `json:"Limit"`
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func (s *Service) listTags(ctx context.Context, in *listTagsInput) (any, error) {
	name, err := nameOf(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := maxTags
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxTags {
			return nil, errValidation("Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 50", *in.Limit)
		}
		limit = *in.Limit
	}
	k, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(k.tags))
	for key := range k.tags {
		if key > in.ExclusiveStartTagKey {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	out := []tag{}
	for _, key := range keys[:min(limit, len(keys))] {
		out = append(out, tag{key, k.tags[key]})
	}
	return map[string]any{"Tags": out, "HasMoreTags": len(keys) > limit}, nil
}
