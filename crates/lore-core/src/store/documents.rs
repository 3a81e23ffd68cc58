//! Documents, as their owners upload, read, delete and restore them.

use async_trait::async_trait;

use super::Upload;
use crate::error::Result;
use crate::model::*;

/// Part of every [`Store`](super::Store).
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Registers an upload: the existing live document if the same content is already in the
    /// knowledge base, else a new `pending` document with its processing job queued.
    async fn create_document(&self, doc: NewDocument) -> Result<Upload>;

    async fn list_documents(
        &self, user_id: Id, knowledge_base_id: Id, query: &DocumentListQuery,
    ) -> Result<Vec<Document>>;

    async fn get_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;

    async fn document_content(&self, user_id: Id, id: Id) -> Result<Option<DocumentContent>>;

    /// Soft-deletes a live document. `None` if there is no such document (or it is deleted).
    async fn soft_delete_document(&self, user_id: Id, id: Id, at: Timestamp) -> Result<Option<Document>>;

    /// Restores a soft-deleted document; `duplicate_document` if its content was uploaded again since.
    async fn restore_document(&self, user_id: Id, id: Id) -> Result<Option<Document>>;

    /// Whether any document still refers to a blob.
    async fn blob_in_use(&self, file_path: &str) -> Result<bool>;
}
