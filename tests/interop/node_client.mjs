// Node `ws` (a third-party client) against a WebSocket echo server: text and binary
// echoes at the length boundaries, a fragmented message, a ping, a close with 4000.
// With `deflate`: perMessageDeflate on (ws compresses messages of 1 KiB and more), checks
// the server accepted it, and echoes compressible JSON-like text too.
// Over wss:// it verifies the server's certificate against the CA file in WSENGINE_CA
// (a self-signed server's own certificate), else against Node's roots.
// Usage: node node_client.mjs ws[s]://127.0.0.1:PORT/ [deflate]
import { readFileSync } from "node:fs";
import WebSocket from "ws";

const url = process.argv[2] ?? "ws://127.0.0.1:9001/";
const deflate = process.argv[3] === "deflate";
const secure = url.startsWith("wss://");
const NAME = (deflate ? "node ws client (permessage-deflate)" : "node ws client") + (secure ? " over wss" : "");
const ca = secure && process.env.WSENGINE_CA ? readFileSync(process.env.WSENGINE_CA) : undefined;
const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];

function textOf(n) {
  let s = "한".repeat(Math.floor(n / 3));
  return s + "x".repeat(n - Buffer.byteLength(s));
}

function jsonOf(n) {
  const record = '{"symbol":"ABC","bid":101.25,"ask":101.5,"size":300},';
  return record.repeat(Math.floor(n / record.length) + 1).slice(0, n);
}

const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 64 << 20, ca });
const inbox = [];
let waiter = null;
ws.on("message", (data, isBinary) => {
  inbox.push({ data, isBinary });
  if (waiter) { const w = waiter; waiter = null; w(); }
});
const next = () => new Promise((resolve, reject) => {
  const take = () => resolve(inbox.shift());
  if (inbox.length) return take();
  const timer = setTimeout(() => reject(new Error("timed out waiting for an echo")), 10000);
  waiter = () => { clearTimeout(timer); take(); };
});

function fail(message) {
  console.log(`${NAME}: 0 passed, 1 failed: ${message}`);
  process.exit(1);
}

ws.on("error", (e) => fail(`socket error: ${e.message}`));
ws.on("open", async () => {
  try {
    let checks = 0;
    const answer = ws.extensions;
    if (deflate) {
      if (!answer.startsWith("permessage-deflate")) fail(`not negotiated: "${answer}"`);
      for (const n of [1000, 1024, 4096, 65536, 1 << 20]) {
        const text = jsonOf(n);
        ws.send(text);
        const m = await next();
        if (m.isBinary || m.data.toString() !== text) fail(`compressible text echo of ${n} bytes differs`);
        checks += 1;
      }
    } else if (answer !== "") {
      fail(`extension answered without an offer: "${answer}"`);
    }
    for (const n of SIZES) {
      const text = textOf(n);
      ws.send(text);
      let m = await next();
      if (m.isBinary || m.data.toString() !== text) fail(`text echo of ${n} bytes differs`);
      const bin = Buffer.alloc(n, 0).map((_, i) => (i * 7) % 256);
      ws.send(bin);
      m = await next();
      if (!m.isBinary || !Buffer.from(m.data).equals(bin)) fail(`binary echo of ${n} bytes differs`);
      checks += 2;
    }
    // A fragmented message: fin=false, then the last fragment.
    ws.send("frag", { fin: false });
    ws.send("mented", { fin: true });
    const f = await next();
    if (f.isBinary || f.data.toString() !== "fragmented") fail("fragmented echo differs");
    checks += 1;
    const pong = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no pong")), 5000);
      ws.once("pong", (data) => { clearTimeout(timer); resolve(data); });
    });
    ws.ping(Buffer.from("are you there"));
    if ((await pong).toString() !== "are you there") fail("pong payload differs");
    checks += 1;
    ws.on("close", (code) => {
      if (code !== 4000) fail(`server answered close with ${code}`);
      console.log(`${NAME}: ${checks + 1} passed, 0 failed`);
      process.exit(0);
    });
    ws.close(4000, "node done");
  } catch (e) {
    fail(e.message);
  }
});
setTimeout(() => fail("timed out after 60 s"), 60000).unref();
