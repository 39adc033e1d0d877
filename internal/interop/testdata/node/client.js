// An independent WebSocket peer for porthole's interop tests: Node's ws
// client streams TOTAL random bytes to URL in binary messages while it
// reads what comes back, closes with 1000 once all is sent (its end of
// stream), reads on until the gateway's Close, and prints one JSON line:
// byte counts, SHA-256 of each direction, the subprotocol and the Close
// code it received.
//
// usage: node client.js URL TOTAL [CA_PEM_FILE]
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const WebSocket = require('ws');

const [url, totalArg, caFile] = process.argv.slice(2);
const total = Number(totalArg);
const chunk = 64 << 10;
const opts = { perMessageDeflate: true, maxPayload: 0 }; // offers deflate: the gateway must decline it
if (caFile) opts.ca = fs.readFileSync(caFile);

const ws = new WebSocket(url, ['binary'], opts);
const sentHash = crypto.createHash('sha256');
const gotHash = crypto.createHash('sha256');
let sent = 0;
let received = 0;

ws.on('open', async () => {
  try {
    while (sent < total) {
      const buf = crypto.randomBytes(Math.min(chunk, total - sent));
      sentHash.update(buf);
      await new Promise((resolve, reject) => ws.send(buf, { binary: true }, (err) => (err ? reject(err) : resolve())));
      sent += buf.length;
    }
    ws.close(1000, 'sent everything');
  } catch (err) {
    console.error('sending:', err);
    process.exit(1);
  }
});

ws.on('message', (data) => {
  gotHash.update(data);
  received += data.length;
});

ws.on('error', (err) => {
  console.error('ws error:', err);
  process.exit(1);
});

ws.on('close', (code, reason) => {
  console.log(JSON.stringify({
    sent,
    sent_sha256: sentHash.digest('hex'),
    received,
    received_sha256: gotHash.digest('hex'),
    subprotocol: ws.protocol,
    extensions: Object.keys(ws.extensions).join(','),
    close_code: code,
    close_reason: reason.toString(),
  }));
});
