//! Evaluation runs of a knowledge base's retrieval.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait EvaluationStore: Send + Sync {
    async fn insert_evaluation(&self, evaluation: &Evaluation) -> Result<()>;

    /// Records a run's outcome (`completed` with its results, or `failed` with why).
    async fn finish_evaluation(&self, evaluation: &Evaluation) -> Result<()>;

    async fn get_evaluation(&self, user_id: Id, id: Id) -> Result<Option<Evaluation>>;

    /// The runs of a knowledge base, newest first.
    async fn list_evaluations(&self, user_id: Id, knowledge_base_id: Id) -> Result<Vec<Evaluation>>;
}
