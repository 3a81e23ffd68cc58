//! The Model Context Protocol (JSON-RPC 2.0): agent hosts list Lore's tools and call them.
//! Transport-independent: `lore mcp` speaks it over stdio (talking to a server over HTTP),
//! `lore serve` over streamable HTTP at `/mcp` (calling the services in-process). Both run the
//! same tools through a [`Backend`].

use async_trait::async_trait;
use serde_json::{Value, json};

pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Where the tools' work happens.
#[async_trait]
pub trait Backend: Send + Sync {
    async fn list_knowledge_bases(&self) -> Result<Value, String>;
    async fn search(
        &self,
        knowledge_base_id: &str,
        query: &str,
        mode: Option<&str>,
        top_k: u32,
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

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn text_result(value: &Value, is_error: bool) -> Value {
    let text = match value {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    json!({"content": [{"type": "text", "text": text}], "structuredContent": if is_error { Value::Null } else { value.clone() }, "isError": is_error})
}

fn string_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, String> {
    args.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("'{name}' is required"))
}

async fn call_tool(backend: &dyn Backend, name: &str, args: &Value) -> Result<Result<Value, String>, String> {
    Ok(match name {
        "list_knowledge_bases" => backend.list_knowledge_bases().await,
        "search" => {
            let kb = string_arg(args, "knowledge_base_id")?;
            let query = string_arg(args, "query")?;
            let top_k = args.get("top_k").and_then(Value::as_u64).unwrap_or(5).clamp(1, 100) as u32;
            let mode = args.get("mode").and_then(Value::as_str);
            backend.search(kb, query, mode, top_k).await
        }
        "list_agents" => backend.list_agents().await,
        "ask_agent" => {
            let conversation = args.get("conversation_id").and_then(Value::as_str);
            backend.ask_agent(string_arg(args, "agent")?, string_arg(args, "question")?, conversation).await
        }
        "list_documents" => backend.list_documents(string_arg(args, "knowledge_base_id")?).await,
        "get_document" => backend.get_document(string_arg(args, "document_id")?).await,
        other => return Err(format!("unknown tool '{other}'")),
    })
}

/// Answers one JSON-RPC message; `None` for notifications, which get no answer.
pub async fn handle(backend: &dyn Backend, message: Value) -> Option<Value> {
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return Some(error(message.get("id").cloned().unwrap_or(Value::Null), -32600, "not a JSON-RPC request"));
    };
    let id = message.get("id").cloned()?; // a notification (no id): nothing to answer
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    Some(match method {
        "initialize" => result(
            id,
            json!({
                "protocolVersion": params.get("protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION),
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "lore", "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Search the user's knowledge bases (Chinese and English) and read their documents."
            }),
        ),
        "ping" => result(id, json!({})),
        "tools/list" => result(id, json!({"tools": tools()})),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            match call_tool(backend, name, &args).await {
                Ok(Ok(value)) => result(id, text_result(&value, false)),
                // A failed call is a result the model can read, not a protocol error.
                Ok(Err(message)) => result(id, text_result(&Value::String(message), true)),
                Err(message) => error(id, -32602, message),
            }
        }
        other => error(id, -32601, format!("method '{other}' not found")),
    })
}

/// Parses one line or body; a batch (array) is answered as an array.
pub async fn handle_text(backend: &dyn Backend, text: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(batch)) => {
            let mut answers = Vec::new();
            for m in batch {
                answers.extend(handle(backend, m).await);
            }
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        Ok(message) => handle(backend, message).await,
        Err(e) => Some(error(Value::Null, -32700, format!("parse error: {e}"))),
    }
}

/// Runs the tools in-process for an authenticated caller (the `/mcp` endpoint).
pub struct ServiceBackend {
    pub state: crate::state::AppState,
    pub principal: crate::auth::Principal,
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
        &self,
        knowledge_base_id: &str,
        query: &str,
        mode: Option<&str>,
        top_k: u32,
    ) -> Result<Value, String> {
        let req = crate::service::SearchRequest {
            query: query.to_string(),
            mode: mode.map(str::to_string),
            top_k: Some(top_k),
            similarity_threshold: None,
            filters: Default::default(),
            search_target: None,
            weights: None,
            knowledge_base_ids: None,
        };
        let found = crate::service::search(&self.state, &self.principal, parse_id(knowledge_base_id)?, req)
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
