//! Knowledge bases and the file-type registry.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait KnowledgeBaseStore: Send + Sync {
    async fn create_knowledge_base(&self, kb: NewKnowledgeBase) -> Result<KnowledgeBase>;

    async fn list_knowledge_bases(&self, user_id: Id) -> Result<Vec<KnowledgeBase>>;

    async fn get_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<KnowledgeBase>>;

    async fn update_knowledge_base(&self, user_id: Id, id: Id, patch: KbPatch) -> Result<Option<KnowledgeBase>>;

    /// Deletes a knowledge base with its documents and chunks. Returns the blob keys its
    /// documents used, or `None` if there was no such knowledge base.
    async fn delete_knowledge_base(&self, user_id: Id, id: Id) -> Result<Option<Vec<String>>>;

    /// Adds the types that are missing (by name); existing entries, and an administrator's
    /// changes to them, are kept.
    async fn ensure_file_types(&self, defaults: &[NewFileType]) -> Result<()>;

    async fn list_file_types(&self) -> Result<Vec<FileType>>;

    /// Fails with `conflict` if the name is taken.
    async fn create_file_type(&self, file_type: NewFileType) -> Result<FileType>;

    async fn update_file_type(&self, id: i64, patch: FileTypePatch) -> Result<Option<FileType>>;
}
