#!/usr/bin/env python3
"""Render Home Assistant value templates the way HA's MQTT integration does.

Reads JSON lines {"template": ..., "payload": ...} on stdin and prints one
JSON line {"out": ...} or {"error": ...} per input. Uses Jinja2's immutable
sandbox (as Home Assistant does) with value and value_json set.
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

env = ImmutableSandboxedEnvironment()
for line in sys.stdin:
    req = json.loads(line)
    payload = req["payload"]
    try:
        value_json = json.loads(payload)
    except ValueError:
        value_json = None
    try:
        out = env.from_string(req["template"]).render(value=payload, value_json=value_json)
        print(json.dumps({"out": out}))
    except Exception as e:  # report, do not stop
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
    sys.stdout.flush()
