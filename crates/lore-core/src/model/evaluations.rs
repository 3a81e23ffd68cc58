//! Evaluations of a knowledge base's retrieval: golden questions run against search
//! configurations, with the metrics of each kept for comparison.

use serde::Serialize;
use serde_json::Value;

use super::*;

/// One evaluation run. `request` holds the questions and configurations as sent; `results` the
/// metrics per configuration once it has run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub id: Id,
    pub user_id: Id,
    pub knowledge_base_id: Id,
    pub name: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub request: Value,
    pub results: Value,
    pub error_message: Option<String>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}
