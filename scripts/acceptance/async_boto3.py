"""Acceptance check for asynchronous invocation with boto3 against a running Flint
(FLINT_ENDPOINT, default http://127.0.0.1:9000) started with a short --async-retry-delay (e.g.
100ms) and the process sandbox (the sink function writes to a host file). Sends 1000 Event
invokes to a function whose on-success destination is a "sink" function, and 20 to a function that
always fails (MaximumRetryAttempts 1) whose on-failure destination is the same sink; then counts
what reached the sink and how often the failing function ran. See issue 5's "must show"."""
import collections, concurrent.futures as cf, io, json, os, sys, tempfile, time, zipfile

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("FLINT_ENDPOINT", "http://127.0.0.1:9000")
c = boto3.client("lambda", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="y", config=Config(retries={"total_max_attempts": 1}))
ROLE = "arn:aws:iam::000000000000:role/flint"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
work = tempfile.mkdtemp(prefix="flint-async-")
sink_file, runs_file = os.path.join(work, "sink.jsonl"), os.path.join(work, "runs.txt")


def z(src):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as zf:
        zf.writestr("app.py", src)
    return b.getvalue()


def create(name, src, env=None):
    try:
        c.delete_function(FunctionName=name)
    except c.exceptions.ResourceNotFoundException:
        pass
    c.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                      Code={"ZipFile": z(src)}, Environment={"Variables": env or {}}, Timeout=30)


create("sink", "import json, os\ndef handler(e, c):\n    with open(os.environ['OUT'], 'a') as f:\n        f.write(json.dumps(e) + '\\n')\n", {"OUT": sink_file})
create("ok", "def handler(e, c):\n    return {'echo': e}\n")
create("fails", "import os\ndef handler(e, c):\n    with open(os.environ['RUNS'], 'a') as f:\n        f.write(c.aws_request_id + '\\n')\n    raise RuntimeError('always fails')\n", {"RUNS": runs_file})
c.put_function_event_invoke_config(FunctionName="ok", DestinationConfig={"OnSuccess": {"Destination": ARN + "sink"}})
c.put_function_event_invoke_config(FunctionName="fails", MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": ARN + "sink"}})


def send(args):
    fn, i = args
    r = c.invoke(FunctionName=fn, InvocationType="Event", Payload=json.dumps({"i": i}))
    return r["StatusCode"], r["ResponseMetadata"]["RequestId"]


t0 = time.time()
with cf.ThreadPoolExecutor(8) as ex:
    ok = list(ex.map(send, [("ok", i) for i in range(1000)]))
    bad = list(ex.map(send, [("fails", i) for i in range(20)]))
print("accepted: ok %s, fails %s in %.1fs" % (collections.Counter(s for s, _ in ok), collections.Counter(s for s, _ in bad), time.time() - t0))

want = 1000 + 20
deadline = time.time() + 300
records = []
while time.time() < deadline:
    records = [json.loads(l) for l in open(sink_file)] if os.path.exists(sink_file) else []
    if len(records) >= want:
        break
    time.sleep(0.5)
by = collections.Counter(r["requestContext"]["condition"] for r in records)
ok_ids = {rid for _, rid in ok}
got_ok = {r["requestContext"]["requestId"] for r in records if r["requestContext"]["condition"] == "Success"}
runs = collections.Counter(open(runs_file).read().split()) if os.path.exists(runs_file) else {}
print("sink records by condition:", dict(by))
print("every accepted ok event reached on-success:", ok_ids == got_ok, "(%d of %d)" % (len(got_ok & ok_ids), len(ok_ids)))
print("executions per failing event:", collections.Counter(runs.values()))
print("a failure record:", json.dumps(next((r for r in records if r["requestContext"]["condition"] != "Success"), None), indent=1)[:900])
sys.exit(0 if ok_ids == got_ok and by.get("RetriesExhausted") == 20 and set(runs.values()) == {2} else 1)
