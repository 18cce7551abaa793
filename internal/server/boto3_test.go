package server_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// boto3Client is the script TestBoto3 runs: Debian's boto3 (1.26, which speaks the query
// protocol to SQS and SNS and JSON 1.1 to Kinesis) through the SQS, SNS and Kinesis APIs
// against FLINT. botocore itself checks what a real client checks (the MD5 sums of SQS
// bodies and attributes, the shapes of answers); the script asserts the rest and prints the
// error codes it met, as JSON, for the test to compare with AWS's.
const boto3Client = `import base64, json, os, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ep = os.environ['FLINT']
kw = dict(endpoint_url=ep, region_name='us-east-1', aws_access_key_id='AKIDFLINTTEST',
          aws_secret_access_key='secret', config=Config(retries={'max_attempts': 1}))
sqs, sns, kin = boto3.client('sqs', **kw), boto3.client('sns', **kw), boto3.client('kinesis', **kw)
codes = {}

def code(name, f, *exc):
    try:
        f()
    except exc as e:
        codes[name] = e.response['Error']['Code']
        return
    except ClientError as e:
        raise AssertionError('%s: %s is not one of %s' % (name, e.response['Error'], exc))
    raise AssertionError(name + ': no error')

def receive(url, n):
    got, deadline = [], time.time() + 10
    while len(got) < n and time.time() < deadline:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=['All'], MessageAttributeNames=['All']).get('Messages', [])
    assert len(got) == n, (n, got)
    return got

# SQS: create, send with attributes, receive, delete.
url = sqs.create_queue(QueueName='boto', Attributes={'VisibilityTimeout': '5'}, tags={'team': 'a'})['QueueUrl']
assert url == ep + '/000000000000/boto', url
assert sqs.get_queue_url(QueueName='boto')['QueueUrl'] == url
assert url in sqs.list_queues(QueueNamePrefix='bo').get('QueueUrls', [])
body = 'hello <boto3> & "co" \u00e9'
sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
    's': {'DataType': 'String', 'StringValue': 'v'},
    'n': {'DataType': 'Number', 'StringValue': '42'},
    'b': {'DataType': 'Binary', 'BinaryValue': b'\x00\x01\xff'}})
m = receive(url, 1)[0]
assert m['Body'] == body and m['MessageId'] == sent['MessageId'], (m, sent)
assert m['MessageAttributes']['b']['BinaryValue'] == b'\x00\x01\xff', m
assert m['MessageAttributes']['n'] == {'StringValue': '42', 'DataType': 'Number'}, m
assert m['Attributes']['ApproximateReceiveCount'] == '1' and m['Attributes']['SentTimestamp'].isdigit(), m
assert m['MD5OfMessageAttributes'] == sent['MD5OfMessageAttributes'], (m, sent)
sqs.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])

# Batches: send 10, receive, change visibility of two, delete all.
out = sqs.send_message_batch(QueueUrl=url, Entries=[
    {'Id': 'e%d' % i, 'MessageBody': 'b%d' % i, 'DelaySeconds': 0,
     'MessageAttributes': {'i': {'DataType': 'Number', 'StringValue': str(i)}}} for i in range(10)])
assert len(out['Successful']) == 10 and not out.get('Failed'), out
got = receive(url, 10)
assert sorted(x['Body'] for x in got) == sorted('b%d' % i for i in range(10)), got
out = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
    {'Id': 'v%d' % i, 'ReceiptHandle': x['ReceiptHandle'], 'VisibilityTimeout': 30} for i, x in enumerate(got[:2])])
assert len(out['Successful']) == 2 and not out.get('Failed'), out
out = sqs.delete_message_batch(QueueUrl=url, Entries=[
    {'Id': 'd%d' % i, 'ReceiptHandle': x['ReceiptHandle']} for i, x in enumerate(got)])
assert len(out['Successful']) == 10 and not out.get('Failed'), out
a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
assert (a['ApproximateNumberOfMessages'], a['ApproximateNumberOfMessagesNotVisible'], a['ApproximateNumberOfMessagesDelayed']) == ('0', '0', '0'), a
assert a['QueueArn'] == 'arn:aws:sqs:us-east-1:000000000000:boto' and a['VisibilityTimeout'] == '5', a
sqs.set_queue_attributes(QueueUrl=url, Attributes={'VisibilityTimeout': '7'})
assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['VisibilityTimeout'])['Attributes'] == {'VisibilityTimeout': '7'}
assert sqs.list_queue_tags(QueueUrl=url)['Tags'] == {'team': 'a'}
assert 'Messages' not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # an empty queue: an empty result

# SQS errors, with the exception classes botocore makes of AWS's codes; nothing is stored.
code('get_queue_url', lambda: sqs.get_queue_url(QueueName='nope'), sqs.exceptions.QueueDoesNotExist)
code('send_message', lambda: sqs.send_message(QueueUrl=ep + '/000000000000/nope', MessageBody='x'), sqs.exceptions.QueueDoesNotExist)
code('batch_of_11', lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{'Id': 'e%d' % i, 'MessageBody': 'x'} for i in range(11)]),
     sqs.exceptions.TooManyEntriesInBatchRequest)
code('duplicate_ids', lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{'Id': 'same', 'MessageBody': 'x'}] * 2),
     sqs.exceptions.BatchEntryIdsNotDistinct)
code('oversize', lambda: sqs.send_message(QueueUrl=url, MessageBody='x' * (256 * 1024 + 1)), ClientError)
code('bad_attribute', lambda: sqs.create_queue(QueueName='bad', Attributes={'VisibilityTimeout': '99999'}), ClientError)
a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['ApproximateNumberOfMessages'])['Attributes']
assert a['ApproximateNumberOfMessages'] == '0', a
assert ep + '/000000000000/bad' not in sqs.list_queues().get('QueueUrls', [])

# FIFO: order per group, deduplication; purge and delete.
fifo = sqs.create_queue(QueueName='boto.fifo', Attributes={'FifoQueue': 'true', 'ContentBasedDeduplication': 'true'})['QueueUrl']
for i in range(3):
    out = sqs.send_message(QueueUrl=fifo, MessageBody='f%d' % i, MessageGroupId='g')
    assert out['SequenceNumber'].isdigit(), out
assert sqs.send_message(QueueUrl=fifo, MessageBody='f0', MessageGroupId='g')['MessageId']  # a duplicate: accepted, not stored
got = []
for _ in range(4):  # Flint lets one message of a FIFO queue be in flight at a time: one a receive
    for x in sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=['All']).get('Messages', []):
        got.append(x)
        sqs.delete_message(QueueUrl=fifo, ReceiptHandle=x['ReceiptHandle'])
assert [x['Body'] for x in got] == ['f0', 'f1', 'f2'] and got[0]['Attributes']['MessageGroupId'] == 'g', got
code('fifo_no_group', lambda: sqs.send_message(QueueUrl=fifo, MessageBody='x'), sqs.exceptions.ClientError)
sqs.purge_queue(QueueUrl=fifo)
sqs.delete_queue(QueueUrl=fifo)
code('deleted_queue', lambda: sqs.get_queue_url(QueueName='boto.fifo'), sqs.exceptions.QueueDoesNotExist)

# SNS: a topic with a wrapped and a raw sqs subscription; Publish and PublishBatch reach both.
topic = sns.create_topic(Name='boto-topic', Attributes={'DisplayName': 'boto'})['TopicArn']
assert topic == 'arn:aws:sns:us-east-1:000000000000:boto-topic', topic
assert topic in [t['TopicArn'] for t in sns.list_topics()['Topics']]
wrapped = sqs.create_queue(QueueName='boto-wrapped')['QueueUrl']
raw = sqs.create_queue(QueueName='boto-raw')['QueueUrl']
arn = lambda u: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sub = sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=arn(wrapped), ReturnSubscriptionArn=True)['SubscriptionArn']
assert sub.startswith(topic + ':'), sub
sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=arn(raw), Attributes={'RawMessageDelivery': 'true'})
assert sns.get_subscription_attributes(SubscriptionArn=sub)['Attributes']['Protocol'] == 'sqs'
assert len(sns.list_subscriptions_by_topic(TopicArn=topic)['Subscriptions']) == 2
pub = sns.publish(TopicArn=topic, Message='from boto3', Subject='subj',
                  MessageAttributes={'k': {'DataType': 'String', 'StringValue': 'v'}})
env = json.loads(receive(wrapped, 1)[0]['Body'])
assert env['Type'] == 'Notification' and env['MessageId'] == pub['MessageId'] and env['TopicArn'] == topic, env
assert env['Message'] == 'from boto3' and env['Subject'] == 'subj', env
assert env['MessageAttributes'] == {'k': {'Type': 'String', 'Value': 'v'}}, env
r = receive(raw, 1)[0]
assert r['Body'] == 'from boto3' and r['MessageAttributes']['k']['StringValue'] == 'v', r
out = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{'Id': 'p%d' % i, 'Message': 'batch %d' % i} for i in range(3)])
assert len(out['Successful']) == 3 and not out.get('Failed'), out
assert sorted(x['Body'] for x in receive(raw, 3)) == ['batch 0', 'batch 1', 'batch 2']
sns.tag_resource(ResourceArn=topic, Tags=[{'Key': 'team', 'Value': 'a'}])
assert sns.list_tags_for_resource(ResourceArn=topic)['Tags'] == [{'Key': 'team', 'Value': 'a'}]
sns.untag_resource(ResourceArn=topic, TagKeys=['team'])
assert sns.list_tags_for_resource(ResourceArn=topic)['Tags'] == []
sns.set_topic_attributes(TopicArn=topic, AttributeName='DisplayName', AttributeValue='renamed')
ta = sns.get_topic_attributes(TopicArn=topic)['Attributes']
assert ta['DisplayName'] == 'renamed' and ta['SubscriptionsConfirmed'] == '2', ta
code('sns_publish', lambda: sns.publish(TopicArn='arn:aws:sns:us-east-1:000000000000:nope', Message='m'), sns.exceptions.NotFoundException)
code('sns_bad_filter', lambda: sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName='FilterPolicy', AttributeValue='{"k": "v"}'),
     sns.exceptions.InvalidParameterException)
sns.unsubscribe(SubscriptionArn=sub)
assert len(sns.list_subscriptions_by_topic(TopicArn=topic)['Subscriptions']) == 1

# Kinesis: create, put one and a batch under one key, read them back in order.
kin.create_stream(StreamName='boto-stream', ShardCount=2)
deadline = time.time() + 10
while kin.describe_stream_summary(StreamName='boto-stream')['StreamDescriptionSummary']['StreamStatus'] != 'ACTIVE':
    assert time.time() < deadline, 'stream never ACTIVE'
    time.sleep(0.1)
first = kin.put_record(StreamName='boto-stream', Data=b'r0', PartitionKey='user-1')
out = kin.put_records(StreamName='boto-stream', Records=[{'Data': b'r%d' % i, 'PartitionKey': 'user-1'} for i in range(1, 6)])
assert out['FailedRecordCount'] == 0 and all(x['ShardId'] == first['ShardId'] for x in out['Records']), out
it = kin.get_shard_iterator(StreamName='boto-stream', ShardId=first['ShardId'], ShardIteratorType='TRIM_HORIZON')['ShardIterator']
recs = kin.get_records(ShardIterator=it)['Records']
assert [x['Data'] for x in recs] == [b'r%d' % i for i in range(6)], recs
assert recs[0]['SequenceNumber'] == first['SequenceNumber'] and recs[0]['PartitionKey'] == 'user-1', recs[0]
seqs = [x['SequenceNumber'] for x in recs]
assert seqs == sorted(seqs) and len(set(seqs)) == 6, seqs
shards = kin.list_shards(StreamName='boto-stream')['Shards']
assert len(shards) == 2, shards
code('kinesis_missing', lambda: kin.describe_stream(StreamName='nope'), kin.exceptions.ResourceNotFoundException)
it = kin.get_shard_iterator(StreamName='boto-stream', ShardId=first['ShardId'], ShardIteratorType='AFTER_SEQUENCE_NUMBER',
                            StartingSequenceNumber=recs[3]['SequenceNumber'])['ShardIterator']
assert [x['Data'] for x in kin.get_records(ShardIterator=it)['Records']] == [b'r4', b'r5']
kin.delete_stream(StreamName='boto-stream')

json.dump(codes, sys.stdout)
`

// TestBoto3 runs Debian's boto3 (python3-boto3, installed by scripts/tools.sh) on the real
// /usr/bin/python3 against Flint: SQS (query protocol) create, send with attributes, receive,
// delete, the batches and AWS's error codes; SNS topics, sqs subscriptions and a published
// message arriving wrapped and raw; Kinesis create, put and get.
func TestBoto3(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import boto3; print(boto3.__version__)").CombinedOutput(); err != nil {
		t.Fatalf("boto3 not importable by %s: run scripts/tools.sh's ensure_tools test (it installs Debian's python3-boto3): %v %s", python, err, out)
	}
	s := startServer(t, t.TempDir())
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(boto3Client), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(python, script)
	// Nothing of the host's AWS settings (a profile, a region, an endpoint) may steer the client.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "FLINT="+s.URL(), "HOME="+home, "AWS_CONFIG_FILE="+home+"/config",
		"AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials", "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 client: %v\n%s", err, stderr.String())
	}
	var codes map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &codes); err != nil {
		t.Fatalf("boto3 client printed %q: %v", stdout.String(), err)
	}
	want := map[string]string{
		"get_queue_url":   "AWS.SimpleQueueService.NonExistentQueue",
		"send_message":    "AWS.SimpleQueueService.NonExistentQueue",
		"batch_of_11":     "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"duplicate_ids":   "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
		"oversize":        "InvalidParameterValue",
		"bad_attribute":   "InvalidAttributeValue",
		"sns_publish":     "NotFound",
		"sns_bad_filter":  "InvalidParameter",
		"kinesis_missing": "ResourceNotFoundException",
	}
	for k, w := range want {
		if codes[k] != w {
			t.Errorf("%s: error code %q, want AWS's %q", k, codes[k], w)
		}
	}
	if strings.TrimSpace(stderr.String()) != "" {
		t.Logf("boto3 client stderr: %s", stderr.String())
	}
}
