//! InfluxQL tokens, each with the byte offset it starts at (for "at line L, char C" errors).

use super::error::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare identifier or keyword (`quoted` false) or a `"double quoted"` identifier.
    Ident {
        name: String,
        quoted: bool,
    },
    /// A `'single quoted'` string.
    Str(String),
    Int(i64),
    Float(f64),
    /// A duration literal such as `5m` or `1700000000000ms`, in ns.
    Duration(i64),
    Regex(String),
    Op(&'static str),
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident { name, .. } => name.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Int(i) => i.to_string(),
            Tok::Float(f) => f.to_string(),
            Tok::Duration(_) => "duration".into(),
            Tok::Regex(r) => format!("/{r}/"),
            Tok::Op(o) => (*o).to_string(),
            Tok::Eof => "EOF".into(),
        }
    }

    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Ident { name, quoted: false } if name.eq_ignore_ascii_case(kw))
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const OPS: &[&str] = &[
    "=~", "!~", "!=", "<>", "<=", ">=", "::", "=", "<", ">", "(", ")", ",", ".", ";", "+", "-",
    "*", "/", "%",
];

/// Splits `src` into tokens. A `/` starts a regex literal after `=~`, `!~` and `FROM`.
pub fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let b = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let regex_ok = out
            .last()
            .is_some_and(|t| matches!(t.tok, Tok::Op("=~") | Tok::Op("!~")) || t.tok.is_kw("FROM"));
        let tok = if c == b'"' || c == b'\'' {
            let (s, next) = quoted(src, i, c)?;
            i = next;
            if c == b'"' {
                Tok::Ident {
                    name: s,
                    quoted: true,
                }
            } else {
                Tok::Str(s)
            }
        } else if c == b'/' && regex_ok {
            let (s, next) = quoted(src, i, b'/')?;
            i = next;
            Tok::Regex(s)
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let (t, next) = number(src, i)?;
            i = next;
            t
        } else if c.is_ascii_alphabetic()
            || c == b'_'
            || src[i..].chars().next().is_some_and(char::is_alphanumeric)
        {
            let end = src[i..]
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .map_or(src.len(), |e| i + e);
            let name = src[i..end].to_string();
            i = end;
            Tok::Ident {
                name,
                quoted: false,
            }
        } else if let Some(op) = OPS.iter().find(|o| src[i..].starts_with(**o)) {
            i += op.len();
            Tok::Op(op)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(SyntaxError::new(format!("invalid character {ch:?}"), start));
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

/// The body of a literal opened by `q` at `i` (backslash escapes the quote and itself; in a
/// regex every other backslash is kept) and the offset after its closing quote.
fn quoted(src: &str, i: usize, q: u8) -> Result<(String, usize), SyntaxError> {
    let mut s = String::new();
    let mut chars = src[i + 1..].char_indices();
    while let Some((j, ch)) = chars.next() {
        if ch == '\\' {
            match chars.next() {
                Some((_, e)) if e as u32 == u32::from(q) || (e == '\\' && q != b'/') => s.push(e),
                Some((_, e)) if q != b'/' && e == 'n' => s.push('\n'),
                Some((_, e)) => {
                    s.push('\\');
                    s.push(e);
                }
                None => break,
            }
        } else if ch as u32 == u32::from(q) {
            return Ok((s, i + 1 + j + 1));
        } else {
            s.push(ch);
        }
    }
    let what = match q {
        b'"' => "identifier",
        b'/' => "regex",
        _ => "string",
    };
    Err(SyntaxError::new(format!("unterminated {what}"), i))
}

/// Integer, float, or duration (`10s`, `1700000000000ms`).
fn number(src: &str, i: usize) -> Result<(Tok, usize), SyntaxError> {
    let b = src.as_bytes();
    let mut end = i;
    let mut float = false;
    while end < b.len() && (b[end].is_ascii_digit() || b[end] == b'.') {
        float |= b[end] == b'.';
        end += 1;
    }
    let digits = &src[i..end];
    let unit_end = src[end..]
        .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .map_or(src.len(), |e| end + e);
    let unit = &src[end..unit_end];
    if !unit.is_empty() {
        let mult: i64 = match unit {
            "ns" => 1,
            "u" | "µ" | "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 604_800_000_000_000,
            _ => {
                return Err(SyntaxError::new(
                    format!("invalid duration unit '{unit}' in {}", &src[i..unit_end]),
                    i,
                ));
            }
        };
        if float {
            return Err(SyntaxError::new(
                format!("invalid duration {}", &src[i..unit_end]),
                i,
            ));
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| SyntaxError::new(format!("duration {digits} out of range"), i))?;
        let ns = n
            .checked_mul(mult)
            .ok_or_else(|| SyntaxError::new(format!("duration {digits}{unit} out of range"), i))?;
        return Ok((Tok::Duration(ns), unit_end));
    }
    if float {
        let f: f64 = digits
            .parse()
            .map_err(|_| SyntaxError::new(format!("invalid number {digits}"), i))?;
        return Ok((Tok::Float(f), end));
    }
    let n: i64 = digits
        .parse()
        .map_err(|_| SyntaxError::new(format!("integer {digits} out of range"), i))?;
    Ok((Tok::Int(n), end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_grafana_time_filter_and_regexes() {
        let t = toks(r#"time >= 1700000000000ms and "host" =~ /^a\/b$/"#);
        assert_eq!(t[2], Tok::Duration(1_700_000_000_000_000_000));
        assert_eq!(t[6], Tok::Regex(r"^a/b$".into()));
        assert_eq!(toks("5m")[0], Tok::Duration(300_000_000_000));
        assert_eq!(toks("'it\\'s'")[0], Tok::Str("it's".into()));
        assert_eq!(toks("1.5")[0], Tok::Float(1.5));
    }

    #[test]
    fn errors_carry_positions() {
        assert_eq!(lex("SELECT 'abc").unwrap_err().pos, 7);
        assert_eq!(lex("SELECT 5x").unwrap_err().pos, 7);
        assert_eq!(lex("SELECT #").unwrap_err().pos, 7);
        // A non-ASCII character that cannot start a name is an error, not an endless loop.
        assert_eq!(lex("SELECT €").unwrap_err().pos, 7);
        assert_eq!(
            toks("héllo")[0],
            Tok::Ident {
                name: "héllo".into(),
                quoted: false
            }
        );
    }
}
