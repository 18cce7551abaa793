"""An example Python function: says hello and returns its event.

An event {"fail": true} makes it raise; {"sleep_ms": N} makes it sleep N ms first.
Handler app.handler, runtime python3.12.
"""

import json
import time


def handler(event, context):
    print(f"hello from python: {json.dumps(event)}")
    if isinstance(event, dict):
        if event.get("fail"):
            raise ValueError("you asked me to fail")
        if event.get("sleep_ms"):
            time.sleep(event["sleep_ms"] / 1000)
    return {
        "message": "hello from python",
        "event": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
