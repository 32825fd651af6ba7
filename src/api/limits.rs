//! The public API's size limits: request bodies, query strings, contexts.

/// Default largest request body, overridable with `GATEHOUSE_MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest query string accepted (contexts travel in it; 16 KiB is far beyond real ones).
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Most context fields one evaluation request may carry.
pub const MAX_CONTEXT_FIELDS: usize = 200;

/// The body limit from `GATEHOUSE_MAX_BODY_BYTES`, or the default when unset or not a number.
pub fn max_body_bytes() -> usize {
    std::env::var("GATEHOUSE_MAX_BODY_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_BODY_BYTES)
}
