//! HTTPS for every outgoing client (providers, model hub, webhooks, data sources).

/// Makes ring the process's TLS crypto provider, once. reqwest is built without a provider of
/// its own (see the workspace manifest) and panics on building a client without one, so every
/// place that builds a client calls this first. Cheap after the first call.
pub fn ensure_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
