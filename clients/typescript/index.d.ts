// Types of @lore/client, written after Lore's OpenAPI document (`/openapi.json`). Each interface
// names the schema it mirrors (`@schema`); test/client.test.js fails when a field or its
// optionality disagrees with the live document.

export declare const VERSION: string;

/** @schema KnowledgeBase */
export interface KnowledgeBase {
  id: string;
  user_id: string;
  /** The workspace it lives in (another than the client's when shared into it). */
  workspace_id: string;
  created_by?: string | null;
  name: string;
  description?: string | null;
  icon_url?: string | null;
  status: string;
  settings: Record<string, unknown>;
  document_count: number;
  total_size_bytes: number;
  chunk_count: number;
  embedding_space?: string | null;
  last_updated_at?: string | null;
  created_at: string;
  updated_at: string;
}

/** @schema Document */
export interface Document {
  id: string;
  knowledge_base_id: string;
  user_id: string;
  uploaded_by?: string | null;
  data_source_id?: string | null;
  file_type_id?: number | null;
  title?: string | null;
  filename: string;
  file_type: string;
  file_size: number;
  mime_type: string;
  file_hash: string;
  status: "pending" | "processing" | "completed" | "failed" | string;
  progress: number;
  error_code?: string | null;
  error_message?: string | null;
  processing_log: Array<{ at?: string; stage?: string; message?: string }>;
  metadata: Record<string, unknown>;
  source_metadata: Record<string, unknown>;
  chunking_config?: unknown;
  chunk_count: number;
  processed_at?: string | null;
  expires_at?: string | null;
  soft_deleted_at?: string | null;
  created_at: string;
  updated_at: string;
}

/** @schema UploadResponse */
export interface UploadResponse extends Document {
  /** The same content was already in the knowledge base: this is that document. */
  duplicate: boolean;
}

/** @schema Chunk */
export interface Chunk {
  id: string;
  document_id: string;
  knowledge_base_id: string;
  content: string;
  content_hash: string;
  chunk_index: number;
  metadata: Record<string, unknown>;
  parent_chunk_id?: string | null;
  embedding_model?: string | null;
  enabled: boolean;
  edited_at?: string | null;
  created_at: string;
}

/** @schema ParentChunk */
export interface ParentChunk {
  chunk_id: string;
  content: string;
}

/** @schema SearchResult */
export interface SearchHit {
  chunk_id: string;
  document_id: string;
  knowledge_base_id: string;
  filename: string;
  title?: string | null;
  content: string;
  score: number;
  chunk_index: number;
  metadata: Record<string, unknown>;
  parent?: ParentChunk | null;
  highlight: string;
  vector_score?: number | null;
  fulltext_score?: number | null;
  /** With a rerank stage: the reranker's score, which orders the results. */
  rerank_score?: number | null;
}

/** @schema SearchResponse */
export interface SearchResponse {
  query: string;
  mode: string;
  results: SearchHit[];
  took_ms: number;
  embedding_model?: string | null;
  warning?: string | null;
}

/** The hits of a search, best first; `response` holds the rest. */
export type SearchResults = SearchHit[] & { readonly response: SearchResponse };

/** @schema ApiKey */
export interface ApiKey {
  id: string;
  user_id: string;
  created_by?: string | null;
  knowledge_base_id?: string | null;
  name: string;
  description?: string | null;
  key_prefix: string;
  key_suffix: string;
  scopes: Array<"search" | "upload" | "read" | "delete">;
  rate_limit?: number | null;
  daily_quota?: number | null;
  monthly_quota?: number | null;
  usage_count_today: number;
  usage_count_month: number;
  is_active: boolean;
  expires_at?: string | null;
  revoked_at?: string | null;
  last_used_at?: string | null;
  last_used_ip?: string | null;
  security: { allowed_ips?: string[]; allowed_origins?: string[] };
  created_at: string;
  updated_at: string;
}

/** @schema CreatedKey */
export interface CreatedKey {
  /** The key itself, shown this once. */
  key: string;
  api_key: ApiKey;
}

/** @schema Agent */
export interface Agent {
  id: string;
  user_id: string;
  created_by?: string | null;
  name: string;
  description?: string | null;
  agent_type: string;
  model_provider: string;
  model_name?: string | null;
  model_parameters: Record<string, unknown>;
  conversation_mode: string;
  context_window?: number | null;
  memory_retention_days?: number | null;
  system_prompt?: string | null;
  user_prompt_template?: string | null;
  max_documents: number;
  similarity_threshold?: number | null;
  rate_limit_per_hour?: number | null;
  rate_limit_per_day?: number | null;
  domain_keywords: string[];
  expertise_areas: string[];
  is_active: boolean;
  knowledge_base_ids: string[];
  data_source_ids: string[];
  file_type_ids: number[];
  created_at: string;
  updated_at: string;
}

/** @schema CitationView */
export interface Citation {
  index: number;
  document_id: string;
  chunk_id?: string | null;
  filename: string;
  snippet: string;
  score: number;
  /** Where the passage stands in its file: page, page_end, regions ({page, bbox, page_size}), slide, sheet. */
  location?: Record<string, unknown> | null;
}

/** @schema MessageView */
export interface Message {
  id: string;
  role: "system" | "user" | "assistant";
  content: string;
  citations: Citation[];
}

/** @schema ChatAnswer */
export interface ChatAnswer {
  conversation_id?: string | null;
  message: Message;
  usage: Record<string, unknown>;
  extractive: boolean;
}

export type StreamEvent = { type: "token"; content: string } | { type: "done"; answer: ChatAnswer };

export declare class LoreError extends Error {
  /** Lore's stable error code: `not_found`, `rate_limited`, `invalid_body` ... */
  readonly code: string;
  readonly status: number | null;
  readonly type: string | null;
  readonly requestId: string | null;
  /** Seconds Lore asked to wait before trying again. */
  readonly retryAfter: number | null;
  readonly body: unknown;
}
export declare class AuthenticationError extends LoreError {}
export declare class PermissionDeniedError extends LoreError {}
export declare class NotFoundError extends LoreError {}
export declare class ConflictError extends LoreError {}
export declare class ValidationError extends LoreError {}
export declare class RateLimitError extends LoreError {}
export declare class ServerError extends LoreError {}
export declare class ConnectionError extends LoreError {}
export declare const RETRYABLE_CODES: ReadonlySet<string>;

export interface LoreOptions {
  /** Default: LORE_BASE_URL, else http://127.0.0.1:8080. */
  baseUrl?: string;
  /** An API key or a session token. Default: LORE_API_KEY. */
  apiKey?: string;
  /** Tries of a retryable error after the first (default 2), after Retry-After when sent. */
  maxRetries?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface UploadOptions {
  filename?: string;
  mimeType?: string;
  /** Resolve once the document is processed (`completed` or `failed`). */
  wait?: boolean;
  timeoutMs?: number;
  metadata?: Record<string, unknown>;
  chunkingConfig?: Record<string, unknown>;
}

export interface SearchOptions {
  topK?: number;
  mode?: "hybrid" | "vector" | "fulltext";
  filters?: Record<string, unknown>;
  similarityThreshold?: number;
  searchTarget?: "content" | "summary" | "both";
  weights?: { vector?: number; fulltext?: number };
  /** Hybrid fusion: normalised scores (`weighted`, the default) or reciprocal rank (`rrf`). */
  fusion?: "rrf" | "weighted";
  /** `false`: no rerank stage; a reranker for this search; the knowledge base's otherwise. */
  rerank?: boolean | { provider: "cohere" | "jina" | "voyage" | "tei" | "vllm"; model?: string; base_url?: string; candidates?: number; top_n?: number };
}

export declare class Lore {
  constructor(options?: LoreOptions);
  readonly baseUrl: string;
  auth: {
    register(body: { username: string; email: string; password: string; invitation?: string }): Promise<{ token: string; user: unknown }>;
    login(username: string, password: string): Promise<{ token: string; user: unknown }>;
    logout(): Promise<null>;
  };
  apiKeys: {
    create(body: { name: string; scopes: string[]; knowledge_base_id?: string; rate_limit?: number; [k: string]: unknown }): Promise<CreatedKey>;
    list(): Promise<ApiKey[]>;
    update(id: string, changes: Record<string, unknown>): Promise<ApiKey>;
    revoke(id: string): Promise<null>;
  };
  knowledgeBases: {
    create(body: { name: string; description?: string; icon_url?: string; settings?: Record<string, unknown> }): Promise<KnowledgeBase>;
    list(): Promise<KnowledgeBase[]>;
    get(id: string): Promise<KnowledgeBase>;
    update(id: string, changes: Record<string, unknown>): Promise<KnowledgeBase>;
    delete(id: string): Promise<null>;
  };
  documents: {
    /** A path (Node), a Blob/File, or bytes with `filename`. */
    upload(knowledgeBaseId: string, file: string | Blob | Uint8Array | ArrayBuffer, options?: UploadOptions): Promise<UploadResponse>;
    get(id: string): Promise<Document>;
    list(knowledgeBaseId: string, query?: { status?: string; include_deleted?: boolean; limit?: number; offset?: number }): Promise<Document[]>;
    wait(id: string, options?: { timeoutMs?: number; intervalMs?: number }): Promise<Document>;
    delete(id: string): Promise<null>;
    restore(id: string): Promise<Document>;
    chunks(id: string): Promise<Chunk[]>;
    download(id: string): Promise<Uint8Array>;
  };
  chunks: {
    get(id: string): Promise<Chunk>;
    update(id: string, changes: { content?: string; metadata?: Record<string, unknown>; enabled?: boolean }): Promise<Chunk>;
    /** A chunk written by hand, or a Q&A entry (`question` and `answer`). */
    add(documentId: string, body: { content?: string; question?: string; answer?: string; match_answer?: boolean; metadata?: Record<string, unknown> }): Promise<Chunk>;
  };
  agents: {
    create(spec: { name: string; knowledge_base_ids?: string[]; [k: string]: unknown }): Promise<Agent>;
    list(): Promise<Agent[]>;
    get(id: string): Promise<Agent>;
    update(id: string, changes: Record<string, unknown>): Promise<Agent>;
    delete(id: string): Promise<null>;
    chat(id: string, message: string, options?: { conversationId?: string }): Promise<ChatAnswer>;
    /** `token` events as the answer is written, then `done` with the whole answer. */
    chatStream(id: string, message: string, options?: { conversationId?: string }): AsyncIterable<StreamEvent>;
  };
  chat: {
    completions: {
      /** Lore's OpenAI-compatible endpoint; `model` is an agent's id or name. */
      create(body: { model: string; messages: Array<{ role: string; content: string }>; stream?: false; [k: string]: unknown }): Promise<any>;
      create(body: { model: string; messages: Array<{ role: string; content: string }>; stream: true; [k: string]: unknown }): AsyncIterable<any>;
    };
  };
  usage: {
    api(query?: Record<string, string | number>): Promise<any>;
    agents(query?: Record<string, string | number>): Promise<any>;
  };
  /** The audit log entries that concern the signed-in person: `{action?, since?, before?, limit?}`. */
  audit(query?: Record<string, string | number>): Promise<any[]>;
  search(knowledgeBaseIds: string | string[], query: string, options?: SearchOptions): Promise<SearchResults>;
  me(): Promise<unknown>;
  /** Any endpoint by its OpenAPI path template. */
  request(method: string, template: string, options?: { path?: Record<string, string>; json?: unknown; query?: Record<string, unknown> }): Promise<any>;
}
