//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API. Every body schema is derived
//! from the type the handler itself reads or writes (`utoipa::ToSchema`); the table below says
//! which operation uses which, and a test holds it to the router: a route without an entry here
//! fails the build's tests. `GET /docs` renders the document offline.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    ArrayBuilder, ComponentsBuilder, KnownFormat, ObjectBuilder, Ref, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr, Required};

use crate::{agents, describe, governance, invitations, service};

mod workspaces;
use lore_core::agent::{ChatMessage, Conversation};
use lore_core::model::*;

/// The error body every failure has.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: what a program branches on.
    pub code: String,
    /// What a person can act on.
    pub message: String,
    /// invalid_request, auth, permission, not_found, conflict, rate_limited or internal.
    #[serde(rename = "type")]
    pub kind: String,
    /// For server errors: the id under which the cause was logged.
    pub request_id: Option<String>,
}

struct Doc {
    paths: Paths,
    schemas: BTreeMap<String, RefOr<Schema>>,
}

impl Doc {
    fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().to_string();
        self.schemas.insert(name.clone(), T::schema());
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.schemas.extend(nested);
        Ref::from_schema_name(name).into()
    }

    fn op(&mut self, method: HttpMethod, path: &'static str, tag: &str, summary: &str) -> Op<'_> {
        let mut operation = OperationBuilder::new().tag(tag).summary(Some(summary));
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(['{', '}']);
            let schema: RefOr<Schema> = if path.starts_with("/v1/file-types") {
                ObjectBuilder::new().schema_type(Type::Integer).into()
            } else {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
                    .into()
            };
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        let error = self.schema::<ErrorBody>();
        let responses = ResponsesBuilder::new().response(
            "default",
            ResponseBuilder::new()
                .description("an error: `{\"error\": {code, message, type}}` with the matching status")
                .content("application/json", ContentBuilder::new().schema(Some(error)).build()),
        );
        Op { doc: self, method, path, operation, responses, public: false }
    }
}

struct Op<'a> {
    doc: &'a mut Doc,
    method: HttpMethod,
    path: &'static str,
    operation: OperationBuilder,
    responses: ResponsesBuilder,
    public: bool,
}

impl Op<'_> {
    fn json_body(mut self, schema: RefOr<Schema>) -> Self {
        self.operation = self.operation.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        ));
        self
    }

    fn body<T: ToSchema>(self) -> Self {
        let schema = self.doc.schema::<T>();
        self.json_body(schema)
    }

    /// A PATCH body: the fields of `T`, none of them required.
    fn patch_body<T: ToSchema>(self) -> Self {
        self.doc.schema::<T>();
        let name = format!("{}Patch", T::name());
        let mut schema = T::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required.clear();
        }
        self.doc.schemas.insert(name.clone(), schema);
        self.json_body(Ref::from_schema_name(name).into())
    }

    /// Query parameters: the properties of `T`.
    fn query<T: ToSchema>(mut self) -> Self {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.doc.schemas.extend(nested);
        if let RefOr::T(Schema::Object(object)) = T::schema() {
            for (name, schema) in object.properties {
                let required = if object.required.contains(&name) { Required::True } else { Required::False };
                self.operation = self.operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Query)
                        .required(required)
                        .schema(Some(schema)),
                );
            }
        }
        self
    }

    fn respond(self, status: u16, description: &str, content: Option<(&str, RefOr<Schema>)>) -> Self {
        self.respond_in(status, description, content.into_iter().collect())
    }

    /// A response that comes in any of several media types.
    fn respond_in(mut self, status: u16, description: &str, contents: Vec<(&str, RefOr<Schema>)>) -> Self {
        let mut response = ResponseBuilder::new().description(description);
        for (media, schema) in contents {
            response = response.content(media, ContentBuilder::new().schema(Some(schema)).build());
        }
        self.responses = self.responses.response(status.to_string(), response);
        self
    }

    fn ok<T: ToSchema>(self, status: u16) -> Self {
        let schema = self.doc.schema::<T>();
        self.respond(status, "success", Some(("application/json", schema)))
    }

    /// `{"data": [T]}`.
    fn list<T: ToSchema>(self) -> Self {
        let item = self.doc.schema::<T>();
        let schema = ObjectBuilder::new().property("data", ArrayBuilder::new().items(item)).required("data").into();
        self.respond(200, "success", Some(("application/json", schema)))
    }

    fn no_content(self) -> Self {
        self.respond(204, "done", None)
    }

    fn public(mut self) -> Self {
        self.public = true;
        self
    }

    fn add(self) {
        let mut operation = self.operation.responses(self.responses.build());
        if !self.public {
            operation = operation.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        if !self.public && !self.path.starts_with("/v1/workspaces") {
            let uuid = ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("X-Lore-Workspace")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "With a session: the workspace to act in (default: the caller's own). A key acts in its own.",
                    ))
                    .schema(Some(uuid)),
            );
        }
        self.doc.paths.add_path_operation(self.path, vec![self.method], operation.build());
    }
}

fn binary() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))).into()
}

fn any_object() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

/// One server-sent event: its name and its data (JSON, as text).
fn event_stream() -> RefOr<Schema> {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    ObjectBuilder::new().schema_type(Type::Object).property("event", text()).property("data", text()).into()
}

/// The whole document.
pub fn document() -> OpenApi {
    use HttpMethod::{Delete, Get, Patch, Post, Put};
    let mut d = Doc { paths: Paths::new(), schemas: BTreeMap::new() };

    // accounts
    d.op(Post, "/v1/auth/register", "accounts", "Create an account and a session: the first account administers the installation; later ones as `--registration` allows (by default with an invitation)")
        .public()
        .body::<service::RegisterRequest>()
        .ok::<service::AuthResponse>(201)
        .add();
    d.op(Post, "/v1/auth/login", "accounts", "Sign in with username or email")
        .public()
        .body::<service::LoginRequest>()
        .ok::<service::AuthResponse>(200)
        .add();
    d.op(Post, "/v1/auth/logout", "accounts", "End this session").no_content().add();
    d.op(Get, "/v1/me", "accounts", "The caller and how it is authenticated").ok::<service::MeResponse>(200).add();
    d.op(Post, "/v1/auth/password", "accounts", "Change the password; other sessions end")
        .body::<governance::PasswordChange>()
        .no_content()
        .add();
    let revoked: RefOr<Schema> =
        ObjectBuilder::new().property("revoked", ObjectBuilder::new().schema_type(Type::Integer)).into();
    d.op(Delete, "/v1/auth/sessions", "accounts", "End every session of the caller")
        .respond(200, "sessions ended", Some(("application/json", revoked)))
        .add();

    // API keys
    d.op(Post, "/v1/api-keys", "api keys", "Create an API key; the key is shown once")
        .body::<service::CreateKeyRequest>()
        .ok::<service::CreatedKey>(201)
        .add();
    d.op(Get, "/v1/api-keys", "api keys", "The caller's keys (prefix and suffix only)").list::<ApiKey>().add();
    d.op(Patch, "/v1/api-keys/{id}", "api keys", "Change a key's name, limits, security or expiry; narrow its scopes")
        .body::<service::UpdateKeyRequest>()
        .ok::<ApiKey>(200)
        .add();
    d.op(Delete, "/v1/api-keys/{id}", "api keys", "Revoke a key").no_content().add();

    // knowledge bases
    d.op(Post, "/v1/knowledge-bases", "knowledge bases", "Create a knowledge base")
        .body::<service::CreateKbRequest>()
        .ok::<KnowledgeBase>(201)
        .add();
    d.op(Get, "/v1/knowledge-bases", "knowledge bases", "The caller's knowledge bases").list::<KnowledgeBase>().add();
    d.op(Get, "/v1/knowledge-bases/{id}", "knowledge bases", "A knowledge base with its statistics")
        .ok::<KnowledgeBase>(200)
        .add();
    d.op(Patch, "/v1/knowledge-bases/{id}", "knowledge bases", "Change name, description, status or settings")
        .body::<service::UpdateKbRequest>()
        .ok::<KnowledgeBase>(200)
        .add();
    d.op(Delete, "/v1/knowledge-bases/{id}", "knowledge bases", "Delete a knowledge base and its documents")
        .no_content()
        .add();

    // documents
    let upload: RefOr<Schema> = ObjectBuilder::new()
        .property(
            "file",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary))),
        )
        .property("chunking_config", ObjectBuilder::new().schema_type(Type::String).description(Some("JSON")))
        .property("metadata", ObjectBuilder::new().schema_type(Type::String).description(Some("JSON object")))
        .required("file")
        .into();
    let mut op = d.op(Post, "/v1/knowledge-bases/{id}/documents", "documents", "Upload a file (multipart)");
    op.operation = op.operation.request_body(Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content("multipart/form-data", ContentBuilder::new().schema(Some(upload)).build())
            .build(),
    ));
    let uploaded = op.doc.schema::<service::UploadResponse>();
    op.respond(202, "queued for processing", Some(("application/json", uploaded.clone())))
        .respond(200, "the same file is already there (`duplicate: true`)", Some(("application/json", uploaded)))
        .add();
    let documents = d.schema::<Document>();
    let page: RefOr<Schema> = ObjectBuilder::new()
        .property("data", ArrayBuilder::new().items(documents))
        .property("limit", ObjectBuilder::new().schema_type(Type::Integer))
        .property("offset", ObjectBuilder::new().schema_type(Type::Integer))
        .into();
    d.op(Get, "/v1/knowledge-bases/{id}/documents", "documents", "List documents")
        .query::<service::ListDocumentsParams>()
        .respond(200, "success", Some(("application/json", page)))
        .add();
    d.op(Get, "/v1/documents/{id}", "documents", "A document: status, progress, errors, processing log")
        .query::<crate::api::GetDocumentParams>()
        .ok::<service::DocumentView>(200)
        .add();
    d.op(Delete, "/v1/documents/{id}", "documents", "Move a document to the trash").ok::<Document>(200).add();
    d.op(Post, "/v1/documents/{id}/restore", "documents", "Restore a document from the trash")
        .ok::<Document>(200)
        .add();
    d.op(Get, "/v1/documents/{id}/chunks", "documents", "A document's chunks").list::<Chunk>().add();
    d.op(Post, "/v1/documents/{id}/chunks", "documents", "Add a chunk by hand, after the document's last")
        .body::<crate::chunks::NewChunkRequest>()
        .ok::<Chunk>(201)
        .add();
    d.op(Get, "/v1/chunks/{id}", "documents", "A chunk").ok::<Chunk>(200).add();
    d.op(Patch, "/v1/chunks/{id}", "documents", "Edit a chunk's text or metadata, or disable it; it is re-indexed")
        .body::<crate::chunks::ChunkUpdate>()
        .ok::<Chunk>(200)
        .add();
    d.op(
        Get,
        "/v1/documents/{id}/file",
        "documents",
        "The uploaded file, as an attachment (single byte ranges with Range)",
    )
    .respond(200, "the whole file, with its stored media type", Some(("application/octet-stream", binary())))
    .respond(206, "the requested range (Content-Range)", Some(("application/octet-stream", binary())))
    .respond(416, "the range starts past the end of the file", None)
    .add();
    d.op(
        Get,
        "/v1/documents/{id}/pages/{page}",
        "documents",
        "A PDF page as a PNG (1,400 pixels on its longer side), to show a chunk's regions on it",
    )
    .respond(200, "the page, rendered", Some(("image/png", binary())))
    .add();

    // search and chunking
    d.op(Post, "/v1/knowledge-bases/{id}/search", "search", "Hybrid, vector or full-text search")
        .body::<service::SearchRequest>()
        .ok::<service::SearchResponse>(200)
        .add();
    d.op(Post, "/v1/search", "search", "Search several knowledge bases at once")
        .body::<service::SearchRequest>()
        .ok::<service::SearchResponse>(200)
        .add();
    d.op(
        Post,
        "/v1/knowledge-bases/{id}/evaluations",
        "search",
        "Run golden questions against search configurations; the metrics are kept (202: running)",
    )
    .body::<crate::evaluations::EvaluationRequest>()
    .ok::<lore_core::model::Evaluation>(202)
    .add();
    d.op(
        Post,
        "/v1/knowledge-bases/{id}/evaluations/draft",
        "search",
        "Golden questions drafted by the owner's chat model from the knowledge base, for review",
    )
    .body::<crate::evaluations::DraftRequest>()
    .ok::<crate::evaluations::Draft>(200)
    .add();
    d.op(Get, "/v1/knowledge-bases/{id}/evaluations", "search", "A knowledge base's evaluation runs, newest first")
        .list::<lore_core::model::Evaluation>()
        .add();
    d.op(Get, "/v1/evaluations/{id}", "search", "One evaluation run with its metrics per configuration")
        .ok::<lore_core::model::Evaluation>(200)
        .add();
    d.op(Post, "/v1/chunking/preview", "chunking", "The chunks a text and configuration give, stored nowhere")
        .body::<service::PreviewRequest>()
        .ok::<service::PreviewResponse>(200)
        .add();
    d.op(Post, "/v1/chunking/from-description", "chunking", "A chunking configuration from plain language")
        .body::<describe::DescriptionRequest>()
        .ok::<describe::DescriptionResponse>(200)
        .add();

    // configuration and usage
    d.op(Get, "/v1/config", "configuration", "The caller's defaults and provider keys (masked)")
        .ok::<governance::ConfigView>(200)
        .add();
    d.op(Put, "/v1/config", "configuration", "Change defaults and provider keys")
        .body::<governance::ConfigUpdate>()
        .ok::<governance::ConfigView>(200)
        .add();
    d.op(Get, "/v1/usage/api", "usage", "API-key requests, one row each, with daily aggregates")
        .query::<governance::UsageParams>()
        .ok::<governance::UsageResponse>(200)
        .add();
    d.op(Get, "/v1/usage/agents", "usage", "Agent calls, tokens, cost and latency by agent and day")
        .query::<agents::AgentUsageParams>()
        .ok::<agents::AgentUsageResponse>(200)
        .add();

    // agents
    d.op(Post, "/v1/agents", "agents", "Create an agent")
        .body::<agents::AgentSpec>()
        .ok::<lore_core::agent::Agent>(201)
        .add();
    d.op(Get, "/v1/agents", "agents", "The caller's agents").list::<lore_core::agent::Agent>().add();
    d.op(Get, "/v1/agents/{id}", "agents", "An agent").ok::<lore_core::agent::Agent>(200).add();
    d.op(Patch, "/v1/agents/{id}", "agents", "Change an agent: the given fields replace its own")
        .patch_body::<agents::AgentSpec>()
        .ok::<lore_core::agent::Agent>(200)
        .add();
    d.op(Delete, "/v1/agents/{id}", "agents", "Delete an agent and its conversations").no_content().add();
    d.op(Post, "/v1/agents/route", "agents", "The agent best suited to a question, with the reason")
        .body::<agents::RouteRequest>()
        .ok::<agents::RouteAnswer>(200)
        .add();
    let answer = d.schema::<agents::ChatAnswer>();
    d.op(Post, "/v1/agents/{id}/chat", "agents", "Ask an agent; `stream: true` answers with server-sent events")
        .body::<agents::ChatRequest>()
        .respond_in(
            200,
            "the answer; streamed: `token` events ({content}), then `done` (this object) or `error`",
            vec![("application/json", answer), ("text/event-stream", event_stream())],
        )
        .add();
    d.op(
        Post,
        "/v1/chat/completions",
        "agents",
        "OpenAI-compatible Chat Completions; `model` is an agent's id or name",
    )
    .json_body(any_object())
    .respond_in(
        200,
        "an OpenAI chat.completion (or chat.completion.chunk events when streamed)",
        vec![("application/json", any_object()), ("text/event-stream", event_stream())],
    )
    .add();
    d.op(Get, "/v1/conversations", "agents", "The caller's conversations, most recent first")
        .query::<agents::ConversationParams>()
        .list::<Conversation>()
        .add();
    d.op(Get, "/v1/conversations/{id}", "agents", "A conversation").ok::<Conversation>(200).add();
    d.op(Delete, "/v1/conversations/{id}", "agents", "Delete a conversation").no_content().add();
    d.op(Get, "/v1/conversations/{id}/messages", "agents", "A conversation's messages with citations")
        .list::<ChatMessage>()
        .add();

    // data sources
    d.op(Post, "/v1/data-sources", "data sources", "Create a data source feeding a knowledge base")
        .body::<crate::sources::SourceRequest>()
        .ok::<lore_core::source::DataSource>(201)
        .add();
    d.op(Get, "/v1/data-sources", "data sources", "The caller's data sources")
        .list::<lore_core::source::DataSource>()
        .add();
    d.op(Get, "/v1/data-sources/{id}", "data sources", "A data source (credentials never shown)")
        .ok::<lore_core::source::DataSource>(200)
        .add();
    d.op(Patch, "/v1/data-sources/{id}", "data sources", "Change name, config, credentials, schedule or status")
        .patch_body::<crate::sources::SourceRequest>()
        .ok::<lore_core::source::DataSource>(200)
        .add();
    d.op(Delete, "/v1/data-sources/{id}", "data sources", "Delete a data source (its documents stay)")
        .no_content()
        .add();
    d.op(Post, "/v1/data-sources/{id}/sync", "data sources", "Sync now; the run goes on in the background")
        .ok::<lore_core::source::SyncRun>(202)
        .add();
    d.op(Get, "/v1/data-sources/{id}/syncs", "data sources", "Sync runs, most recent first")
        .list::<lore_core::source::SyncRun>()
        .add();

    d.op(Get, "/v1/notifications", "data sources", "The caller's notifications with their webhook deliveries")
        .list::<lore_core::source::Notification>()
        .add();

    // file types and administration
    d.op(Get, "/v1/file-types", "file types", "The file-type registry").list::<FileType>().add();
    d.op(Post, "/v1/file-types", "file types", "Register a file type (administrators)")
        .body::<service::FileTypeRequest>()
        .ok::<FileType>(201)
        .add();
    d.op(Patch, "/v1/file-types/{id}", "file types", "Change a file type (administrators)")
        .body::<service::FileTypeRequest>()
        .ok::<FileType>(200)
        .add();
    d.op(Get, "/v1/admin/users", "administration", "Every account (administrators)")
        .query::<governance::UserListParams>()
        .list::<User>()
        .add();
    d.op(Patch, "/v1/admin/users/{id}", "administration", "Activate or deactivate an account (administrators)")
        .body::<governance::UserUpdate>()
        .ok::<User>(200)
        .add();
    d.op(Post, "/v1/admin/invitations", "administration", "Invite someone; the token is shown once (administrators)")
        .body::<invitations::CreateInvitation>()
        .ok::<invitations::CreatedInvitation>(201)
        .add();
    d.op(Get, "/v1/admin/invitations", "administration", "Every invitation, without tokens (administrators)")
        .list::<Invitation>()
        .add();
    d.op(Delete, "/v1/admin/invitations/{id}", "administration", "Revoke an invitation (administrators)")
        .no_content()
        .add();
    d.op(Get, "/v1/audit", "administration", "The audit log entries that concern the caller, newest first")
        .query::<crate::audit::AuditParams>()
        .list::<lore_core::model::AuditEntry>()
        .add();
    d.op(Get, "/v1/admin/audit", "administration", "Everyone's audit log, newest first (administrators)")
        .query::<crate::audit::AuditParams>()
        .list::<lore_core::model::AuditEntry>()
        .add();
    workspaces::document(&mut d);
    d.op(
        Get,
        "/v1/admin/nodes",
        "administration",
        "The nodes serving this installation, with the jobs and syncs each holds (administrators)",
    )
    .list::<Node>()
    .add();
    d.op(
        Get,
        "/v1/admin/server",
        "administration",
        "This node's readiness, queue, disk and the limits it enforces (administrators)",
    )
    .ok::<crate::health::ServerOverview>(200)
    .add();

    // operations
    d.op(Get, "/healthz", "operations", "Liveness")
        .public()
        .respond(200, "alive", Some(("application/json", any_object())))
        .add();
    d.op(Get, "/readyz", "operations", "Readiness (the database answers, the data directory takes a write and keeps its free-space reserve, the blob store answers), with the ingestion queue depth")
        .public()
        .respond(200, "ready", Some(("application/json", any_object())))
        .add();
    let text: RefOr<Schema> = ObjectBuilder::new().schema_type(Type::String).into();
    d.op(Get, "/metrics", "operations", "Prometheus metrics")
        .public()
        .respond(200, "text format", Some(("text/plain", text)))
        .add();
    d.op(Post, "/mcp", "operations", "Model Context Protocol (JSON-RPC 2.0) over streamable HTTP")
        .json_body(any_object())
        .respond(200, "a JSON-RPC response", Some(("application/json", any_object())))
        .respond(202, "a notification was accepted", None)
        .add();
    d.op(Get, "/openapi.json", "operations", "This document")
        .public()
        .respond(200, "OpenAPI 3.1", Some(("application/json", any_object())))
        .add();
    let html: RefOr<Schema> = ObjectBuilder::new().schema_type(Type::String).into();
    d.op(Get, "/docs", "operations", "The API reference, rendered")
        .public()
        .respond(200, "HTML", Some(("text/html", html)))
        .add();

    let mut components = ComponentsBuilder::new().security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("a session token (`lss_...`, from login) or an API key (`lore_...`)"))
                .build(),
        ),
    );
    for (name, schema) in d.schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("Lore").version(env!("CARGO_PKG_VERSION")).description(Some(
            "A self-hosted knowledge base and RAG service: documents in, answers with citations out.",
        )))
        .paths(d.paths)
        .components(Some(components.build()))
        .build()
}

/// The document as served (OpenAPI 3.1), built once.
pub fn json() -> &'static str {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        doc["openapi"] = serde_json::json!("3.1.0");
        doc.to_string()
    })
}

pub const DOCS_HTML: &str = include_str!("docs.html");

#[cfg(test)]
mod tests {
    use super::*;

    /// `(METHOD, /path)` of every route the router registers, read from its source.
    fn routes() -> Vec<(String, String)> {
        let source = include_str!("api/mod.rs");
        let start = source.find("pub fn router").expect("router");
        let body = &source[start..];
        let end = body.find("\n}\n").expect("end of router");
        let body = &body[..end];
        // Routes before the second `Router::new()` belong to the /v1 router.
        let outer = body.match_indices("Router::new()").nth(1).map(|(i, _)| i).expect("outer router");
        let mut found = Vec::new();
        for (at, _) in body.match_indices(".route(") {
            let rest = &body[at + 7..];
            let open = rest.find('"').expect("path");
            let close = open + 1 + rest[open + 1..].find('"').expect("path end");
            let path = &rest[open + 1..close];
            // The handler expression runs to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let mut end = close;
            for (i, c) in rest[close..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = close + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let expr = &rest[close + 1..end];
            let prefix = if at < outer { "/v1" } else { "" };
            for method in ["get", "post", "put", "patch", "delete"] {
                // A routing call: `get(` after a dot, a space or a line break (not `x::get(`).
                let routed = expr
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| expr[..i].chars().next_back().is_none_or(|c| c == '.' || c.is_whitespace()));
                if routed {
                    found.push((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
        found
    }

    #[test]
    fn every_route_is_described_and_every_description_routed() {
        let doc = serde_json::to_value(document()).expect("json");
        let mut described = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    described.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut routed = routes();
        routed.sort();
        routed.dedup();
        described.sort();
        let missing: Vec<_> = routed.iter().filter(|r| !described.contains(r)).collect();
        assert!(missing.is_empty(), "routes the OpenAPI document does not describe: {missing:?}");
        let stale: Vec<_> = described.iter().filter(|d| !routed.contains(d)).collect();
        assert!(stale.is_empty(), "described operations no route serves: {stale:?}");
        assert!(routed.len() > 50, "the route scan found too few routes: {routed:?}");
    }

    #[test]
    fn every_reference_resolves() {
        let text = json();
        let doc: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut missing = Vec::new();
        for (at, _) in text.match_indices("#/components/schemas/") {
            let rest = &text[at + 21..];
            let name = &rest[..rest.find('"').expect("end")];
            if !schemas.contains_key(name) {
                missing.push(name.to_string());
            }
        }
        assert!(missing.is_empty(), "dangling references: {missing:?}");
        assert!(schemas.contains_key("KnowledgeBase") && schemas.contains_key("ChatAnswer"));
    }
}
