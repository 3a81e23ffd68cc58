// @lore/client against a real `lore serve` (the binary Lore's test command built, or LORE_BIN),
// with node's test runner: search, upload, chat streaming, errors and retries, in Chinese and
// English, and the type declarations held to the live OpenAPI document.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Lore, LoreError, NotFoundError, RateLimitError, ServerError, VERSION } from "../index.js";

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, "..");
const repo = join(sdk, "..", "..");
const REFUND = "# 退款政策\n\n购买后三十天内可以申请全额退款，款项五个工作日内原路退回。\n";
const SHIPPING = "# Shipping\n\nOrders ship within two business days; express delivery takes one day.\n";

let server;
let base;
let data;
let token;
let key;

async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

before(async () => {
  const binary = process.env.LORE_BIN ?? join(repo, "target", "debug", "lore");
  assert.ok(existsSync(binary), `no Lore binary at ${binary}: build it first (cargo build -p lore) or set LORE_BIN`);
  data = mkdtempSync(join(tmpdir(), "lore-ts-"));
  const port = await freePort();
  const env = { ...process.env, LORE_LOG: "warn" };
  env.LORE_MODEL_DIR ??= join(repo, "target", "lore-models");
  env.LORE_HF_ENDPOINT ??= "none";
  for (const k of ["LORE_DATABASE_URL", "LORE_BLOB_URL", "LORE_MASTER_KEY"]) delete env[k];
  server = spawn(binary, ["serve", "--data-dir", data, "--listen", `127.0.0.1:${port}`, "--registration", "open",
    "--registrations-per-hour", "0", "--workers", "2"], { env, stdio: ["ignore", "ignore", "inherit"] });
  base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch { /* not yet */ }
    assert.ok(Date.now() < deadline, "lore serve did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  const anonymous = new Lore({ baseUrl: base });
  token = (await anonymous.auth.register({ username: "typescript", email: "ts@example.com", password: "correct horse battery" })).token;
  const session = new Lore({ baseUrl: base, apiKey: token });
  key = (await session.apiKeys.create({ name: "ts tests", scopes: ["search", "upload", "read", "delete"] })).key;
});

after(() => {
  server?.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

describe("the client", () => {
  test("the quick start: a knowledge base, an upload, a search", async () => {
    const lore = new Lore({ baseUrl: base, apiKey: key });
    const kb = await lore.knowledgeBases.create({ name: "docs" });
    const folder = mkdtempSync(join(tmpdir(), "lore-ts-files-"));
    const guide = join(folder, "guide.md");
    writeFileSync(guide, REFUND + "\n" + SHIPPING);
    const doc = await lore.documents.upload(kb.id, guide, { wait: true });
    assert.equal(doc.status, "completed");
    const hits = await lore.search(kb.id, "退款多久到账", { topK: 5 });
    assert.equal(hits[0].document_id, doc.id);
    assert.match(hits[0].content, /退款/);
    assert.ok(hits[0].score > 0);
    assert.equal(hits.response.mode, "hybrid");
    const english = await lore.search([kb.id], "how fast is express delivery", { topK: 3, mode: "fulltext" });
    assert.match(english[0].content, /express/);
    rmSync(folder, { recursive: true, force: true });
  });

  test("uploads of bytes and Blobs, duplicates, downloads, chunks curated by hand", async () => {
    const lore = new Lore({ baseUrl: base, apiKey: key });
    const kb = await lore.knowledgeBases.create({ name: "上传" });
    const bytes = new TextEncoder().encode(REFUND);
    const doc = await lore.documents.upload(kb.id, bytes, { filename: "退款.md", wait: true, metadata: { team: "客服" } });
    assert.deepEqual([doc.status, doc.filename, doc.metadata.team], ["completed", "退款.md", "客服"]);
    const again = await lore.documents.upload(kb.id, new Blob([REFUND]), { filename: "copy.md" });
    assert.deepEqual([again.id, again.duplicate], [doc.id, true]);
    assert.equal(new TextDecoder().decode(await lore.documents.download(doc.id)), REFUND);
    const chunks = await lore.documents.chunks(doc.id);
    const edited = await lore.chunks.update(chunks[0].id, { content: "保修两年，紫罗兰色款式除外。Warranty: two years." });
    assert.ok(edited.edited_at);
    assert.equal((await lore.search(kb.id, "紫罗兰", { mode: "fulltext" }))[0].chunk_id, edited.id);
    assert.equal((await lore.documents.list(kb.id)).length, 1);
  });

  test("errors carry Lore's codes", async () => {
    const lore = new Lore({ baseUrl: base, apiKey: key });
    await assert.rejects(lore.knowledgeBases.get("01a24cf0-0000-7000-8000-000000000000"), (e) =>
      e instanceof NotFoundError && e instanceof LoreError && e.code === "not_found" && e.status === 404);
    await assert.rejects(new Lore({ baseUrl: base, apiKey: "lore_nope" }).knowledgeBases.list(), (e) =>
      e.code === "invalid_api_key" && e.status === 401);
    await assert.rejects(lore.knowledgeBases.create({ name: "" }), (e) => e.status === 422 && typeof e.code === "string");
    await assert.rejects(new Lore({ baseUrl: `http://127.0.0.1:${await freePort()}`, maxRetries: 0 }).knowledgeBases.list(),
      (e) => e.code === "connection_error");
  });

  test("retryable codes are tried again after Retry-After; quotas and uploads are not", async () => {
    const answers = [
      [429, { error: { code: "rate_limited", message: "slow down", type: "rate_limited" } }, "0.3"],
      [503, { error: { code: "database_busy", message: "busy", type: "internal" } }, null],
      [200, { data: [{ id: "kb1", name: "知识库" }] }, null],
      [429, { error: { code: "quota_exceeded", message: "q", type: "rate_limited" } }, "3600"],
      [503, { error: { code: "service_unavailable", message: "m", type: "internal" } }, "0"],
    ];
    const seen = [];
    const stub = createServer((req, res) => {
      req.resume();
      seen.push(`${req.method} ${req.url}`);
      const [status, body, retryAfter] = answers.shift() ?? [500, {}, null];
      res.writeHead(status, { "content-type": "application/json", ...(retryAfter ? { "retry-after": retryAfter } : {}) });
      res.end(JSON.stringify(body));
    });
    await new Promise((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const lore = new Lore({ baseUrl: `http://127.0.0.1:${stub.address().port}`, apiKey: "k" });
    const started = Date.now();
    assert.deepEqual((await lore.knowledgeBases.list()).map((kb) => kb.name), ["知识库"]);
    assert.equal(seen.length, 3);
    assert.ok(Date.now() - started >= 300, "Retry-After was honoured");
    await assert.rejects(lore.knowledgeBases.list(), (e) => e instanceof RateLimitError && e.retryAfter === 3600);
    assert.equal(seen.length, 4);
    await assert.rejects(lore.documents.upload("kb", new Uint8Array([1]), { filename: "x.txt" }), (e) => e instanceof ServerError);
    assert.equal(seen.length, 5, "an upload is sent once");
    stub.close();
  });

  test("agents answer with citations, streamed, and through the OpenAI-compatible endpoint", async () => {
    const lore = new Lore({ baseUrl: base, apiKey: token });
    const kb = await lore.knowledgeBases.create({ name: "客服" });
    const doc = await lore.documents.upload(kb.id, new TextEncoder().encode(REFUND), { filename: "退款.md", wait: true });
    const agent = await lore.agents.create({ name: "退款助手", knowledge_base_ids: [kb.id], max_documents: 2 });
    const answer = await lore.agents.chat(agent.id, "退款多久能到账？");
    assert.match(answer.message.content, /五个工作日/);
    assert.equal(answer.message.citations[0].document_id, doc.id);
    const events = [];
    for await (const event of lore.agents.chatStream(agent.id, "退款多久能到账？")) events.push(event);
    const done = events.at(-1);
    assert.equal(done.type, "done");
    assert.equal(events.filter((e) => e.type === "token").map((e) => e.content).join(""), done.answer.message.content);
    const completion = await lore.chat.completions.create({ model: agent.id, messages: [{ role: "user", content: "退款多久能到账？" }] });
    assert.match(completion.choices[0].message.content, /五个工作日/);
    let streamed = "";
    for await (const chunk of lore.chat.completions.create({ model: agent.id, stream: true, messages: [{ role: "user", content: "退款多久能到账？" }] })) {
      streamed += chunk.choices?.[0]?.delta?.content ?? "";
    }
    assert.match(streamed, /五个工作日/);
  });
});

/** The interfaces of index.d.ts marked `@schema`: name → { schema, fields: {name: optional} }. */
function declaredInterfaces() {
  const text = readFileSync(join(sdk, "index.d.ts"), "utf8");
  const out = {};
  const re = /\/\*\* @schema (\w+) \*\/\s*export interface (\w+)(?: extends (\w+))? \{([\s\S]*?)\n\}/g;
  for (const [, schema, name, parent, body] of text.matchAll(re)) {
    const fields = {};
    for (const [, field, optional] of body.matchAll(/^\s{2}(\w+)(\?)?:/gm)) fields[field] = Boolean(optional);
    out[name] = { schema, parent, fields };
  }
  for (const entry of Object.values(out)) {
    if (entry.parent) entry.fields = { ...out[entry.parent].fields, ...entry.fields };
  }
  return out;
}

function schemaFields(document, name) {
  const schema = document.components.schemas[name];
  let props = {};
  let required = new Set();
  for (const part of schema.allOf ?? [schema]) {
    if (part.$ref) {
      const inner = schemaFields(document, part.$ref.split("/").at(-1));
      props = { ...props, ...inner.props };
      inner.required.forEach((r) => required.add(r));
    } else {
      props = { ...props, ...(part.properties ?? {}) };
      (part.required ?? []).forEach((r) => required.add(r));
    }
  }
  return { props, required };
}

describe("the type declarations", () => {
  test("match the OpenAPI document, field by field", async () => {
    const document = await (await fetch(`${base}/openapi.json`)).json();
    const interfaces = declaredInterfaces();
    assert.ok(Object.keys(interfaces).length >= 10, Object.keys(interfaces).join(", "));
    for (const [name, { schema, fields }] of Object.entries(interfaces)) {
      const { props, required } = schemaFields(document, schema);
      assert.deepEqual(Object.keys(fields).sort(), Object.keys(props).sort(), `${name} vs ${schema}`);
      for (const [field, optional] of Object.entries(fields)) {
        assert.equal(optional, !required.has(field), `${name}.${field}: optional in one, required in the other`);
      }
    }
  });

  test("every endpoint the client names exists, and the version tracks Lore's", async () => {
    const document = await (await fetch(`${base}/openapi.json`)).json();
    const source = readFileSync(join(sdk, "index.js"), "utf8");
    for (const [, method, template] of source.matchAll(/"(GET|POST|PATCH|PUT|DELETE)", "(\/v1\/[^"]+)"/g)) {
      assert.ok(document.paths[template]?.[method.toLowerCase()], `${method} ${template} is not in the API`);
    }
    const cargo = readFileSync(join(repo, "Cargo.toml"), "utf8");
    const version = cargo.match(/\[workspace\.package\][^[]*?version\s*=\s*"([^"]+)"/)[1];
    assert.equal(VERSION, version);
    assert.equal(JSON.parse(readFileSync(join(sdk, "package.json"), "utf8")).version, version);
  });
});
