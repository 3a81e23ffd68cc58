//! What a completion costs: USD per million prompt and completion tokens, per model, kept exact.
//!
//! The built-in table holds list prices of common hosted models (as published in 2025); operators
//! override or extend it with a TOML file (`lore serve --price-table FILE`):
//!
//! ```toml
//! [models."gpt-4o-mini"]
//! input = "0.15"    # USD per million prompt tokens
//! output = "0.60"   # USD per million completion tokens
//! ```
//!
//! A model is priced by its exact name, else by the longest table name it begins with
//! (`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`). Unknown models (a local Ollama model)
//! cost nothing.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::Usage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Price {
    /// USD per million prompt tokens.
    pub input: Decimal,
    /// USD per million completion tokens.
    pub output: Decimal,
}

impl Price {
    /// What a completion's tokens cost at this price.
    pub fn cost(&self, usage: &Usage) -> Decimal {
        let million = Decimal::from(1_000_000u32);
        (Decimal::from(usage.prompt_tokens) * self.input + Decimal::from(usage.completion_tokens) * self.output)
            / million
    }
}

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
}

const BUILTIN: &[(&str, &str, &str)] = &[
    ("gpt-4o", "2.50", "10.00"),
    ("gpt-4o-mini", "0.15", "0.60"),
    ("gpt-4.1", "2.00", "8.00"),
    ("gpt-4.1-mini", "0.40", "1.60"),
    ("gpt-4.1-nano", "0.10", "0.40"),
    ("o3-mini", "1.10", "4.40"),
    ("claude-3-5-haiku", "0.80", "4.00"),
    ("claude-3-5-sonnet", "3.00", "15.00"),
    ("claude-3-7-sonnet", "3.00", "15.00"),
    ("claude-sonnet-4", "3.00", "15.00"),
    ("claude-opus-4", "15.00", "75.00"),
    ("command-r", "0.15", "0.60"),
    ("command-r-plus", "2.50", "10.00"),
    ("command-a", "2.50", "10.00"),
    ("deepseek-chat", "0.27", "1.10"),
    ("deepseek-reasoner", "0.55", "2.19"),
    ("qwen-turbo", "0.05", "0.20"),
    ("qwen-plus", "0.40", "1.20"),
    ("qwen-max", "1.60", "6.40"),
];

impl PriceTable {
    pub fn builtin() -> Self {
        let mut table = PriceTable::default();
        for (model, input, output) in BUILTIN {
            if let (Ok(input), Ok(output)) = (Decimal::from_str(input), Decimal::from_str(output)) {
                table.models.insert(model.to_string(), Price { input, output });
            }
        }
        table
    }

    /// Adds or replaces the prices of a TOML price file.
    pub fn merge_toml(&mut self, text: &str) -> Result<(), String> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| format!("invalid price table: {e}"))?;
        let Some(models) = doc.get("models") else { return Ok(()) };
        let models = models.as_table().ok_or("invalid price table: `models` must be a table")?;
        for (model, entry) in models {
            let field = |name: &str| -> Result<Decimal, String> {
                let value = entry.get(name).ok_or(format!("price of '{model}' lacks `{name}`"))?;
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    _ => return Err(format!("price `{name}` of '{model}' must be a number")),
                };
                let price = Decimal::from_str(text.trim()).map_err(|e| format!("price `{name}` of '{model}': {e}"))?;
                if price.is_sign_negative() {
                    return Err(format!("price `{name}` of '{model}' is negative"));
                }
                Ok(price)
            };
            let price = Price { input: field("input")?, output: field("output")? };
            self.models.insert(model.clone(), price);
        }
        Ok(())
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }

    /// The cost of a completion, or zero for a model without a price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Decimal {
        self.price(model).map(|p| p.cost(usage)).unwrap_or(Decimal::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_by_longest_prefix_exactly() {
        let table = PriceTable::builtin();
        let usage = Usage { prompt_tokens: 1000, completion_tokens: 500, estimated: false };
        // 1000 × 0.15/1e6 + 500 × 0.60/1e6 = 0.00045
        assert_eq!(table.cost("gpt-4o-mini-2024-07-18", &usage).to_string(), "0.00045");
        assert_eq!(table.cost("gpt-4o", &usage), Decimal::from_str("0.0075").unwrap_or_default());
        assert_eq!(table.cost("llama3.2", &usage), Decimal::ZERO);
    }

    #[test]
    fn a_price_file_overrides_and_extends() {
        let mut table = PriceTable::builtin();
        table
            .merge_toml("[models.\"qwen2.5:7b\"]\ninput = \"0.01\"\noutput = 0.02\n[models.gpt-4o]\ninput = 1\noutput = \"2\"\n")
            .expect("valid table");
        let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, estimated: false };
        assert_eq!(table.cost("qwen2.5:7b", &usage).to_string(), "0.03");
        assert_eq!(table.cost("gpt-4o", &usage).to_string(), "3");
        assert!(table.merge_toml("[models.x]\ninput = \"-1\"\noutput = \"0\"").is_err());
        assert!(table.merge_toml("[models.x]\ninput = \"1\"").is_err());
    }
}
