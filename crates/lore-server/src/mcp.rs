//! The Model Context Protocol (JSON-RPC 2.0): agent hosts list Lore's tools and call them.
//! The official SDK (rmcp) speaks the protocol: `lore mcp` over stdio (talking to a server over
//! HTTP), `lore serve` over streamable HTTP at `/mcp` (calling the services in-process). Both run
//! the same tools through a [`Backend`].

use std::sync::Arc;

use async_trait::async_trait;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::state::AppState;

/// Where the tools' work happens.
#[async_trait]
pub trait Backend: Send + Sync {
    async fn list_knowledge_bases(&self) -> Result<Value, String>;
    async fn search(
        &self, knowledge_base_id: &str, query: &str, mode: Option<&str>, top_k: u32,
    ) -> Result<Value, String>;
    async fn list_documents(&self, knowledge_base_id: &str) -> Result<Value, String>;
    async fn get_document(&self, document_id: &str) -> Result<Value, String>;
    async fn list_agents(&self) -> Result<Value, String>;
    /// An agent's answer with its citations; `agent` is its id or name.
    async fn ask_agent(&self, agent: &str, question: &str, conversation_id: Option<&str>) -> Result<Value, String>;
}

pub fn tools() -> Value {
    json!([
        {
            "name": "list_knowledge_bases",
            "description": "List the knowledge bases this key may read, with their document counts.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false}
        },
        {
            "name": "search",
            "description": "Search a knowledge base by meaning and words (hybrid, Chinese and English). Returns the best passages with their document, score and a highlighted excerpt.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "knowledge_base_id": {"type": "string", "description": "from list_knowledge_bases"},
                    "query": {"type": "string"},
                    "mode": {"type": "string", "enum": ["hybrid", "vector", "fulltext"], "default": "hybrid"},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5}
                },
                "required": ["knowledge_base_id", "query"],
                "additionalProperties": false
            }
        },
        {
            "name": "list_documents",
            "description": "List the documents of a knowledge base with their processing status.",
            "inputSchema": {
                "type": "object",
                "properties": {"knowledge_base_id": {"type": "string"}},
                "required": ["knowledge_base_id"],
                "additionalProperties": false
            }
        },
        {
            "name": "get_document",
            "description": "A document's metadata and full extracted text.",
            "inputSchema": {
                "type": "object",
                "properties": {"document_id": {"type": "string"}},
                "required": ["document_id"],
                "additionalProperties": false
            }
        },
        {
            "name": "list_agents",
            "description": "List the AI agents this key may ask, with what they know about.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false}
        },
        {
            "name": "ask_agent",
            "description": "Ask an AI agent a question; it answers from its knowledge bases with numbered citations. Pass conversation_id from an earlier answer to continue that conversation.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "description": "the agent's id or name, from list_agents"},
                    "question": {"type": "string"},
                    "conversation_id": {"type": "string"}
                },
                "required": ["agent", "question"],
                "additionalProperties": false
            }
        }
    ])
}

/// Lore's MCP server: rmcp speaks the protocol (initialize, tools/list, tools/call, ping) on any
/// transport; the tools run on a [`Backend`].
#[derive(Clone)]
pub struct LoreMcp {
    backends: Backends,
}

#[derive(Clone)]
enum Backends {
    /// One backend for the whole connection (stdio: the `lore mcp` process has one identity).
    Fixed(Arc<dyn Backend>),
    /// In-process, as the caller the HTTP request authenticated (`/mcp` on `serve`).
    PerCaller(AppState),
}

impl LoreMcp {
    pub fn over(backend: Arc<dyn Backend>) -> Self {
        Self { backends: Backends::Fixed(backend) }
    }

    pub fn in_process(state: AppState) -> Self {
        Self { backends: Backends::PerCaller(state) }
    }

    fn backend(&self, context: &RequestContext<RoleServer>) -> Result<Arc<dyn Backend>, ErrorData> {
        match &self.backends {
            Backends::Fixed(backend) => Ok(backend.clone()),
            Backends::PerCaller(state) => {
                // `mcp_http` authenticated the request and put its caller among the HTTP parts.
                let principal = context
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Principal>())
                    .cloned()
                    .ok_or_else(|| ErrorData::internal_error("no authenticated caller", None))?;
                Ok(Arc::new(ServiceBackend { state: state.clone(), principal }))
            }
        }
    }
}

fn string_arg<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, ErrorData> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ErrorData::invalid_params(format!("'{name}' is required"), None))
}

fn named(name: &str, list: Result<Value, String>) -> Result<Value, String> {
    list.map(|list| json!({ name: list }))
}

/// The tool's answer as text for the model and as structured content for programs.
fn tool_result(outcome: Result<Value, String>) -> CallToolResult {
    match outcome {
        Ok(value) => {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(value);
            result
        }
        // A failed call is a result the model can read, not a protocol error.
        Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
}

impl ServerHandler for LoreMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lore", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Search the user's knowledge bases (Chinese and English), read their documents and ask their agents.",
            )
    }

    async fn list_tools(
        &self, _request: Option<PaginatedRequestParams>, _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools: Vec<Tool> =
            serde_json::from_value(tools()).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self, request: CallToolRequestParams, context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let backend = self.backend(&context)?;
        let args = request.arguments.unwrap_or_default();
        let outcome = match request.name.as_ref() {
            // Structured content is an object by the protocol: lists come under a name.
            "list_knowledge_bases" => named("knowledge_bases", backend.list_knowledge_bases().await),
            "search" => {
                let kb = string_arg(&args, "knowledge_base_id")?;
                let query = string_arg(&args, "query")?;
                let top_k = args.get("top_k").and_then(Value::as_u64).unwrap_or(5).clamp(1, 100) as u32;
                let mode = args.get("mode").and_then(Value::as_str);
                backend.search(kb, query, mode, top_k).await
            }
            "list_agents" => named("agents", backend.list_agents().await),
            "ask_agent" => {
                let conversation = args.get("conversation_id").and_then(Value::as_str);
                backend.ask_agent(string_arg(&args, "agent")?, string_arg(&args, "question")?, conversation).await
            }
            "list_documents" => {
                named("documents", backend.list_documents(string_arg(&args, "knowledge_base_id")?).await)
            }
            "get_document" => backend.get_document(string_arg(&args, "document_id")?).await,
            other => return Err(ErrorData::invalid_params(format!("unknown tool '{other}'"), None)),
        };
        Ok(tool_result(outcome).into())
    }
}

/// `lore mcp`: the protocol on stdin/stdout until the host closes them.
pub async fn serve_stdio(backend: Arc<dyn Backend>) -> std::io::Result<()> {
    let running = LoreMcp::over(backend).serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// `/mcp` on `serve`: streamable HTTP, stateless (each POST stands alone, so any node of a
/// cluster can answer it), answered as plain JSON when the tool sends nothing along the way.
pub fn http_service(state: AppState) -> StreamableHttpService<LoreMcp, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // Callers authenticate with a key; the loopback-only Host check is for unauthenticated
        // local servers and would refuse every deployment behind a real host name.
        .disable_allowed_hosts();
    StreamableHttpService::new(move || Ok(LoreMcp::in_process(state.clone())), Default::default(), config)
}

/// Runs the tools in-process for an authenticated caller (the `/mcp` endpoint).
struct ServiceBackend {
    state: AppState,
    principal: Principal,
}

fn api(e: crate::error::ApiError) -> String {
    format!("{}: {}", e.error.code.as_str(), e.error.message)
}

fn parse_id(s: &str) -> Result<lore_core::model::Id, String> {
    s.parse().map_err(|_| format!("'{s}' is not an id"))
}

#[async_trait]
impl Backend for ServiceBackend {
    async fn list_knowledge_bases(&self) -> Result<Value, String> {
        let kbs = crate::service::list_knowledge_bases(&self.state, &self.principal).await.map_err(api)?;
        Ok(json!(kbs.iter().map(|kb| json!({"id": kb.id, "name": kb.name, "description": kb.description, "document_count": kb.document_count})).collect::<Vec<_>>()))
    }

    async fn search(
        &self, knowledge_base_id: &str, query: &str, mode: Option<&str>, top_k: u32,
    ) -> Result<Value, String> {
        let query = crate::service::SearchQuery {
            text: query.to_string(),
            mode: mode.map(str::parse).transpose().map_err(|e: lore_core::error::Error| api(e.into()))?,
            top_k: Some(top_k),
            ..Default::default()
        };
        let found = crate::service::search(&self.state, &self.principal, parse_id(knowledge_base_id)?, query)
            .await
            .map_err(api)?;
        serde_json::to_value(found).map_err(|e| e.to_string())
    }

    async fn list_documents(&self, knowledge_base_id: &str) -> Result<Value, String> {
        let params = crate::service::ListDocumentsParams {
            status: None,
            include_deleted: false,
            limit: Some(200),
            offset: None,
        };
        let (docs, ..) =
            crate::service::list_documents(&self.state, &self.principal, parse_id(knowledge_base_id)?, params)
                .await
                .map_err(api)?;
        Ok(json!(docs.iter().map(|d| json!({"id": d.id, "filename": d.filename, "title": d.title, "status": d.status, "chunk_count": d.chunk_count})).collect::<Vec<_>>()))
    }

    async fn get_document(&self, document_id: &str) -> Result<Value, String> {
        let view = crate::service::get_document(&self.state, &self.principal, parse_id(document_id)?, true)
            .await
            .map_err(api)?;
        serde_json::to_value(view).map_err(|e| e.to_string())
    }

    async fn list_agents(&self) -> Result<Value, String> {
        let agents = crate::agents::list(&self.state, &self.principal).await.map_err(api)?;
        Ok(json!(agents.iter().map(agent_summary).collect::<Vec<_>>()))
    }

    async fn ask_agent(&self, agent: &str, question: &str, conversation_id: Option<&str>) -> Result<Value, String> {
        self.principal.require(lore_core::model::Scope::Read).map_err(api)?;
        let id = crate::agents::by_id_or_name(&self.state, &self.principal, agent).await.map_err(api)?.id;
        let req = crate::agents::ChatRequest {
            message: question.to_string(),
            conversation_id: conversation_id.map(parse_id).transpose()?,
            stream: false,
        };
        let turn = crate::agents::begin_chat(&self.state, &self.principal, id, &req).await.map_err(api)?;
        let answer = crate::agents::complete_turn(&self.state, turn, None, true).await.map_err(api)?;
        serde_json::to_value(answer).map_err(|e| e.to_string())
    }
}

/// What an agent host needs to pick an agent.
pub fn agent_summary(agent: &Value) -> Value {
    json!({"id": agent["id"], "name": agent["name"], "description": agent["description"],
           "domain_keywords": agent["domain_keywords"], "expertise_areas": agent["expertise_areas"],
           "is_active": agent["is_active"]})
}
