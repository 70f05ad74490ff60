//! The statements of the InfluxQL subset, as parsed (names resolved later by the planner).

/// One statement of a query string.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Select),
    ShowDatabases,
    CreateDatabase(String),
    ShowMeasurements(ShowMeasurements),
    ShowTagKeys(ShowTags),
    ShowTagValues(ShowTagValues),
    ShowFieldKeys(ShowTags),
    ShowRetentionPolicies { on: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub fields: Vec<SelectField>,
    pub from: Vec<Source>,
    pub cond: Option<Expr>,
    pub group_by: GroupBy,
    pub fill: Fill,
    pub desc: bool,
    pub limit: Option<usize>,
    pub offset: usize,
    pub slimit: Option<usize>,
    pub soffset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectField {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `[db.][rp.]measurement` or a regex over measurement names.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Name {
        db: Option<String>,
        rp: Option<String>,
        name: String,
    },
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupBy {
    /// Bucket width in ns.
    pub time: Option<i64>,
    pub all_tags: bool,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fill {
    #[default]
    Null,
    None,
    Previous,
    Value(f64),
}

/// `::field` / `::tag` casts on an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Field,
    Tag,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Ident {
        name: String,
        cast: Option<Cast>,
    },
    Wildcard,
    Str(String),
    Int(i64),
    Float(f64),
    Duration(i64),
    Regex(String),
    /// `now()` and the aggregate calls.
    Call {
        name: String,
        args: Vec<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Match,
    NotMatch,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Eq => "=",
            BinOp::Neq => "!=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Match => "=~",
            BinOp::NotMatch => "!~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShowMeasurements {
    pub on: Option<String>,
    /// `WITH MEASUREMENT = name` (false) or `=~ /re/` (true).
    pub with: Option<(bool, String)>,
    pub cond: Option<Expr>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// `SHOW TAG KEYS` and `SHOW FIELD KEYS`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTags {
    pub on: Option<String>,
    pub from: Vec<Source>,
    pub cond: Option<Expr>,
    pub limit: Option<usize>,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagValues {
    pub base: ShowTags,
    pub key: KeyFilter,
}

/// `WITH KEY = k | != k | =~ /re/ | !~ /re/ | IN (a, b)`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyFilter {
    Eq(String),
    Neq(String),
    Regex(String),
    NotRegex(String),
    In(Vec<String>),
}
