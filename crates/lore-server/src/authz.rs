//! The authorisation table: what every `/v1` route needs, in one place. A middleware enforces it
//! before any handler runs, and a route missing from the table is refused (fail closed), so a new
//! route cannot ship unguarded. The isolation tests read the same table.
//!
//! Each route also names the least workspace role it needs. A person owns their own workspace, so
//! the column matters in team workspaces: a viewer searches, chats and reads; an editor also
//! manages knowledge bases, documents, agents and data sources; an admin also keys and settings.
//! A key acts with its creator's current role, so it never exceeds it. Routes under
//! `/v1/workspaces/{id}` name their workspace in the path, and the service checks the caller's
//! role there.
//!
//! What the table cannot see — which knowledge base an object belongs to — the service checks
//! against a key's binding (`Principal::require_knowledge_base` and the `within_binding` filters),
//! for the objects a route names and for those reached through them (a conversation's agent, an
//! agent's knowledge bases, a data source's knowledge base).

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lore_core::error::Code;
use lore_core::model::{Role, Scope};

use crate::auth::Principal;
use crate::error::{ApiError, error};
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone: signing up and signing in.
    Public,
    /// Any valid session or API key, whatever its scopes.
    Authenticated,
    /// A session, or an API key holding this scope.
    Scope(Scope),
    /// A signed-in person: API keys are refused.
    Session,
    /// An administrator's session.
    Administrator,
}

/// What a key bound to one knowledge base may do with the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The route reaches knowledge bases: the service admits only the bound one (and filters
    /// lists down to what lies inside it).
    Checked,
    /// The route spans the whole account (its usage, its notifications, new knowledge bases): a
    /// bound key is refused.
    Refused,
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The route template as the router and the OpenAPI document name it.
    pub path: &'static str,
    pub need: Need,
    /// The least role in the request's workspace.
    pub role: Role,
    pub binding: Binding,
}

const fn rule(method: &'static str, path: &'static str, need: Need, role: Role, binding: Binding) -> Rule {
    Rule { method, path, need, role, binding }
}

use Binding::{Checked, Refused};
use Need::{Administrator, Authenticated, Public, Session};
const READ: Need = Need::Scope(Scope::Read);
const SEARCH: Need = Need::Scope(Scope::Search);
const UPLOAD: Need = Need::Scope(Scope::Upload);
const DELETE: Need = Need::Scope(Scope::Delete);
const VIEWER: Role = Role::Viewer;
const EDITOR: Role = Role::Editor;
const ADMIN: Role = Role::Admin;

/// Every `/v1` route. Sessions hold every scope; keys hold the scopes they were given.
pub const TABLE: &[Rule] = &[
    rule("POST", "/v1/auth/register", Public, VIEWER, Checked),
    rule("POST", "/v1/auth/login", Public, VIEWER, Checked),
    rule("POST", "/v1/auth/logout", Session, VIEWER, Refused),
    rule("POST", "/v1/auth/password", Session, VIEWER, Refused),
    rule("DELETE", "/v1/auth/sessions", Session, VIEWER, Refused),
    rule("GET", "/v1/me", READ, VIEWER, Checked),
    rule("POST", "/v1/api-keys", Session, ADMIN, Refused),
    rule("GET", "/v1/api-keys", Session, ADMIN, Refused),
    rule("PATCH", "/v1/api-keys/{id}", Session, ADMIN, Refused),
    rule("DELETE", "/v1/api-keys/{id}", Session, ADMIN, Refused),
    rule("POST", "/v1/knowledge-bases", UPLOAD, EDITOR, Refused),
    rule("GET", "/v1/knowledge-bases", READ, VIEWER, Checked),
    rule("GET", "/v1/knowledge-bases/{id}", READ, VIEWER, Checked),
    // Changing `settings.embedding_config` needs a session as well (the service checks the body).
    rule("PATCH", "/v1/knowledge-bases/{id}", UPLOAD, EDITOR, Checked),
    rule("DELETE", "/v1/knowledge-bases/{id}", DELETE, EDITOR, Checked),
    rule("POST", "/v1/knowledge-bases/{id}/documents", UPLOAD, EDITOR, Checked),
    rule("GET", "/v1/knowledge-bases/{id}/documents", READ, VIEWER, Checked),
    rule("POST", "/v1/knowledge-bases/{id}/search", SEARCH, VIEWER, Checked),
    rule("POST", "/v1/knowledge-bases/{id}/evaluations", SEARCH, VIEWER, Checked),
    rule("GET", "/v1/knowledge-bases/{id}/evaluations", READ, VIEWER, Checked),
    // It spends the owner's chat model: a person asks for it.
    rule("POST", "/v1/knowledge-bases/{id}/evaluations/draft", Session, EDITOR, Checked),
    rule("GET", "/v1/evaluations/{id}", READ, VIEWER, Checked),
    rule("POST", "/v1/search", SEARCH, VIEWER, Checked),
    rule("GET", "/v1/documents/{id}", READ, VIEWER, Checked),
    rule("DELETE", "/v1/documents/{id}", DELETE, EDITOR, Checked),
    rule("GET", "/v1/documents/{id}/chunks", READ, VIEWER, Checked),
    rule("POST", "/v1/documents/{id}/chunks", UPLOAD, EDITOR, Checked),
    rule("GET", "/v1/chunks/{id}", READ, VIEWER, Checked),
    rule("PATCH", "/v1/chunks/{id}", UPLOAD, EDITOR, Checked),
    rule("GET", "/v1/documents/{id}/file", READ, VIEWER, Checked),
    rule("GET", "/v1/documents/{id}/pages/{page}", READ, VIEWER, Checked),
    rule("POST", "/v1/documents/{id}/restore", DELETE, EDITOR, Checked),
    rule("POST", "/v1/chunking/preview", UPLOAD, EDITOR, Checked),
    // With a key, only the built-in rules read the description: a key never spends the owner's
    // model credits.
    rule("POST", "/v1/chunking/from-description", UPLOAD, EDITOR, Checked),
    rule("GET", "/v1/config", Session, VIEWER, Refused),
    rule("PUT", "/v1/config", Session, ADMIN, Refused),
    rule("GET", "/v1/usage/api", READ, VIEWER, Refused),
    rule("GET", "/v1/usage/agents", READ, VIEWER, Refused),
    rule("POST", "/v1/agents", Session, EDITOR, Refused),
    rule("GET", "/v1/agents", READ, VIEWER, Checked),
    rule("POST", "/v1/agents/route", SEARCH, VIEWER, Checked),
    rule("GET", "/v1/agents/{id}", READ, VIEWER, Checked),
    rule("PATCH", "/v1/agents/{id}", Session, EDITOR, Refused),
    rule("DELETE", "/v1/agents/{id}", Session, EDITOR, Refused),
    rule("POST", "/v1/agents/{id}/chat", SEARCH, VIEWER, Checked),
    rule("GET", "/v1/conversations", READ, VIEWER, Checked),
    rule("GET", "/v1/conversations/{id}", READ, VIEWER, Checked),
    rule("DELETE", "/v1/conversations/{id}", DELETE, EDITOR, Checked),
    rule("GET", "/v1/conversations/{id}/messages", READ, VIEWER, Checked),
    rule("POST", "/v1/chat/completions", SEARCH, VIEWER, Checked),
    rule("GET", "/v1/notifications", READ, VIEWER, Refused),
    rule("POST", "/v1/data-sources", Session, EDITOR, Refused),
    rule("GET", "/v1/data-sources", READ, VIEWER, Checked),
    rule("GET", "/v1/data-sources/{id}", READ, VIEWER, Checked),
    rule("PATCH", "/v1/data-sources/{id}", Session, EDITOR, Refused),
    rule("DELETE", "/v1/data-sources/{id}", Session, EDITOR, Refused),
    rule("POST", "/v1/data-sources/{id}/sync", UPLOAD, EDITOR, Checked),
    rule("GET", "/v1/data-sources/{id}/syncs", READ, VIEWER, Checked),
    rule("GET", "/v1/file-types", Authenticated, VIEWER, Checked),
    rule("POST", "/v1/file-types", Administrator, VIEWER, Refused),
    rule("PATCH", "/v1/file-types/{id}", Administrator, VIEWER, Refused),
    rule("GET", "/v1/admin/users", Administrator, VIEWER, Refused),
    rule("PATCH", "/v1/admin/users/{id}", Administrator, VIEWER, Refused),
    rule("POST", "/v1/admin/invitations", Administrator, VIEWER, Refused),
    rule("GET", "/v1/admin/invitations", Administrator, VIEWER, Refused),
    rule("DELETE", "/v1/admin/invitations/{id}", Administrator, VIEWER, Refused),
    rule("GET", "/v1/admin/nodes", Administrator, VIEWER, Refused),
    rule("GET", "/v1/admin/server", Administrator, VIEWER, Refused),
    rule("GET", "/v1/admin/audit", Administrator, VIEWER, Refused),
    rule("GET", "/v1/audit", Session, ADMIN, Refused),
    // Sharing a knowledge base into another workspace (read-only there) is an admin's choice.
    rule("POST", "/v1/knowledge-bases/{id}/shares", Session, ADMIN, Checked),
    rule("GET", "/v1/knowledge-bases/{id}/shares", READ, VIEWER, Checked),
    rule("DELETE", "/v1/knowledge-bases/{id}/shares/{workspace_id}", Session, ADMIN, Checked),
    rule("POST", "/v1/workspaces", Session, VIEWER, Refused),
    rule("GET", "/v1/workspaces", Session, VIEWER, Refused),
    rule("GET", "/v1/workspaces/{id}", Session, VIEWER, Refused),
    rule("PATCH", "/v1/workspaces/{id}", Session, VIEWER, Refused),
    rule("DELETE", "/v1/workspaces/{id}", Session, VIEWER, Refused),
    rule("GET", "/v1/workspaces/{id}/members", Session, VIEWER, Refused),
    rule("POST", "/v1/workspaces/{id}/members", Session, VIEWER, Refused),
    rule("PATCH", "/v1/workspaces/{id}/members/{user_id}", Session, VIEWER, Refused),
    rule("DELETE", "/v1/workspaces/{id}/members/{user_id}", Session, VIEWER, Refused),
    rule("GET", "/v1/workspaces/{id}/audit", Session, VIEWER, Refused),
    rule("POST", "/v1/workspaces/{id}/invitations", Session, VIEWER, Refused),
    rule("GET", "/v1/workspaces/{id}/invitations", Session, VIEWER, Refused),
    rule("DELETE", "/v1/workspaces/{id}/invitations/{invitation_id}", Session, VIEWER, Refused),
    rule("POST", "/v1/workspaces/join", Session, VIEWER, Refused),
];

/// The rule of a route, by method and template.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    TABLE.iter().find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

impl Rule {
    /// Whether `principal` may call the route; the refusal names what is missing.
    pub fn check(&self, principal: &Principal) -> Result<(), ApiError> {
        match self.need {
            Need::Public | Need::Authenticated => {}
            Need::Scope(scope) => principal.require(scope)?,
            Need::Session => principal.require_session()?,
            Need::Administrator => principal.require_superuser()?,
        }
        principal.require_role(self.role)?;
        if self.binding == Binding::Refused && principal.bound_knowledge_base().is_some() {
            return Err(error(
                Code::KnowledgeBaseNotAllowed,
                "this API key is restricted to one knowledge base; this endpoint spans the whole account",
            ));
        }
        Ok(())
    }
}

/// Enforces the table: authenticates the caller once, checks the route's rule and hands the
/// principal on to the handler (whose `Principal` extractor then reuses it).
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Lore calling itself (an agent or an embedder pointed at this server): refused at once.
    if request.headers().contains_key(lore_core::outbound::HOP_HEADER) {
        return error(
            Code::LoopDetected,
            "this request came from a Lore server's own provider client; a model address must not point back at Lore",
        )
        .into_response();
    }
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let template = if template.starts_with("/v1/") { template } else { format!("/v1{template}") };
    let Some(rule) = rule_for(request.method().as_str(), &template) else {
        // Fail closed: a method nobody wrote a rule for answers to nobody. That is the route's
        // 405 when the table knows the path (and so the methods it serves).
        let allowed: Vec<&str> = TABLE.iter().filter(|r| r.path == template).map(|r| r.method).collect();
        if allowed.is_empty() {
            tracing::error!(method = %request.method(), route = %template, "route missing from the authorisation table");
            return error(Code::Internal, "an internal error occurred").into_response();
        }
        let mut refused = error(Code::MethodNotAllowed, "this endpoint does not support that method").into_response();
        if let Ok(allow) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
            refused.headers_mut().insert(axum::http::header::ALLOW, allow);
        }
        return refused;
    };
    if rule.need == Need::Public {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = rule.check(&principal) {
        return refusal.into_response();
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the API's own description name the same routes: none unguarded, none stale.
    #[test]
    fn every_documented_route_has_exactly_one_rule() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::json()).expect("openapi");
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "post", "put", "patch", "delete"] {
                if path.starts_with("/v1/") && item.get(method).is_some() {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        for (method, path) in &documented {
            let rules = TABLE.iter().filter(|r| r.method == method && r.path == path).count();
            assert_eq!(rules, 1, "{method} {path} has {rules} rules in the authorisation table");
        }
        for r in TABLE {
            assert!(
                documented.iter().any(|(m, p)| m == r.method && p == r.path),
                "{} {} is in the table but not in the API",
                r.method,
                r.path
            );
        }
    }
}
