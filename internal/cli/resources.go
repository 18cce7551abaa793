package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/spf13/cobra"
)

// mappingLag is one event source mapping's lag as GET /flint/v1/mappings/lag reports it.
type mappingLag struct {
	UUID           string        `json:"uuid"`
	FunctionArn    string        `json:"function_arn"`
	EventSourceArn string        `json:"event_source_arn"`
	Behind         uint64        `json:"behind"`
	OldestAge      time.Duration `json:"oldest_age_ns"`
}

// lags reads the mappings' lag, by event source ARN.
func (a *app) lags(ctx context.Context) (map[string][]mappingLag, error) {
	body, err := a.getFlint(ctx, "/flint/v1/mappings/lag", "the mappings' lag")
	if err != nil {
		return nil, err
	}
	var out struct {
		Mappings []mappingLag `json:"mappings"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode the mappings' lag: %w", err)
	}
	by := map[string][]mappingLag{}
	for _, l := range out.Mappings {
		by[l.EventSourceArn] = append(by[l.EventSourceArn], l)
	}
	return by, nil
}

// functionsOf names the functions mapped to a source, with each mapping's lag.
func functionsOf(ls []mappingLag) string {
	if len(ls) == 0 {
		return "-"
	}
	var parts []string
	for _, l := range ls {
		name := l.FunctionArn[strings.LastIndex(l.FunctionArn, ":function:")+len(":function:"):]
		parts = append(parts, fmt.Sprintf("%s (%d behind, oldest %s)", name, l.Behind, formatAge(l.OldestAge)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// queueRow is one line of flint queues.
type queueRow struct {
	Name       string       `json:"name"`
	URL        string       `json:"url"`
	Visible    int          `json:"messages"`
	InFlight   int          `json:"in_flight"`
	Delayed    int          `json:"delayed"`
	DeadLetter string       `json:"dead_letter_queue,omitempty"`
	Mappings   []mappingLag `json:"mappings"`
}

func (a *app) queuesCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "List the SQS queues with their depth and the functions they feed",
		Long: "List the queues made with the SQS API: MESSAGES waiting, IN-FLIGHT (received, not yet\n" +
			"deleted), DELAYED, the dead-letter queue of their redrive policy, and the functions mapped\n" +
			"to them with how many messages each mapping has not finished and the oldest one's age.\n" +
			"(The asynchronous invocation queue of Event invokes is `flint queue`.)",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.awsConfig(ctx)
			if err != nil {
				return err
			}
			endpoint := a.endpoint
			c := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
			lags, err := a.lags(ctx)
			if err != nil {
				return err
			}
			var rows []queueRow
			p := sqs.NewListQueuesPaginator(c, &sqs.ListQueuesInput{MaxResults: aws.Int32(1000)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, u := range page.QueueUrls {
					at, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
						AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
					if err != nil {
						return err
					}
					n := func(k string) int { v, _ := strconv.Atoi(at.Attributes[k]); return v }
					row := queueRow{Name: path.Base(u), URL: u, Visible: n("ApproximateNumberOfMessages"),
						InFlight: n("ApproximateNumberOfMessagesNotVisible"), Delayed: n("ApproximateNumberOfMessagesDelayed"),
						Mappings: lags[at.Attributes["QueueArn"]]}
					var rp struct {
						Target string `json:"deadLetterTargetArn"`
					}
					if json.Unmarshal([]byte(at.Attributes["RedrivePolicy"]), &rp) == nil && rp.Target != "" {
						row.DeadLetter = rp.Target[strings.LastIndex(rp.Target, ":")+1:]
					}
					rows = append(rows, row)
				}
			}
			return printRows(a.stdout, asJSON, "queues", rows, "QUEUE\tMESSAGES\tIN-FLIGHT\tDELAYED\tDEAD-LETTER\tFUNCTIONS",
				func(r queueRow) string {
					return fmt.Sprintf("%s\t%d\t%d\t%d\t%s\t%s", r.Name, r.Visible, r.InFlight, r.Delayed, orDashString(r.DeadLetter), functionsOf(r.Mappings))
				})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the queues as one JSON object")
	return cmd
}

// streamRow is one line of flint streams.
type streamRow struct {
	Name           string       `json:"name"`
	Status         string       `json:"status"`
	Mode           string       `json:"mode"`
	Shards         int32        `json:"shards"`
	RetentionHours int32        `json:"retention_hours"`
	Mappings       []mappingLag `json:"mappings"`
}

func (a *app) streamsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the Kinesis streams with the functions they feed and their lag",
		Long: "List the streams made with the Kinesis API: their shards, retention and mode, and the\n" +
			"functions mapped to them with how many records each mapping has not finished and the\n" +
			"oldest one's age.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.awsConfig(ctx)
			if err != nil {
				return err
			}
			endpoint := a.endpoint
			c := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
			lags, err := a.lags(ctx)
			if err != nil {
				return err
			}
			var rows []streamRow
			p := kinesis.NewListStreamsPaginator(c, &kinesis.ListStreamsInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, name := range page.StreamNames {
					d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
					if err != nil {
						return err
					}
					s := d.StreamDescriptionSummary
					row := streamRow{Name: name, Status: string(s.StreamStatus), Shards: aws.ToInt32(s.OpenShardCount),
						RetentionHours: aws.ToInt32(s.RetentionPeriodHours), Mappings: lags[aws.ToString(s.StreamARN)]}
					if s.StreamModeDetails != nil {
						row.Mode = string(s.StreamModeDetails.StreamMode)
					}
					rows = append(rows, row)
				}
			}
			return printRows(a.stdout, asJSON, "streams", rows, "STREAM\tSTATUS\tMODE\tSHARDS\tRETENTION\tFUNCTIONS",
				func(r streamRow) string {
					return fmt.Sprintf("%s\t%s\t%s\t%d\t%dh\t%s", r.Name, r.Status, r.Mode, r.Shards, r.RetentionHours, functionsOf(r.Mappings))
				})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the streams as one JSON object")
	return cmd
}

// topicRow is one line of flint topics.
type topicRow struct {
	Name          string         `json:"name"`
	ARN           string         `json:"arn"`
	FIFO          bool           `json:"fifo"`
	Subscriptions map[string]int `json:"subscriptions"` // by protocol
	Pending       int            `json:"pending_confirmation"`
}

func (a *app) topicsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List the SNS topics with their subscriptions",
		Long: "List the topics made with the SNS API, with their confirmed subscriptions by protocol\n" +
			"(lambda, sqs, http, https) and how many wait for confirmation.",
		Args: rangeArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.awsConfig(ctx)
			if err != nil {
				return err
			}
			endpoint := a.endpoint
			c := sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(endpoint) })
			var rows []topicRow
			byArn := map[string]*topicRow{}
			tp := sns.NewListTopicsPaginator(c, &sns.ListTopicsInput{})
			for tp.HasMorePages() {
				page, err := tp.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, t := range page.Topics {
					arn := aws.ToString(t.TopicArn)
					rows = append(rows, topicRow{Name: arn[strings.LastIndex(arn, ":")+1:], ARN: arn,
						FIFO: strings.HasSuffix(arn, ".fifo"), Subscriptions: map[string]int{}})
				}
			}
			for i := range rows {
				byArn[rows[i].ARN] = &rows[i]
			}
			sp := sns.NewListSubscriptionsPaginator(c, &sns.ListSubscriptionsInput{})
			for sp.HasMorePages() {
				page, err := sp.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, sub := range page.Subscriptions {
					r := byArn[aws.ToString(sub.TopicArn)]
					if r == nil {
						continue
					}
					if aws.ToString(sub.SubscriptionArn) == "PendingConfirmation" {
						r.Pending++
						continue
					}
					r.Subscriptions[aws.ToString(sub.Protocol)]++
				}
			}
			return printRows(a.stdout, asJSON, "topics", rows, "TOPIC\tSUBSCRIPTIONS\tPENDING", func(r topicRow) string {
				var parts []string
				for proto, n := range r.Subscriptions {
					parts = append(parts, fmt.Sprintf("%s %d", proto, n))
				}
				slices.Sort(parts)
				return fmt.Sprintf("%s\t%s\t%d", r.Name, orDashString(strings.Join(parts, ", ")), r.Pending)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the topics as one JSON object")
	return cmd
}

// printRows prints rows as {"<what>": [...]} with --json, "no <what>" when there are none, and
// else a table: header, then line of each row (tab-separated columns).
func printRows[T any](w io.Writer, asJSON bool, what string, rows []T, header string, line func(T) string) error {
	if asJSON {
		if rows == nil {
			rows = []T{}
		}
		b, err := json.Marshal(map[string]any{what: rows})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no "+what)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}
