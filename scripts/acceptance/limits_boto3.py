"""Acceptance check for concurrency limits, weighted aliases and provisioned concurrency with
boto3 against a running Flint (FLINT_ENDPOINT, default http://127.0.0.1:9000) with no functions
named slow, w or pc. Prints what it saw; see issue 4's "must show"."""
import os, boto3, io, zipfile, json, base64, concurrent.futures as cf, collections, time, subprocess, os
from botocore.config import Config
c = boto3.client("lambda", endpoint_url=os.environ.get("FLINT_ENDPOINT", "http://127.0.0.1:9000"), region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y", config=Config(retries={"total_max_attempts": 1}, read_timeout=120))
def z(src):
    b = io.BytesIO(); zf = zipfile.ZipFile(b, "w"); zf.writestr("app.py", src); zf.close(); return b.getvalue()
role = "arn:aws:iam::000000000000:role/flint"
# 1. reserved concurrency 2, five parallel slow invokes

c.create_function(FunctionName="slow", Runtime="python3.12", Handler="app.handler", Role=role, Code={"ZipFile": z("import time\ndef handler(e, c):\n    time.sleep(2)\n    return 'ok'\n")})
c.put_function_concurrency(FunctionName="slow", ReservedConcurrentExecutions=2)
def call(_):
    try:
        r = c.invoke(FunctionName="slow"); return ("ok", r["Payload"].read())
    except c.exceptions.TooManyRequestsException as e:
        return ("429", e.response["Reason"] if "Reason" in e.response else e.response["Error"].get("Reason") or e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after"))
with cf.ThreadPoolExecutor(5) as ex:
    res = list(ex.map(call, range(5)))
print("reserved=2, 5 parallel:", collections.Counter(r[0] for r in res), set(str(r[1]) for r in res if r[0] == "429"))
c.put_function_concurrency(FunctionName="slow", ReservedConcurrentExecutions=0)
print("reserved=0:", [call(0)[0] for _ in range(3)])
# 2. alias 90/10 over 1000 invokes
c.create_function(FunctionName="w", Runtime="python3.12", Handler="app.handler", Role=role, Code={"ZipFile": z("def handler(e, c):\n    return 1\n")}, Environment={"Variables": {"VER": "1"}})
v1 = c.publish_version(FunctionName="w")["Version"]
c.update_function_configuration(FunctionName="w", Environment={"Variables": {"VER": "2"}})
v2 = c.publish_version(FunctionName="w")["Version"]
c.create_alias(FunctionName="w", Name="live", FunctionVersion=v1, RoutingConfig={"AdditionalVersionWeights": {v2: 0.1}})
cnt = collections.Counter(c.invoke(FunctionName="w", Qualifier="live")["ExecutedVersion"] for _ in range(1000))
print("alias 90/10 over 1000:", dict(cnt), "v2 share %.1f%%" % (cnt[v2] / 10))
# 3. provisioned concurrency 3 on an alias, function with a 1 s init
c.create_function(FunctionName="pc", Runtime="python3.12", Handler="app.handler", Role=role, Publish=True, Code={"ZipFile": z("import time\ntime.sleep(1)\ndef handler(e, c):\n    return 'x'\n")})
c.create_alias(FunctionName="pc", Name="live", FunctionVersion="1")
c.put_provisioned_concurrency_config(FunctionName="pc", Qualifier="live", ProvisionedConcurrentExecutions=3)
t0 = time.time()
while c.get_provisioned_concurrency_config(FunctionName="pc", Qualifier="live")["Status"] != "READY":
    time.sleep(0.1)
print("provisioned READY after %.2fs" % (time.time() - t0))
def pcall(_):
    t = time.time(); r = c.invoke(FunctionName="pc", Qualifier="live", LogType="Tail")
    return time.time() - t, "Init Duration" in base64.b64decode(r["LogResult"]).decode()
with cf.ThreadPoolExecutor(3) as ex:
    res = list(ex.map(pcall, range(3)))
print("3 parallel on provisioned: latencies %s, any Init Duration: %s" % (["%.3fs" % r[0] for r in res], any(r[1] for r in res)))
