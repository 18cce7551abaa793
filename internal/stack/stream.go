// The stack's Kinesis streams through the Kinesis API: created with their shards and the
// flint:stack tag, their retention brought to the template's. Flint does not reshard, so a
// template that changes a deployed stream's shard count or mode is refused before anything is
// deployed.

package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Stream is a Kinesis stream (AWS::Kinesis::Stream).
type Stream struct {
	// Name is the stream's Name; "" names it <stack>-<logical ID>.
	Name string
	// Shards is ShardCount; nil with Mode "" is an on-demand stream.
	Shards *int32
	// Mode is StreamModeDetails.StreamMode: PROVISIONED, ON_DEMAND or "".
	Mode string
	// RetentionHours is RetentionPeriodHours (nil: 24).
	RetentionHours *int32
	Tags           map[string]string
}

func (s *Stream) name(stackName, id string) string {
	if s.Name != "" {
		return s.Name
	}
	return truncate(stackName+"-"+id, 64)
}

// mode is the stream's capacity mode as Kinesis reports it.
func (s *Stream) mode() ktypes.StreamMode {
	switch {
	case s.Mode != "":
		return ktypes.StreamMode(s.Mode)
	case s.Shards != nil:
		return ktypes.StreamModeProvisioned
	}
	return ktypes.StreamModeOnDemand
}

func isNoStream(err error) bool {
	var nf *ktypes.ResourceNotFoundException
	var ae smithy.APIError
	return errors.As(err, &nf) || (errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException")
}

// describeStream returns stream name's summary, nil when it does not exist.
func (d *Deployer) describeStream(ctx context.Context, name string) (*ktypes.StreamDescriptionSummary, error) {
	out, err := d.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if isNoStream(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return out.StreamDescriptionSummary, nil
}

// checkStreams refuses, before anything changes, a template that would reshard a deployed
// stream or change its mode, or whose stream is another stack's.
func (d *Deployer) checkStreams(ctx context.Context, st *Stack) error {
	for _, id := range sortedKeys(st.Streams) {
		s := st.Streams[id]
		name := s.name(st.Name, id)
		cur, err := d.describeStream(ctx, name)
		if err != nil {
			return err
		}
		if cur == nil {
			continue
		}
		tags, err := d.streamTags(ctx, name)
		if err != nil {
			return err
		}
		if err := ownerError("stream", name, tags, st.Name); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		var mode ktypes.StreamMode
		if cur.StreamModeDetails != nil {
			mode = cur.StreamModeDetails.StreamMode
		}
		if mode != s.mode() {
			return fmt.Errorf("%s: stream %s is %s; Flint cannot change a stream's mode (delete the stream or rename it)", id, name, mode)
		}
		if s.Shards != nil && aws.ToInt32(cur.OpenShardCount) != *s.Shards {
			return fmt.Errorf("%s: stream %s has %d shards; Flint cannot reshard a stream (delete the stream or rename it)",
				id, name, aws.ToInt32(cur.OpenShardCount))
		}
	}
	return nil
}

// stream creates or updates stream id and records its references.
func (d *Deployer) stream(ctx context.Context, res *Result, st *Stack, id string, r refs) error {
	s := st.Streams[id]
	name := s.name(st.Name, id)
	tags := maps.Clone(s.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[StackTag] = st.Name
	cur, err := d.describeStream(ctx, name)
	if err != nil {
		return err
	}
	retention := int32(24)
	if s.RetentionHours != nil {
		retention = *s.RetentionHours
	}
	var what []string
	created := cur == nil
	if created {
		in := &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: s.Shards, Tags: tags}
		if s.Mode != "" {
			in.StreamModeDetails = &ktypes.StreamModeDetails{StreamMode: ktypes.StreamMode(s.Mode)}
		}
		if _, err := d.Kinesis.CreateStream(ctx, in); err != nil {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
		if cur, err = d.describeStream(ctx, name); err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("stream %s: created, then not found", name)
		}
	}
	if h := aws.ToInt32(cur.RetentionPeriodHours); h != retention {
		var err error
		if h < retention {
			_, err = d.Kinesis.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{
				StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(retention)})
		} else {
			_, err = d.Kinesis.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{
				StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(retention)})
		}
		if err != nil {
			return fmt.Errorf("stream %s: retention: %w", name, err)
		}
		what = append(what, "retention")
	}
	if !created {
		have, err := d.streamTags(ctx, name)
		if err != nil {
			return err
		}
		if add := tagsToSet(have, tags); len(add) > 0 {
			if _, err := d.Kinesis.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String(name), Tags: add}); err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			what = append(what, "tags")
		}
	}
	r.set(id, name, map[string]string{"Arn": aws.ToString(cur.StreamARN)})
	if created {
		detail := string(s.mode())
		if s.Shards != nil {
			detail = fmt.Sprintf("%d shards", *s.Shards)
		}
		d.change(res, Change{Kind: "stream", Name: name, Action: "created", Detail: detail})
	} else if len(what) > 0 {
		d.change(res, Change{Kind: "stream", Name: name, Action: "updated", Detail: strings.Join(what, ", ")})
	}
	return nil
}

func (d *Deployer) streamTags(ctx context.Context, name string) (map[string]string, error) {
	out, err := d.Kinesis.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	have := map[string]string{}
	for _, t := range out.Tags {
		have[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return have, nil
}

// stackStreams are the names of the streams tagged with the stack's name.
func (d *Deployer) stackStreams(ctx context.Context, stackName string) ([]string, error) {
	var out []string
	p := kinesis.NewListStreamsPaginator(d.Kinesis, &kinesis.ListStreamsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		for _, name := range page.StreamNames {
			tags, err := d.streamTags(ctx, name)
			if isNoStream(errors.Unwrap(err)) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if tags[StackTag] == stackName {
				out = append(out, name)
			}
		}
	}
	return out, nil
}
