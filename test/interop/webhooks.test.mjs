// The gateway's webhook signatures verify with the npm standardwebhooks
// package, unchanged. The Go driver captured one real `connected` request.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Webhook } from "standardwebhooks";
import { CONTROL_URL, getJSON, withTimeout } from "./helpers.mjs";

test("standardwebhooks verifies a captured gateway webhook", { timeout: 15_000 }, async () => {
  const { secret, headers, body } = await withTimeout(getJSON(`${CONTROL_URL}/captured`), "captured webhook");
  assert.match(secret, /^whsec_/);
  for (const h of ["webhook-id", "webhook-timestamp", "webhook-signature"]) assert.ok(headers[h], `header ${h} is missing`);

  const wh = new Webhook(secret);
  const ev = wh.verify(body, headers);
  assert.equal(ev.event, "connected");
  assert.equal(ev.hub, "capture");
  assert.equal(headers["webhook-id"], headers["ce-id"]);

  // One byte changed anywhere in the body breaks the signature.
  for (const i of [0, Math.floor(body.length / 2), body.length - 1]) {
    const tampered = body.slice(0, i) + String.fromCharCode(body.charCodeAt(i) ^ 1) + body.slice(i + 1);
    assert.throws(() => wh.verify(tampered, headers), /No matching signature found/, `byte ${i} changed`);
  }
  // So does another secret.
  const other = new Webhook("whsec_" + Buffer.alloc(32, 7).toString("base64"));
  assert.throws(() => other.verify(body, headers), /No matching signature found/);
});
