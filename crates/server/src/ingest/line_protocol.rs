//! InfluxDB line protocol:
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`.
//!
//! Follows the InfluxDB 2 reference: backslash escapes `,`, `=`, space and `\` in the
//! measurement, tag keys, tag values and field keys (any other backslash is literal); string
//! fields are double-quoted with `\"` and `\\` escapes and may span lines; integers end in `i`,
//! unsigned integers in `u` (stored as i64, rejected when they do not fit); booleans are
//! `t T true True TRUE f F false False FALSE`; floats must be finite. Blank lines and `#`
//! comments are skipped. Parsing stops at the first bad line, because a batch is atomic.

use std::borrow::Cow;

use strata_engine::model::{MAX_TIMESTAMP, MIN_TIMESTAMP, timestamp_in_range};
use strata_engine::{FieldRef, PointBatch};

/// Timestamp unit of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Nanos,
    Micros,
    Millis,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// Accepts the v2 spellings (`ns us ms s`) and the v1 ones (`n u ms s m h`).
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Nanos,
            "us" | "u" | "µs" => Precision::Micros,
            "ms" => Precision::Millis,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Precision::Nanos => "ns",
            Precision::Micros => "us",
            Precision::Millis => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
        }
    }

    fn nanos(self) -> i64 {
        match self {
            Precision::Nanos => 1,
            Precision::Micros => 1_000,
            Precision::Millis => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }
}

/// The first bad line of a batch: 1-based physical line number and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// Parse a whole batch. Points without a timestamp get `now_ns`. Names, tag values and
/// strings borrow from `body` unless they had to be unescaped.
pub fn parse(body: &[u8], precision: Precision, now_ns: i64) -> Result<PointBatch<'_>, LineError> {
    parse_with(body, precision, now_ns, usize::MAX)
}

/// [`parse`], refusing a line with more than `max_fields` fields (`max_fields_per_point`).
pub fn parse_with(
    body: &[u8],
    precision: Precision,
    now_ns: i64,
    max_fields: usize,
) -> Result<PointBatch<'_>, LineError> {
    let mut c = Cursor {
        b: body,
        text: std::str::from_utf8(body).ok(),
        pos: 0,
        line: 1,
        max_fields,
    };
    // A rough guess (one point per ~60 bytes, a tag and a field per ~15) saves most
    // reallocations without reserving much for bodies of long lines.
    let mut points = PointBatch::with_capacity(body.len() / 60 + 1, 2, 2);
    loop {
        c.skip(|b| matches!(b, b' ' | b'\t' | b'\r'));
        match c.peek() {
            None => break,
            Some(b'\n') => c.newline(),
            Some(b'#') => {
                c.skip(|b| b != b'\n');
            }
            Some(_) => {
                let line = c.line;
                c.point(&mut points, precision, now_ns)
                    .map_err(|reason| LineError { line, reason })?;
            }
        }
    }
    Ok(points)
}

/// Bytes that end (or, for `\\`, interrupt) a name: a lookup table.
type ByteSet = [bool; 256];

const fn byte_set(bytes: &[u8]) -> ByteSet {
    let mut set = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
}

/// Measurement and tag value: end at `,`, space or newline.
static NAME_END: ByteSet = byte_set(b", \n\\");
/// Tag and field keys: also end at `=`.
static KEY_END: ByteSet = byte_set(b",= \n\\");

struct Cursor<'a> {
    b: &'a [u8],
    /// `b` as text when all of it is valid UTF-8 (checked once): names are then sliced out
    /// without validating each one. Every slice boundary is next to an ASCII delimiter, so it
    /// is a char boundary.
    text: Option<&'a str>,
    pos: usize,
    line: usize,
    max_fields: usize,
}

type R<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
    }

    /// The text from `start` to the cursor.
    fn str_at(&self, start: usize) -> Result<&'a str, std::str::Utf8Error> {
        match self.text.and_then(|t| t.get(start..self.pos)) {
            Some(s) => Ok(s),
            None => {
                let b: &'a [u8] = self.b;
                std::str::from_utf8(&b[start..self.pos])
            }
        }
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'\n'))
    }

    /// One line into `out`; on error `out` is left with a partial point, which is fine because
    /// the whole batch is then rejected.
    fn point(&mut self, out: &mut PointBatch<'a>, precision: Precision, now_ns: i64) -> R<()> {
        let measure = self.ident(&NAME_END, "measurement")?;
        while self.peek() == Some(b',') {
            self.pos += 1;
            let key = self.ident(&KEY_END, "tag key")?;
            if self.peek() != Some(b'=') {
                return Err(format!("tag '{key}' has no value (expected '=')"));
            }
            self.pos += 1;
            let value = self.ident(&NAME_END, "tag value")?;
            out.push_tag(key, value);
        }
        if self.peek() != Some(b' ') {
            return Err(format!("measurement '{measure}' has no fields"));
        }
        self.skip(|b| b == b' ');
        if self.at_line_end() {
            return Err(format!("measurement '{measure}' has no fields"));
        }
        loop {
            let key = self.ident(&KEY_END, "field key")?;
            if self.peek() != Some(b'=') {
                return Err(format!("field '{key}' has no value (expected '=')"));
            }
            self.pos += 1;
            let value = self.field_value(&key)?;
            // A repeated field key: the last value wins, as in InfluxDB (push_field does it).
            out.push_field(key, value);
            if out.pending_fields() > self.max_fields {
                return Err(format!(
                    "measurement '{measure}' has more than {} fields (max_fields_per_point)",
                    self.max_fields
                ));
            }
            if self.peek() != Some(b',') {
                break;
            }
            self.pos += 1;
        }
        self.skip(|b| matches!(b, b' ' | b'\t' | b'\r'));
        let timestamp = if self.at_line_end() {
            now_ns
        } else {
            self.timestamp(precision)?
        };
        self.skip(|b| matches!(b, b' ' | b'\t' | b'\r'));
        if !self.at_line_end() {
            return Err("unexpected text after the timestamp".to_string());
        }
        if self.peek() == Some(b'\n') {
            self.newline();
        }
        out.finish_point(measure, timestamp);
        Ok(())
    }

    /// A measurement, tag key/value or field key, unescaped; ends before any byte of `stops`.
    fn ident(&mut self, stops: &ByteSet, what: &str) -> R<Cow<'a, str>> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes first, one table lookup each: this loop is the parser's hot spot.
            while self
                .b
                .get(self.pos)
                .is_some_and(|&b| !stops[usize::from(b)])
            {
                self.pos += 1;
            }
            match self.peek() {
                Some(b'\\') => {
                    if matches!(self.b.get(self.pos + 1), Some(b',' | b'=' | b' ' | b'\\')) {
                        escaped = true;
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let b: &'a [u8] = self.b;
        let raw = &b[start..self.pos];
        if raw.is_empty() {
            return Err(format!("empty {what}"));
        }
        let bad = || format!("{what} is not valid UTF-8");
        if let Some(s) = self.text.and_then(|t| t.get(start..self.pos))
            && !escaped
        {
            return Ok(Cow::Borrowed(s));
        }
        if escaped {
            String::from_utf8(unescape(raw))
                .map(Cow::Owned)
                .map_err(|_| bad())
        } else {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| bad())
        }
    }

    fn field_value(&mut self, key: &str) -> R<FieldRef<'a>> {
        if self.peek() == Some(b'"') {
            return self.string_value(key).map(|s| FieldRef::Str(Cow::Owned(s)));
        }
        let start = self.pos;
        self.skip(|b| !matches!(b, b',' | b' ' | b'\n' | b'\r' | b'\t'));
        let tok = self
            .str_at(start)
            .map_err(|_| format!("field '{key}': value is not valid UTF-8"))?;
        parse_scalar(tok).map_err(|reason| format!("field '{key}': {reason}"))
    }

    fn string_value(&mut self, key: &str) -> R<String> {
        self.pos += 1; // opening quote
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("field '{key}': unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') if matches!(self.b.get(self.pos + 1), Some(b'"' | b'\\')) => {
                    out.push(self.b[self.pos + 1]);
                    self.pos += 2;
                }
                Some(b) => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| format!("field '{key}': string is not valid UTF-8"))
    }

    fn timestamp(&mut self, precision: Precision) -> R<i64> {
        let start = self.pos;
        self.skip(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'));
        let tok = self.str_at(start).unwrap_or("?");
        let n: i64 = tok
            .parse()
            .map_err(|_| format!("bad timestamp '{tok}' (expected an integer)"))?;
        n.checked_mul(precision.nanos())
            .filter(|&ts| timestamp_in_range(ts))
            .ok_or_else(|| {
                format!(
                    "timestamp {tok} ({}) is outside the valid range \
                     [{MIN_TIMESTAMP}, {MAX_TIMESTAMP}] ns (1678-01-01 to 2261-12-31 UTC)",
                    precision.name()
                )
            })
    }
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b',' | b'=' | b' ' | b'\\')) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

fn parse_scalar(tok: &str) -> R<FieldRef<'static>> {
    match tok {
        "" => return Err("missing value".to_string()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldRef::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldRef::Bool(false)),
        _ => {}
    }
    if let Some(int) = tok.strip_suffix('i') {
        return int
            .parse::<i64>()
            .map(FieldRef::I64)
            .map_err(|_| format!("bad integer '{tok}'"));
    }
    if let Some(uint) = tok.strip_suffix('u') {
        let v: u64 = uint
            .parse()
            .map_err(|_| format!("bad unsigned integer '{tok}'"))?;
        return i64::try_from(v)
            .map(FieldRef::I64)
            .map_err(|_| format!("unsigned integer {v} does not fit in a signed 64-bit integer"));
    }
    // Only plain decimal notation: Rust would also accept "inf" and "NaN", InfluxDB does not.
    if !tok
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(format!("bad value '{tok}' (strings must be double-quoted)"));
    }
    match tok.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(FieldRef::F64(f)),
        Ok(_) => Err(format!("float '{tok}' is out of range")),
        Err(_) => Err(format!("bad float '{tok}'")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use strata_engine::{FieldValue, Point};

    /// The batch as owned points, so the assertions read as before.
    fn parse_v(body: &[u8], p: Precision, now: i64) -> Result<Vec<Point>, LineError> {
        parse(body, p, now).map(|b| b.to_points())
    }

    fn one(line: &str) -> Point {
        let mut v = parse_v(line.as_bytes(), Precision::Nanos, 42).unwrap();
        assert_eq!(v.len(), 1, "{line}");
        v.remove(0)
    }

    fn err(body: &str) -> LineError {
        parse_v(body.as_bytes(), Precision::Nanos, 0).unwrap_err()
    }

    fn tags(p: &Point) -> Vec<(&str, &str)> {
        p.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn basic_line_with_every_field_type() {
        let p = one(r#"cpu,host=h1,region=eu f=1.5,i=-3i,u=7u,b=t,B=FALSE,s="hi",e=1e3 1700"#);
        assert_eq!(p.measure, "cpu");
        assert_eq!(tags(&p), vec![("host", "h1"), ("region", "eu")]);
        assert_eq!(
            p.fields,
            vec![
                ("f".into(), FieldValue::F64(1.5)),
                ("i".into(), FieldValue::I64(-3)),
                ("u".into(), FieldValue::I64(7)),
                ("b".into(), FieldValue::Bool(true)),
                ("B".into(), FieldValue::Bool(false)),
                ("s".into(), FieldValue::Str("hi".into())),
                ("e".into(), FieldValue::F64(1000.0)),
            ]
        );
        assert_eq!(p.timestamp, 1700);
    }

    #[test]
    fn all_boolean_spellings() {
        for (s, v) in [
            ("t", true),
            ("T", true),
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("f", false),
            ("F", false),
            ("false", false),
            ("False", false),
            ("FALSE", false),
        ] {
            assert_eq!(
                one(&format!("m b={s}")).fields[0].1,
                FieldValue::Bool(v),
                "{s}"
            );
        }
        assert!(err("m b=yes").reason.contains("double-quoted"));
    }

    #[test]
    fn escapes_in_names_tags_and_strings() {
        let p = one(r#"my\ cpu\,x,ta\=g\ k=v\,a\ l\=ue,p=a\b fi\ eld\,=1,s="q\"u\\o\te, x=1" 5"#);
        assert_eq!(p.measure, "my cpu,x");
        assert_eq!(tags(&p), vec![("ta=g k", "v,a l=ue"), ("p", r"a\b")]);
        assert_eq!(p.fields[0].0, "fi eld,");
        assert_eq!(p.fields[1].1, FieldValue::Str(r#"q"u\o\te, x=1"#.into()));
    }

    #[test]
    fn strings_may_span_lines_and_line_numbers_stay_physical() {
        let body = "m s=\"a\nb\" 1\nm x=1 2\nm x= 3\n";
        let e = err(body);
        assert_eq!(e.line, 4);
        let ok = parse_v(b"m s=\"a\nb\" 1\nm x=1 2\n", Precision::Nanos, 0).unwrap();
        assert_eq!(ok[0].fields[0].1, FieldValue::Str("a\nb".into()));
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn precisions_scale_and_missing_timestamp_is_now() {
        for (p, want) in [
            (Precision::Nanos, 7),
            (Precision::Micros, 7_000),
            (Precision::Millis, 7_000_000),
            (Precision::Seconds, 7_000_000_000),
        ] {
            assert_eq!(parse_v(b"m x=1 7", p, 0).unwrap()[0].timestamp, want);
        }
        assert_eq!(one("m x=1").timestamp, 42);
        assert_eq!(one("m x=1   \r").timestamp, 42);
        assert_eq!(one("m x=1 -5").timestamp, -5);
        assert!(
            parse_v(b"m x=1 9223372036854775807", Precision::Seconds, 0)
                .unwrap_err()
                .reason
                .contains("outside the valid range")
        );
        assert_eq!(Precision::parse("n"), Some(Precision::Nanos));
        assert_eq!(Precision::parse("us"), Some(Precision::Micros));
        assert_eq!(Precision::parse("x"), None);
    }

    #[test]
    fn timestamps_outside_the_valid_range_are_refused_at_every_precision() {
        use strata_engine::model::{MAX_TIMESTAMP, MIN_TIMESTAMP};
        let all = [
            Precision::Nanos,
            Precision::Micros,
            Precision::Millis,
            Precision::Seconds,
            Precision::Minutes,
            Precision::Hours,
        ];
        for p in all {
            let n = p.nanos();
            // The edges themselves are valid.
            for tok in [MAX_TIMESTAMP / n, MIN_TIMESTAMP / n] {
                let v = parse_v(format!("m x=1 {tok}").as_bytes(), p, 0).unwrap();
                assert_eq!(v[0].timestamp, tok * n, "{p:?} {tok}");
            }
            for tok in [
                i64::MAX,
                i64::MIN,
                MAX_TIMESTAMP / n + 1,
                MIN_TIMESTAMP / n - 1,
            ] {
                let body = format!("ok x=1 1\nm x=1 {tok}\n");
                let e = parse_v(body.as_bytes(), p, 0).unwrap_err();
                assert_eq!(e.line, 2, "{p:?} {tok}");
                assert!(e.reason.contains("valid range"), "{p:?}: {}", e.reason);
                assert!(e.reason.contains(&tok.to_string()), "{}", e.reason);
            }
        }
    }

    #[test]
    fn a_line_wider_than_the_field_cap_is_refused_with_its_number() {
        let wide: Vec<String> = (0..5).map(|i| format!("f{i}=1")).collect();
        let body = format!("ok x=1 1\nm {} 2\n", wide.join(","));
        let e = parse_with(body.as_bytes(), Precision::Nanos, 0, 4).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("max_fields_per_point"), "{}", e.reason);
        // Repeated keys count once.
        let ok = parse_with(b"m a=1,a=2,b=1,c=1,d=1 1", Precision::Nanos, 0, 4).unwrap();
        assert_eq!(ok.get(0).fields.len(), 4);
    }

    #[test]
    fn blank_lines_comments_and_crlf_are_skipped() {
        let v = parse_v(b"\n# c\r\n  m x=1 1\r\n\n\tm x=2 2\n", Precision::Nanos, 0).unwrap();
        assert_eq!(v.len(), 2);
        assert!(parse_v(b"", Precision::Nanos, 0).unwrap().is_empty());
    }

    #[test]
    fn unsigned_that_does_not_fit_is_rejected() {
        assert_eq!(
            one("m u=9223372036854775807u").fields[0].1,
            FieldValue::I64(i64::MAX)
        );
        assert!(
            err("m u=9223372036854775808u")
                .reason
                .contains("does not fit")
        );
        assert!(err("m u=-1u").reason.contains("unsigned"));
    }

    #[test]
    fn bad_lines_report_their_number_and_reason() {
        let cases = [
            ("m", "no fields"),
            ("m ", "no fields"),
            ("m,t=1", "no fields"),
            ("m,t x=1", "no value"),
            ("m,=v x=1", "empty tag key"),
            ("m,t= x=1", "empty tag value"),
            (",t=v x=1", "empty measurement"),
            ("m x", "no value"),
            ("m x=", "missing value"),
            ("m x=1i2", "bad value"),
            ("m x=1.5i", "bad integer"),
            ("m x=nan", "double-quoted"),
            ("m x=1e999", "out of range"),
            ("m x=\"open", "unterminated"),
            ("m x=1 12a", "bad timestamp"),
            ("m x=1 1 2", "after the timestamp"),
            ("m x=1,", "empty field key"),
        ];
        for (line, want) in cases {
            let body = format!("ok x=1 1\n\n{line}\nok x=2 2\n");
            let e = err(&body);
            assert_eq!(e.line, 3, "{line}");
            assert!(e.reason.contains(want), "{line}: {}", e.reason);
        }
    }

    #[test]
    fn duplicate_field_keeps_last_and_invalid_utf8_is_rejected() {
        assert_eq!(
            one("m x=1,x=2").fields,
            vec![("x".into(), FieldValue::F64(2.0))]
        );
        assert!(parse_v(b"m\xff x=1", Precision::Nanos, 0).is_err());
    }
}
