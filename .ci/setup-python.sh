# Sourced by .ci/run: the real client libraries the ingest tests drive:
# Segment's Python client (Segment-compatible API) and the product's Python
# client, knockapi (reverse-ETL resource API); Stripe's and Svix's libraries,
# which sign the source templates' test webhooks (bins/ingest/tests/templates.rs).
if [ "${CI:-}" = "true" ]; then
  python3 -m pip install --quiet --disable-pip-version-check segment-analytics-python knockapi stripe svix
fi
