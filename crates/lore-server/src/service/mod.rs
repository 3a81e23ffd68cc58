//! The service functions behind the API: validation, authorisation decisions and orchestration.
//! Handlers translate HTTP to these calls and back.

use lore_core::error::Code;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiResult, error};

mod accounts;
mod documents;
mod file_types;
mod keys;
mod knowledge_bases;
mod preview;
mod rerank;
mod search;
mod workspaces;

pub use accounts::*;
pub use documents::*;
pub use file_types::*;
pub use keys::*;
pub use knowledge_bases::*;
pub use preview::*;
pub use rerank::{RerankRequest, check as check_rerank};
pub use search::*;
pub use workspaces::*;

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub(crate) fn check_len(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(error(Code::ValidationFailed, format!("{field} must be {min} to {max} characters long")));
    }
    Ok(())
}
