// Node `ws` (a third-party client) against a WebSocket echo server: text and binary
// echoes at the length boundaries, a fragmented message, a ping, a close with 4000.
// Usage: node node_client.mjs ws://127.0.0.1:PORT/
import WebSocket from "ws";

const url = process.argv[2] ?? "ws://127.0.0.1:9001/";
const SIZES = [0, 125, 126, 65535, 65536, 1 << 20];

function textOf(n) {
  let s = "한".repeat(Math.floor(n / 3));
  return s + "x".repeat(n - Buffer.byteLength(s));
}

const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20 });
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
  console.log(`node ws client: 0 passed, 1 failed: ${message}`);
  process.exit(1);
}

ws.on("error", (e) => fail(`socket error: ${e.message}`));
ws.on("open", async () => {
  try {
    let checks = 0;
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
      console.log(`node ws client: ${checks + 1} passed, 0 failed`);
      process.exit(0);
    });
    ws.close(4000, "node done");
  } catch (e) {
    fail(e.message);
  }
});
setTimeout(() => fail("timed out after 60 s"), 60000).unref();
