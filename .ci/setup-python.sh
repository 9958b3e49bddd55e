# Sourced by .ci/run: Segment's own Python client, which the ingest tests drive
# against the Segment-compatible API.
if [ "${CI:-}" = "true" ]; then
  python3 -m pip install --quiet --disable-pip-version-check segment-analytics-python
fi
