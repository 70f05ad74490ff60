//! Recursive-descent parser for the InfluxQL subset. Statements outside the subset are
//! refused here with the keyword that starts them, so no statement is half-understood.

use super::ast::*;
use super::error::SyntaxError;
use super::lexer::{Tok, Token, lex};

/// Parse a query string (statements separated by `;`).
pub fn parse(src: &str) -> Result<Vec<Statement>, SyntaxError> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        while p.eat_op(";") {}
        if p.peek() == &Tok::Eof {
            break;
        }
        out.push(p.statement()?);
        if !p.eat_op(";") && p.peek() != &Tok::Eof {
            return Err(p.expected("; or EOF"));
        }
    }
    if out.is_empty() {
        return Err(SyntaxError::new(
            "found EOF, expected SELECT, SHOW, CREATE",
            0,
        ));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

type R<T> = Result<T, SyntaxError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].pos
    }

    fn bump(&mut self) -> Tok {
        // Advances even past the end (peek clamps), so `self.i -= 1` always undoes a bump.
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn expected(&self, what: &str) -> SyntaxError {
        SyntaxError::new(
            format!("found {}, expected {what}", self.peek().describe()),
            self.pos(),
        )
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn kw(&mut self, kw: &str) -> R<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.expected(kw))
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Tok::Op(o) if *o == op) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn op(&mut self, op: &str) -> R<()> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.expected(op))
        }
    }

    fn ident(&mut self) -> R<String> {
        match self.peek().clone() {
            Tok::Ident { name, .. } => {
                self.bump();
                Ok(name)
            }
            _ => Err(self.expected("identifier")),
        }
    }

    fn unsigned(&mut self) -> R<usize> {
        match self.peek() {
            Tok::Int(n) if *n >= 0 => {
                let n = *n as usize;
                self.bump();
                Ok(n)
            }
            _ => Err(self.expected("integer")),
        }
    }

    fn statement(&mut self) -> R<Statement> {
        if self.eat_kw("SELECT") {
            return Ok(Statement::Select(self.select()?));
        }
        if self.eat_kw("SHOW") {
            return self.show();
        }
        if self.eat_kw("CREATE") {
            self.kw("DATABASE")?;
            let name = self.ident()?;
            if self.peek() != &Tok::Eof && !matches!(self.peek(), Tok::Op(";")) {
                return Err(SyntaxError::new(
                    format!(
                        "found {}, expected ; (CREATE DATABASE options are not supported: \
                         set the group's TTL with PUT /api/v1/groups/{name})",
                        self.peek().describe()
                    ),
                    self.pos(),
                ));
            }
            return Ok(Statement::CreateDatabase(name));
        }
        Err(SyntaxError::new(
            format!(
                "found {}, expected SELECT, SHOW, CREATE (Strata answers the InfluxQL subset \
                 in docs/API.md)",
                self.peek().describe()
            ),
            self.pos(),
        ))
    }

    fn select(&mut self) -> R<Select> {
        let mut fields = vec![self.select_field()?];
        while self.eat_op(",") {
            fields.push(self.select_field()?);
        }
        self.kw("FROM")?;
        let from = self.sources()?;
        let cond = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut s = Select {
            fields,
            from,
            cond,
            group_by: GroupBy::default(),
            fill: Fill::Null,
            desc: false,
            limit: None,
            offset: 0,
            slimit: None,
            soffset: 0,
        };
        if self.eat_kw("GROUP") {
            self.kw("BY")?;
            self.group_by(&mut s.group_by)?;
        }
        if self.eat_kw("FILL") {
            s.fill = self.fill()?;
        }
        if self.eat_kw("ORDER") {
            self.kw("BY")?;
            let f = self.ident()?;
            if !f.eq_ignore_ascii_case("time") {
                return Err(SyntaxError::new(
                    "only ORDER BY time is supported",
                    self.toks[self.i - 1].pos,
                ));
            }
            if self.eat_kw("DESC") {
                s.desc = true;
            } else {
                self.eat_kw("ASC");
            }
        }
        loop {
            if self.eat_kw("LIMIT") {
                s.limit = Some(self.unsigned()?);
            } else if self.eat_kw("OFFSET") {
                s.offset = self.unsigned()?;
            } else if self.eat_kw("SLIMIT") {
                s.slimit = Some(self.unsigned()?);
            } else if self.eat_kw("SOFFSET") {
                s.soffset = self.unsigned()?;
            } else if self.peek().is_kw("TZ") {
                return Err(SyntaxError::new(
                    "tz() is not supported: times are UTC",
                    self.pos(),
                ));
            } else {
                break;
            }
        }
        Ok(s)
    }

    fn select_field(&mut self) -> R<SelectField> {
        let expr = self.additive()?;
        let alias = if self.eat_kw("AS") {
            Some(self.ident()?)
        } else {
            None
        };
        Ok(SelectField { expr, alias })
    }

    fn sources(&mut self) -> R<Vec<Source>> {
        let mut out = vec![self.source()?];
        while self.eat_op(",") {
            out.push(self.source()?);
        }
        Ok(out)
    }

    fn source(&mut self) -> R<Source> {
        if let Tok::Regex(r) = self.peek().clone() {
            self.bump();
            return Ok(Source::Regex(r));
        }
        let mut parts = vec![self.ident()?];
        while parts.len() < 3 && self.eat_op(".") {
            // `db..measurement` leaves the retention policy empty.
            if matches!(self.peek(), Tok::Op(".")) {
                parts.push(String::new());
                continue;
            }
            parts.push(self.ident()?);
        }
        let name = parts.pop().unwrap_or_default();
        let rp = parts.pop().filter(|s| !s.is_empty());
        let db = parts.pop();
        Ok(Source::Name { db, rp, name })
    }

    fn group_by(&mut self, g: &mut GroupBy) -> R<()> {
        loop {
            if self.eat_op("*") {
                g.all_tags = true;
            } else if self.peek().is_kw("time") && matches!(self.peek_at(1), Tok::Op("(")) {
                self.bump();
                self.op("(")?;
                match self.bump() {
                    Tok::Duration(d) if d > 0 => g.time = Some(d),
                    _ => {
                        self.i -= 1;
                        return Err(self.expected("duration"));
                    }
                }
                if self.eat_op(",") {
                    return Err(SyntaxError::new(
                        "GROUP BY time() offsets are not supported",
                        self.pos(),
                    ));
                }
                self.op(")")?;
            } else if matches!(self.peek(), Tok::Regex(_)) || matches!(self.peek(), Tok::Op("/")) {
                return Err(SyntaxError::new(
                    "GROUP BY a regex is not supported",
                    self.pos(),
                ));
            } else {
                let name = self.ident()?;
                if self.eat_op("::") {
                    self.ident()?;
                }
                g.tags.push(name);
            }
            if !self.eat_op(",") {
                return Ok(());
            }
        }
    }

    fn fill(&mut self) -> R<Fill> {
        self.op("(")?;
        let f = match self.bump() {
            Tok::Ident { name, .. } if name.eq_ignore_ascii_case("null") => Fill::Null,
            Tok::Ident { name, .. } if name.eq_ignore_ascii_case("none") => Fill::None,
            Tok::Ident { name, .. } if name.eq_ignore_ascii_case("previous") => Fill::Previous,
            Tok::Ident { name, .. } if name.eq_ignore_ascii_case("linear") => {
                self.i -= 1;
                return Err(SyntaxError::new(
                    "fill(linear) is not supported",
                    self.pos(),
                ));
            }
            Tok::Int(n) => Fill::Value(n as f64),
            Tok::Float(f) => Fill::Value(f),
            Tok::Op("-") => match self.bump() {
                Tok::Int(n) => Fill::Value(-(n as f64)),
                Tok::Float(f) => Fill::Value(-f),
                _ => {
                    self.i -= 1;
                    return Err(self.expected("number"));
                }
            },
            _ => {
                self.i -= 1;
                return Err(self.expected("null, none, previous or a number"));
            }
        };
        self.op(")")?;
        Ok(f)
    }

    fn show(&mut self) -> R<Statement> {
        if self.eat_kw("DATABASES") {
            return Ok(Statement::ShowDatabases);
        }
        if self.eat_kw("RETENTION") {
            self.kw("POLICIES")?;
            let on = self.on()?;
            return Ok(Statement::ShowRetentionPolicies { on });
        }
        if self.eat_kw("MEASUREMENTS") {
            let on = self.on()?;
            let mut with = None;
            if self.eat_kw("WITH") {
                self.kw("MEASUREMENT")?;
                if self.eat_op("=~") {
                    match self.bump() {
                        Tok::Regex(r) => with = Some((true, r)),
                        _ => {
                            self.i -= 1;
                            return Err(self.expected("regex"));
                        }
                    }
                } else {
                    self.op("=")?;
                    with = Some((false, self.ident()?));
                }
            }
            let cond = self.where_clause()?;
            let (limit, offset) = self.limit_offset()?;
            return Ok(Statement::ShowMeasurements(ShowMeasurements {
                on,
                with,
                cond,
                limit,
                offset,
            }));
        }
        if self.eat_kw("FIELD") {
            self.kw("KEYS")?;
            return Ok(Statement::ShowFieldKeys(self.show_tags(false)?.0));
        }
        if self.eat_kw("TAG") {
            if self.eat_kw("KEYS") {
                return Ok(Statement::ShowTagKeys(self.show_tags(false)?.0));
            }
            if self.eat_kw("VALUES") {
                let (base, key) = self.show_tags(true)?;
                let key = key.ok_or_else(|| self.expected("WITH KEY"))?;
                return Ok(Statement::ShowTagValues(ShowTagValues { base, key }));
            }
            return Err(self.expected("KEYS, VALUES"));
        }
        Err(self.expected(
            "DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, RETENTION POLICIES",
        ))
    }

    fn on(&mut self) -> R<Option<String>> {
        if self.eat_kw("ON") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn where_clause(&mut self) -> R<Option<Expr>> {
        if self.eat_kw("WHERE") {
            Ok(Some(self.expr()?))
        } else {
            Ok(None)
        }
    }

    fn limit_offset(&mut self) -> R<(Option<usize>, usize)> {
        let (mut limit, mut offset) = (None, 0);
        loop {
            if self.eat_kw("LIMIT") {
                limit = Some(self.unsigned()?);
            } else if self.eat_kw("OFFSET") {
                offset = self.unsigned()?;
            } else {
                return Ok((limit, offset));
            }
        }
    }

    /// `[ON db] [FROM sources] [WITH KEY ...] [WHERE ...] [LIMIT n] [OFFSET n]`.
    fn show_tags(&mut self, with_key: bool) -> R<(ShowTags, Option<KeyFilter>)> {
        let on = self.on()?;
        let from = if self.eat_kw("FROM") {
            self.sources()?
        } else {
            Vec::new()
        };
        let mut key = None;
        if with_key && self.eat_kw("WITH") {
            self.kw("KEY")?;
            key = Some(self.key_filter()?);
        }
        let cond = self.where_clause()?;
        let (limit, offset) = self.limit_offset()?;
        Ok((
            ShowTags {
                on,
                from,
                cond,
                limit,
                offset,
            },
            key,
        ))
    }

    fn key_filter(&mut self) -> R<KeyFilter> {
        if self.eat_kw("IN") {
            self.op("(")?;
            let mut keys = vec![self.ident()?];
            while self.eat_op(",") {
                keys.push(self.ident()?);
            }
            self.op(")")?;
            return Ok(KeyFilter::In(keys));
        }
        let op = self.bump();
        let arg = self.bump();
        match (op, arg) {
            (Tok::Op("="), Tok::Ident { name, .. }) => Ok(KeyFilter::Eq(name)),
            (Tok::Op("!=") | Tok::Op("<>"), Tok::Ident { name, .. }) => Ok(KeyFilter::Neq(name)),
            (Tok::Op("=~"), Tok::Regex(r)) => Ok(KeyFilter::Regex(r)),
            (Tok::Op("!~"), Tok::Regex(r)) => Ok(KeyFilter::NotRegex(r)),
            _ => {
                self.i -= 2;
                Err(self.expected("=, !=, =~, !~ or IN"))
            }
        }
    }

    // Expressions: OR < AND < comparison < additive < multiplicative < unary.

    fn expr(&mut self) -> R<Expr> {
        let mut lhs = self.and()?;
        while self.eat_kw("OR") {
            let rhs = self.and()?;
            lhs = bin(BinOp::Or, lhs, rhs);
        }
        Ok(lhs)
    }

    fn and(&mut self) -> R<Expr> {
        let mut lhs = self.comparison()?;
        while self.eat_kw("AND") {
            let rhs = self.comparison()?;
            lhs = bin(BinOp::And, lhs, rhs);
        }
        Ok(lhs)
    }

    fn comparison(&mut self) -> R<Expr> {
        let lhs = self.additive()?;
        let op = match self.peek() {
            Tok::Op("=") => BinOp::Eq,
            Tok::Op("!=") | Tok::Op("<>") => BinOp::Neq,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Lte,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Gte,
            Tok::Op("=~") => BinOp::Match,
            Tok::Op("!~") => BinOp::NotMatch,
            _ => return Ok(lhs),
        };
        self.bump();
        let rhs = self.additive()?;
        Ok(bin(op, lhs, rhs))
    }

    fn additive(&mut self) -> R<Expr> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.multiplicative()?;
            lhs = bin(op, lhs, rhs);
        }
    }

    fn multiplicative(&mut self) -> R<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.unary()?;
            lhs = bin(op, lhs, rhs);
        }
    }

    fn unary(&mut self) -> R<Expr> {
        let pos = self.pos();
        match self.bump() {
            Tok::Op("(") => {
                let e = self.expr()?;
                self.op(")")?;
                Ok(e)
            }
            Tok::Op("*") => Ok(Expr::Wildcard),
            Tok::Op("-") => match self.bump() {
                Tok::Int(n) => Ok(Expr::Int(-n)),
                Tok::Float(f) => Ok(Expr::Float(-f)),
                Tok::Duration(d) => Ok(Expr::Duration(-d)),
                _ => {
                    self.i -= 1;
                    Err(self.expected("number"))
                }
            },
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Int(n) => Ok(Expr::Int(n)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Duration(d) => Ok(Expr::Duration(d)),
            Tok::Regex(r) => Ok(Expr::Regex(r)),
            Tok::Ident { name, quoted } => {
                if !quoted && matches!(self.peek(), Tok::Op("(")) {
                    self.bump();
                    let mut args = Vec::new();
                    if !self.eat_op(")") {
                        args.push(self.expr()?);
                        while self.eat_op(",") {
                            args.push(self.expr()?);
                        }
                        self.op(")")?;
                    }
                    return Ok(Expr::Call {
                        name: name.to_ascii_lowercase(),
                        args,
                    });
                }
                if !quoted && is_reserved(&name) {
                    return Err(SyntaxError::new(
                        format!("found {name}, expected identifier, string, number, bool"),
                        pos,
                    ));
                }
                let cast = if self.eat_op("::") {
                    let t = self.ident()?;
                    match t.to_ascii_lowercase().as_str() {
                        "tag" => Some(Cast::Tag),
                        "field" | "float" | "integer" | "string" | "boolean" => Some(Cast::Field),
                        _ => {
                            return Err(SyntaxError::new(
                                format!("found {t}, expected field, tag"),
                                self.toks[self.i - 1].pos,
                            ));
                        }
                    }
                } else {
                    None
                };
                Ok(Expr::Ident { name, cast })
            }
            _ => {
                self.i = self.i.saturating_sub(1);
                Err(SyntaxError::new(
                    format!(
                        "found {}, expected identifier, string, number, bool",
                        self.peek().describe()
                    ),
                    pos,
                ))
            }
        }
    }
}

fn bin(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

/// Keywords that cannot stand as a bare identifier where a value is expected.
fn is_reserved(name: &str) -> bool {
    const KW: &[&str] = &[
        "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "OFFSET", "SLIMIT", "SOFFSET", "AND",
        "OR", "SELECT", "AS", "FILL",
    ];
    KW.iter().any(|k| k.eq_ignore_ascii_case(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one(q: &str) -> Statement {
        let mut v = parse(q).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn parses_grafana_default_query() {
        let q = r#"SELECT mean("value") FROM "autogen"."cpu" WHERE ("host" =~ /^(a|b)$/) AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(10s), "host" fill(null) ORDER BY time DESC LIMIT 5"#;
        let Statement::Select(s) = one(q) else {
            panic!()
        };
        assert_eq!(s.group_by.time, Some(10_000_000_000));
        assert_eq!(s.group_by.tags, vec!["host"]);
        assert!(s.desc);
        assert_eq!(s.limit, Some(5));
        assert_eq!(
            s.from,
            vec![Source::Name {
                db: None,
                rp: Some("autogen".into()),
                name: "cpu".into()
            }]
        );
        assert!(matches!(&s.fields[0].expr, Expr::Call { name, .. } if name == "mean"));
    }

    #[test]
    fn parses_show_statements() {
        assert!(matches!(
            one(r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE region = 'eu'"#),
            Statement::ShowTagValues(ShowTagValues {
                key: KeyFilter::Eq(_),
                ..
            })
        ));
        assert!(matches!(
            one("SHOW MEASUREMENTS WITH MEASUREMENT =~ /cp/ LIMIT 100"),
            Statement::ShowMeasurements(ShowMeasurements {
                limit: Some(100),
                ..
            })
        ));
        assert!(matches!(
            one("show field keys from cpu"),
            Statement::ShowFieldKeys(_)
        ));
        assert!(matches!(
            one("SHOW RETENTION POLICIES ON \"db\""),
            Statement::ShowRetentionPolicies { on: Some(_) }
        ));
        assert_eq!(parse("SHOW DATABASES; SHOW DATABASES").unwrap().len(), 2);
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        let src = "SELECT mean(value) FORM cpu";
        let e = parse(src).unwrap_err();
        assert_eq!(
            e.render(src),
            "error parsing query: found FORM, expected FROM at line 1, char 20"
        );
        let src = "SELECT value FROM cpu\nWHERE host = ";
        assert!(
            parse(src)
                .unwrap_err()
                .render(src)
                .contains("line 2, char 14")
        );
        assert!(parse("DROP DATABASE x").is_err());
        assert!(parse("SELECT x FROM cpu fill(linear)").is_err());
        assert!(parse("SELECT x FROM cpu GROUP BY time(1m, 10s)").is_err());
    }
}
