// @lore/client: Lore's HTTP API over fetch, as ESM. Types in index.d.ts, written after Lore's
// OpenAPI document; test/client.test.js holds the two together.
//
//   import { Lore } from "@lore/client";
//   const lore = new Lore({ baseUrl: "http://127.0.0.1:8080", apiKey: "lore_..." });
//   const kb = await lore.knowledgeBases.create({ name: "docs" });
//   const doc = await lore.documents.upload(kb.id, "guide.md", { wait: true });
//   const hits = await lore.search(kb.id, "query", { topK: 5 });

export const VERSION = "0.1.0";

/** An error answer from Lore; `code` is Lore's stable error code. */
export class LoreError extends Error {
  constructor(code, message, { status = null, type = null, requestId = null, retryAfter = null, body = null } = {}) {
    super(status === null ? `${code}: ${message}` : `${status} ${code}: ${message}`);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.body = body;
  }
}
export class AuthenticationError extends LoreError {}
export class PermissionDeniedError extends LoreError {}
export class NotFoundError extends LoreError {}
export class ConflictError extends LoreError {}
export class ValidationError extends LoreError {}
export class RateLimitError extends LoreError {}
export class ServerError extends LoreError {}
export class ConnectionError extends LoreError {}

/** Codes worth trying again after a pause. */
export const RETRYABLE_CODES = new Set([
  "rate_limited", "model_unavailable", "embedding_failed", "llm_unavailable", "llm_timeout", "service_unavailable",
  "storage_unavailable", "database_unavailable", "database_busy", "connection_error",
]);
const MAX_RETRY_WAIT_MS = 30_000;

function errorFor(status, body, retryAfter) {
  const detail = body && typeof body === "object" ? body.error : null;
  const code = detail?.code ?? `http_${status}`;
  const message = detail?.message ?? String(body ?? "").slice(0, 500);
  const Kind = status === 401 ? AuthenticationError
    : status === 403 ? PermissionDeniedError
    : status === 404 ? NotFoundError
    : status === 409 ? ConflictError
    : status === 429 ? RateLimitError
    : status >= 500 ? ServerError
    : ValidationError;
  return new Kind(code, message, { status, type: detail?.type ?? null, requestId: detail?.request_id ?? null, retryAfter, body });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function pathOf(template, params = {}) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(String(params[name])));
}

function clean(fields) {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** Server-sent events from a fetch body, as { event, data } with JSON data decoded. */
async function* readEvents(body) {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data = [];
  const flush = function* () {
    if (data.length) {
      const text = data.join("\n");
      let payload = text;
      try { payload = JSON.parse(text); } catch { /* text */ }
      yield { event, data: payload };
    }
    event = "message";
    data = [];
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") yield* flush();
      else if (line.startsWith(":")) continue;
      else if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
  }
  yield* flush();
}

export class Lore {
  /**
   * @param {{baseUrl?: string, apiKey?: string, maxRetries?: number, timeoutMs?: number, fetch?: typeof fetch}} options
   */
  constructor({ baseUrl, apiKey, maxRetries = 2, timeoutMs = 120_000, fetch: fetchImpl } = {}) {
    const env = typeof process !== "undefined" ? process.env : {};
    this.baseUrl = (baseUrl ?? env.LORE_BASE_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    this.apiKey = apiKey ?? env.LORE_API_KEY ?? null;
    this.maxRetries = maxRetries;
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);

    const call = (method, template, options) => this.request(method, template, options);
    this.auth = {
      register: (body) => call("POST", "/v1/auth/register", { json: body }),
      login: (username, password) => call("POST", "/v1/auth/login", { json: { username, password } }),
      logout: () => call("POST", "/v1/auth/logout"),
    };
    this.apiKeys = {
      create: (body) => call("POST", "/v1/api-keys", { json: body }),
      list: async () => (await call("GET", "/v1/api-keys")).data,
      update: (id, changes) => call("PATCH", "/v1/api-keys/{id}", { path: { id }, json: changes }),
      revoke: (id) => call("DELETE", "/v1/api-keys/{id}", { path: { id } }),
    };
    this.knowledgeBases = {
      create: (body) => call("POST", "/v1/knowledge-bases", { json: body }),
      list: async () => (await call("GET", "/v1/knowledge-bases")).data,
      get: (id) => call("GET", "/v1/knowledge-bases/{id}", { path: { id } }),
      update: (id, changes) => call("PATCH", "/v1/knowledge-bases/{id}", { path: { id }, json: changes }),
      delete: (id) => call("DELETE", "/v1/knowledge-bases/{id}", { path: { id } }),
    };
    this.documents = {
      upload: (kbId, file, options) => this.#upload(kbId, file, options),
      get: (id) => call("GET", "/v1/documents/{id}", { path: { id } }),
      list: async (kbId, query = {}) =>
        (await call("GET", "/v1/knowledge-bases/{id}/documents", { path: { id: kbId }, query })).data,
      wait: (id, options) => this.#wait(id, options),
      delete: (id) => call("DELETE", "/v1/documents/{id}", { path: { id } }),
      restore: (id) => call("POST", "/v1/documents/{id}/restore", { path: { id } }),
      chunks: async (id) => (await call("GET", "/v1/documents/{id}/chunks", { path: { id } })).data,
      download: async (id) => {
        const response = await this.#send("GET", "/v1/documents/{id}/file", { path: { id }, raw: true });
        return new Uint8Array(await response.arrayBuffer());
      },
    };
    this.chunks = {
      get: (id) => call("GET", "/v1/chunks/{id}", { path: { id } }),
      update: (id, changes) => call("PATCH", "/v1/chunks/{id}", { path: { id }, json: changes }),
      add: (documentId, body) => call("POST", "/v1/documents/{id}/chunks", { path: { id: documentId }, json: body }),
    };
    this.agents = {
      create: (spec) => call("POST", "/v1/agents", { json: spec }),
      list: async () => (await call("GET", "/v1/agents")).data,
      get: (id) => call("GET", "/v1/agents/{id}", { path: { id } }),
      update: (id, changes) => call("PATCH", "/v1/agents/{id}", { path: { id }, json: changes }),
      delete: (id) => call("DELETE", "/v1/agents/{id}", { path: { id } }),
      chat: (id, message, { conversationId } = {}) =>
        call("POST", "/v1/agents/{id}/chat", { path: { id }, json: clean({ message, conversation_id: conversationId }) }),
      chatStream: (id, message, { conversationId } = {}) => this.#chatStream(id, message, conversationId),
    };
    this.chat = {
      completions: {
        create: (body) => (body.stream ? this.#completionStream(body) : call("POST", "/v1/chat/completions", { json: body })),
      },
    };
    this.usage = {
      api: (query = {}) => call("GET", "/v1/usage/api", { query }),
      agents: (query = {}) => call("GET", "/v1/usage/agents", { query }),
    };
    /** The audit log entries that concern the signed-in person, newest first. */
    this.audit = (query = {}) => call("GET", "/v1/audit", { query }).then((r) => r.data);
  }

  /** Searches one knowledge base (an id) or several (an array): hits best first. */
  async search(knowledgeBaseIds, query, { topK, mode, filters, similarityThreshold, searchTarget, weights, fusion, rerank } = {}) {
    const body = clean({
      query, top_k: topK, mode, filters, similarity_threshold: similarityThreshold, search_target: searchTarget, weights, fusion, rerank,
    });
    const response = Array.isArray(knowledgeBaseIds)
      ? await this.request("POST", "/v1/search", { json: { ...body, knowledge_base_ids: knowledgeBaseIds } })
      : await this.request("POST", "/v1/knowledge-bases/{id}/search", { path: { id: knowledgeBaseIds }, json: body });
    const hits = response.results;
    Object.defineProperty(hits, "response", { value: response, enumerable: false });
    return hits;
  }

  me() {
    return this.request("GET", "/v1/me");
  }

  /** Any endpoint by its OpenAPI path template; retries the retryable codes. */
  async request(method, template, options = {}) {
    const response = await this.#send(method, template, options);
    const text = await response.text();
    if (!text) return null;
    try { return JSON.parse(text); } catch { return text; }
  }

  async #send(method, template, { path, json, query, form, retry = true, raw = false, stream = false } = {}) {
    const url = new URL(this.baseUrl + pathOf(template, path));
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers = { accept: stream ? "text/event-stream" : "application/json", "user-agent": `lore-client-js/${VERSION}` };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let body;
    if (json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    for (let attempt = 0; ; attempt++) {
      let error;
      try {
        const response = await this.fetch(url, {
          method, headers, body, signal: stream ? undefined : AbortSignal.timeout(this.timeoutMs),
        });
        if (response.ok) return response;
        const text = await response.text();
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        const after = response.headers.get("retry-after");
        error = errorFor(response.status, parsed, after === null || Number.isNaN(Number(after)) ? null : Number(after));
      } catch (e) {
        if (e instanceof LoreError) throw e;
        error = new ConnectionError("connection_error", `Lore could not be reached: ${e.message}`);
      }
      if (!retry || attempt >= this.maxRetries || !RETRYABLE_CODES.has(error.code)) throw error;
      const wait = error.retryAfter !== null ? error.retryAfter * 1000 : 500 * 2 ** attempt + Math.random() * 250;
      await sleep(Math.min(wait, MAX_RETRY_WAIT_MS));
    }
  }

  async #upload(kbId, file, { filename, wait = false, timeoutMs = 600_000, metadata, chunkingConfig, mimeType } = {}) {
    let blob;
    let name = filename;
    if (typeof file === "string") {
      // A path (Node): read it.
      const { readFile } = await import("node:fs/promises");
      const { basename } = await import("node:path");
      blob = new Blob([await readFile(file)], { type: mimeType ?? "application/octet-stream" });
      name ??= basename(file);
    } else if (file instanceof Blob) {
      blob = file;
      name ??= file.name;
    } else {
      blob = new Blob([file], { type: mimeType ?? "application/octet-stream" });
    }
    if (!name) throw new TypeError("name the file: upload(kbId, bytes, { filename: 'notes.md' })");
    const form = new FormData();
    form.append("file", blob, name);
    if (metadata !== undefined) form.append("metadata", JSON.stringify(metadata));
    if (chunkingConfig !== undefined) form.append("chunking_config", JSON.stringify(chunkingConfig));
    // Uploads are not repeated: the server keeps one copy of any content anyway.
    const document = await this.request("POST", "/v1/knowledge-bases/{id}/documents", { path: { id: kbId }, form, retry: false });
    return wait ? this.#wait(document.id, { timeoutMs }) : document;
  }

  async #wait(id, { timeoutMs = 600_000, intervalMs = 250 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (let interval = intervalMs; ; interval = Math.min(interval * 1.5, 2000)) {
      const document = await this.request("GET", "/v1/documents/{id}", { path: { id } });
      if (document.status === "completed" || document.status === "failed") return document;
      if (Date.now() > deadline) throw new Error(`document ${id} still ${document.status} after ${timeoutMs} ms`);
      await sleep(interval);
    }
  }

  async *#chatStream(id, message, conversationId) {
    const response = await this.#send("POST", "/v1/agents/{id}/chat", {
      path: { id }, json: clean({ message, conversation_id: conversationId, stream: true }), stream: true, retry: false,
    });
    for await (const { event, data } of readEvents(response.body)) {
      if (event === "token") yield { type: "token", content: data?.content ?? "" };
      else if (event === "done") yield { type: "done", answer: data };
      else if (event === "error") throw errorFor(502, data, null);
    }
  }

  async *#completionStream(body) {
    const response = await this.#send("POST", "/v1/chat/completions", { json: body, stream: true, retry: false });
    for await (const { data } of readEvents(response.body)) {
      if (data && typeof data === "object") yield data;
    }
  }
}
