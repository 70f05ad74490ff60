//! Query errors: the client's fault (400) or the storage's (500).

/// Everything that can go wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("query field '{field}': {reason}")]
    Invalid { field: String, reason: String },
    #[error("cannot apply {func} to field '{field}' of type {ty}")]
    AggType {
        func: &'static str,
        field: String,
        ty: &'static str,
    },
    #[error("group '{0}' not found")]
    GroupNotFound(String),
    #[error("scan failed: {0}")]
    Scan(#[source] strata_engine::Error),
    #[error(
        "query needs more than its memory budget of {limit} bytes: narrow the time range or \
         the series ('where'), aggregate ('agg'), or set a 'limit'"
    )]
    TooLarge { limit: usize },
    #[error(
        "the server's query memory budget ({limit} bytes, shared by running queries) is in use; \
         retry later"
    )]
    Busy { limit: usize },
    #[error("query cancelled")]
    Cancelled,
}

impl QueryError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        QueryError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_engine(e: strata_engine::Error) -> Self {
        match e {
            strata_engine::Error::GroupNotFound(g) => QueryError::GroupNotFound(g),
            strata_engine::Error::InvalidInput(m) => QueryError::invalid("query", m),
            other => QueryError::Scan(other),
        }
    }

    /// Whether the caller sent a bad query (HTTP 400/404) rather than the server failing.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            QueryError::Scan(_) | QueryError::Busy { .. } | QueryError::Cancelled
        )
    }
}
