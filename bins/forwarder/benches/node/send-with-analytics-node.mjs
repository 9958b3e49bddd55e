// Sends N track events shaped like the forwarder's output with Segment's
// official Node client, to the host given, and exits once flushed.
// Usage: ANALYTICS_NODE_DIR=<dir with node_modules> node send-with-analytics-node.mjs HOST N
import { createRequire } from 'node:module';

const dir = process.env.ANALYTICS_NODE_DIR;
const require = createRequire(`${dir}/package.json`);
const { Analytics } = require('@segment/analytics-node');

const [host, count] = process.argv.slice(2);
const n = Number(count);
const analytics = new Analytics({
  writeKey: 'wk_node',
  host,
  // As large as the client allows per batch, like the forwarder's 500.
  flushAt: 500,
  flushInterval: 100,
  maxRetries: 3,
});
const started = performance.now();
for (let i = 0; i < n; i++) {
  analytics.track({
    userId: `user_${i % 17}`,
    event: 'Notification Sent',
    timestamp: new Date(),
    properties: {
      channelId: '6b4c1e7a-9a61-4c8e-b1c3-2f0d9e5a7b10',
      channelType: 'email',
      environment: 'Production',
      messageId: `2w3YUpTTOxuDvZFji8OMsKrG${i}`,
      provider: 'postmark',
      stepRef: 'email_1',
      workflowKey: 'account-invite-accepted',
      tenant: 'acme',
      workflowRunId: '0b5c2f4e-run',
    },
  });
}
await analytics.closeAndFlush({ timeout: 300000 });
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ events: n, seconds }));
