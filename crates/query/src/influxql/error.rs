//! InfluxQL errors in InfluxDB 1.x's words: syntax errors say where, with line and character.

/// A parse error at a byte offset of the query text.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub msg: String,
    pub pos: usize,
}

impl SyntaxError {
    pub fn new(msg: impl Into<String>, pos: usize) -> Self {
        SyntaxError {
            msg: msg.into(),
            pos,
        }
    }

    /// `error parsing query: found X, expected Y at line 1, char 8` (1-based, as InfluxDB).
    pub fn render(&self, src: &str) -> String {
        let upto = &src[..self.pos.min(src.len())];
        let line = upto.matches('\n').count() + 1;
        let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!(
            "error parsing query: {} at line {line}, char {col}",
            self.msg
        )
    }
}

/// A statement that parsed but cannot be answered; reported in the statement's `error`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Unsupported(String),
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("database name required")]
    NoDatabase,
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Query(#[from] crate::QueryError),
}

impl ExecError {
    pub fn unsupported(what: impl Into<String>) -> Self {
        ExecError::Unsupported(what.into())
    }

    /// Whether the server, not the query, failed (HTTP 500 rather than an error result).
    pub fn is_server_error(&self) -> bool {
        matches!(self, ExecError::Query(q) if !q.is_client_error())
    }
}
