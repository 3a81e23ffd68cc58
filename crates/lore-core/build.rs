//! Tells the OpenAPI schema derive what Lore's type aliases stand for.
fn main() {
    utoipa_config::Config::new()
        .alias_for("Id", "uuid::Uuid")
        .alias_for("Timestamp", "chrono::DateTime<chrono::Utc>")
        .write_to_file();
}
