"""Signs a webhook body the way the platform does, with the platform's own
library, and prints the headers to send as JSON.

    sign_webhook.py stripe <secret> <body-file>   Stripe's stripe-python
    sign_webhook.py svix <secret> <body-file>     Svix's library (Clerk)

Each signature is also checked with the same library's verifier before it
is printed, so a test never sends a header the platform would not accept.
"""

import json
import sys
import time
from datetime import datetime, timezone


def stripe_headers(secret: str, payload: str) -> dict:
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=300)
    return {"stripe-signature": header}


def svix_headers(secret: str, payload: str) -> dict:
    from svix.webhooks import Webhook

    hook = Webhook(secret)
    msg_id = "msg_tmpl_" + str(time.time_ns())
    now = datetime.now(timezone.utc)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": hook.sign(msg_id, now, payload),
    }
    hook.verify(payload, headers)
    return headers


def main() -> None:
    platform, secret, path = sys.argv[1:4]
    with open(path, encoding="utf-8") as f:
        payload = f.read()
    signers = {"stripe": stripe_headers, "svix": svix_headers}
    print(json.dumps(signers[platform](secret, payload)))


if __name__ == "__main__":
    main()
