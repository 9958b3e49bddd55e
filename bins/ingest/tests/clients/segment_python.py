"""Drives Tributary's Segment-compatible API with Segment's own Python client.

Usage: segment_python.py HOST WRITE_KEY
Exits non-zero if the client reports any error.
"""

import sys

import segment.analytics as analytics

errors = []


def on_error(error, items):
    errors.append(f"{error!r} for {len(items)} items")


host, write_key = sys.argv[1], sys.argv[2]
client = analytics.Client(
    write_key=write_key,
    host=host,
    sync_mode=True,
    gzip=True,
    on_error=on_error,
    max_retries=1,
)
client.identify("py-user-1", {"email": "py@example.com", "name": "Py Thon", "phone": "+15555550100"})
client.track("py-user-1", "Signed Up", {"plan": "team", "seats": 3})
client.page("py-user-1", "Docs", "Getting started", {"url": "https://example.com/docs"})
client.group("py-user-1", "acct-9", {"name": "Acme"})
client.alias("py-user-1", "py-user-1-alias")
client.screen("py-user-1", "Mobile", "Home")
client.flush()

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print("sent 6 calls")
