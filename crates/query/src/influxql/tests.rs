//! InfluxQL end to end over a real engine: the JSON text a client gets.
#![allow(clippy::unwrap_used)]

use strata_engine::{Engine, EngineOptions, FieldValue, Point};

use super::*;

const S: i64 = 1_000_000_000;

struct Db {
    _dir: tempfile::TempDir,
    engine: Engine,
    /// A whole hour, a few hours ago (inside the default TTL).
    base: i64,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let mut o = EngineOptions::new(dir.path());
    o.background = false;
    let engine = Engine::open(o).unwrap();
    let now = chrono::Utc::now().timestamp();
    let base = (now / 3600 - 3) * 3600 * S;
    let mut pts = Vec::new();
    for (host, region, k) in [("a", "eu", 1.0), ("b", "eu", 10.0), ("c", "us", 100.0)] {
        for i in 0..6 {
            pts.push(Point {
                measure: "cpu".into(),
                tags: vec![
                    ("host".into(), host.into()),
                    ("region".into(), region.into()),
                ],
                fields: vec![
                    ("usage".into(), FieldValue::F64(k * i as f64)),
                    ("n".into(), FieldValue::I64(i)),
                ],
                timestamp: base + i * 10 * S,
            });
        }
    }
    pts.push(Point {
        measure: "mem".into(),
        tags: vec![("host".into(), "a".into())],
        fields: vec![("free".into(), FieldValue::I64(7))],
        timestamp: base,
    });
    engine.write("g", &pts).unwrap();
    Db {
        _dir: dir,
        engine,
        base,
    }
}

impl Db {
    fn ctx(&self) -> Context {
        Context {
            db: Some("g".into()),
            now: self.base + 3600 * S,
            limits: crate::Limits::default(),
        }
    }

    fn q(&self, q: &str, epoch: Epoch) -> String {
        render(&run(&self.engine, &self.ctx(), q).unwrap(), epoch)
    }

    fn values(&self, q: &str) -> serde_json::Value {
        let out: serde_json::Value = serde_json::from_str(&self.q(q, Epoch::S)).unwrap();
        out["results"][0].clone()
    }

    fn range(&self) -> String {
        format!(
            "time >= {}ms AND time <= {}ms",
            self.base / 1_000_000,
            (self.base + 59 * S) / 1_000_000
        )
    }
}

#[test]
fn grafana_mean_grouped_by_time_and_tag_with_fill() {
    let d = db();
    let b = d.base / S;
    let r = d.values(&format!(
        r#"SELECT mean("usage") FROM "autogen"."cpu" WHERE ("region" = 'eu') AND {} GROUP BY time(20s), "host" fill(null)"#,
        d.range()
    ));
    let s = r["series"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["name"], "cpu");
    assert_eq!(s[0]["tags"]["host"], "a");
    assert_eq!(s[0]["columns"], serde_json::json!(["time", "mean"]));
    // a: 0,1 | 2,3 | 4,5 → means .5, 2.5, 4.5; the range covers one more bucket, filled null.
    assert_eq!(
        s[0]["values"],
        serde_json::json!([[b, 0.5], [b + 20, 2.5], [b + 40, 4.5]])
    );
    let r = d.values(&format!(
        "SELECT mean(usage) FROM cpu WHERE host = 'a' AND time >= {}s AND time < {}s GROUP BY time(20s) fill(0)",
        b - 20,
        b + 80
    ));
    assert_eq!(
        r["series"][0]["values"],
        serde_json::json!([
            [b - 20, 0],
            [b, 0.5],
            [b + 20, 2.5],
            [b + 40, 4.5],
            [b + 60, 0]
        ])
    );
    let r = d.values(&format!(
        "SELECT max(usage) FROM cpu WHERE host = 'a' AND time >= {}s AND time < {}s GROUP BY time(20s) fill(previous)",
        b,
        b + 80
    ));
    assert_eq!(r["series"][0]["values"][3], serde_json::json!([b + 60, 5]));
}

#[test]
fn several_functions_aliases_and_whole_range() {
    let d = db();
    let r = d.values(&format!(
        "SELECT count(usage), sum(n) AS total, max(usage), min(usage), first(usage), last(usage), mean(n) FROM cpu WHERE {}",
        d.range()
    ));
    let s = &r["series"][0];
    assert_eq!(
        s["columns"],
        serde_json::json!([
            "time", "count", "total", "max", "min", "first", "last", "mean"
        ])
    );
    // Without GROUP BY time() the row is stamped with the range start.
    assert_eq!(
        s["values"],
        serde_json::json!([[d.base / S, 18, 45, 500, 0, 0, 500, 2.5]])
    );
}

#[test]
fn raw_select_merges_series_with_tag_columns_desc_and_limit() {
    let d = db();
    let r = d.values("SELECT usage, host FROM cpu WHERE host =~ /^(a|c)$/ OR region = 'us' ORDER BY time DESC LIMIT 3");
    let s = &r["series"][0];
    assert!(s.get("tags").is_none());
    assert_eq!(s["columns"], serde_json::json!(["time", "usage", "host"]));
    let b = d.base / S;
    assert_eq!(
        s["values"],
        serde_json::json!([[b + 50, 5, "a"], [b + 50, 500, "c"], [b + 40, 4, "a"]])
    );
    let r = d.values("SELECT * FROM cpu WHERE host = 'b' LIMIT 1 OFFSET 2");
    assert_eq!(
        r["series"][0]["columns"],
        serde_json::json!(["time", "host", "n", "region", "usage"])
    );
    assert_eq!(
        r["series"][0]["values"],
        serde_json::json!([[b + 20, "b", 2, "eu", 20]])
    );
    let r = d.values("SELECT * FROM cpu, mem WHERE host = 'a' GROUP BY * LIMIT 1");
    let s = r["series"].as_array().unwrap();
    assert_eq!(
        (s[0]["name"].as_str(), s[1]["name"].as_str()),
        (Some("cpu"), Some("mem"))
    );
    assert_eq!(
        s[0]["tags"],
        serde_json::json!({"host": "a", "region": "eu"})
    );
    assert_eq!(s[1]["columns"], serde_json::json!(["time", "free"]));
}

#[test]
fn show_statements() {
    let d = db();
    let out = d.q("SHOW MEASUREMENTS; SHOW TAG KEYS FROM cpu; SHOW TAG VALUES FROM cpu WITH KEY = host WHERE region = 'eu'; SHOW FIELD KEYS; SHOW RETENTION POLICIES; SHOW DATABASES", Epoch::Rfc3339);
    let want = concat!(
        r#"{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["mem"]]}]},"#,
        r#"{"statement_id":1,"series":[{"name":"cpu","columns":["tagKey"],"values":[["host"],["region"]]}]},"#,
        r#"{"statement_id":2,"series":[{"name":"cpu","columns":["key","value"],"values":[["host","a"],["host","b"]]}]},"#,
        r#"{"statement_id":3,"series":[{"name":"cpu","columns":["fieldKey","fieldType"],"values":[["n","integer"],["usage","float"]]},{"name":"mem","columns":["fieldKey","fieldType"],"values":[["free","integer"]]}]},"#,
        r#"{"statement_id":4,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","720h0m0s","24h0m0s",1,true]]}]},"#,
        r#"{"statement_id":5,"series":[{"name":"databases","columns":["name"],"values":[["g"]]}]}]}"#,
        "\n"
    );
    assert_eq!(out, want);
    let r = d.values("SHOW MEASUREMENTS WITH MEASUREMENT =~ /^m/ LIMIT 10");
    assert_eq!(r["series"][0]["values"], serde_json::json!([["mem"]]));
}

#[test]
fn rfc3339_times_and_empty_results() {
    let d = db();
    let out = d.q(
        "SELECT last(usage) FROM cpu WHERE host = 'a' AND time >= '2000-01-01T00:00:00.5Z'",
        Epoch::Rfc3339,
    );
    assert!(
        out.contains(r#""values":[["2000-01-01T00:00:00.5Z",5]]"#),
        "{out}"
    );
    for q in [
        "SELECT usage FROM cpu WHERE host = 'zzz'",
        "SELECT usage FROM nope",
        "SELECT nofield FROM cpu",
        "SELECT mean(nofield) FROM cpu",
    ] {
        assert_eq!(
            d.q(q, Epoch::Rfc3339),
            "{\"results\":[{\"statement_id\":0}]}\n",
            "{q}"
        );
    }
    let r = d.values("SELECT host::tag FROM cpu");
    assert_eq!(r["error"], "at least 1 non-time field must be queried");
}

#[test]
fn errors_in_influxdb_shape() {
    let d = db();
    let ctx = d.ctx();
    let err = run(
        &d.engine,
        &ctx,
        "SELECT mean(usage) FROM cpu GROUP BY time(",
    )
    .unwrap_err();
    assert!(
        err.starts_with("error parsing query: found EOF, expected duration at line 1, char 43"),
        "{err}"
    );
    let cases = [
        (
            "SELECT derivative(usage) FROM cpu",
            "derivative() is not supported",
        ),
        (
            "SELECT usage FROM cpu WHERE usage > 5",
            "conditions on fields",
        ),
        ("SELECT mean(usage), usage FROM cpu", "mixing aggregate"),
        (
            "SELECT mean(usage) FROM cpu GROUP BY time(1m)",
            "lower time bound",
        ),
        (
            "SELECT usage FROM nope.autogen.cpu",
            "database not found: nope",
        ),
        (
            "SELECT usage FROM \"1d\".cpu",
            "retention policy not found: 1d",
        ),
        ("SELECT usage * 2 FROM cpu", "unsupported select expression"),
        (
            "SELECT mean(host) FROM cpu WHERE time > now() - 1h GROUP BY time(1h)",
            "",
        ),
    ];
    for (q, says) in cases {
        let r = run(&d.engine, &ctx, q).unwrap();
        if says.is_empty() {
            assert!(r[0].error.is_none(), "{q}: {:?}", r[0].error);
            continue;
        }
        let e = r[0].error.clone().unwrap_or_default();
        assert!(e.contains(says), "{q}: {e}");
    }
    let nodb = Context {
        db: None,
        now: 0,
        limits: crate::Limits::default(),
    };
    let r = run(&d.engine, &nodb, "SELECT usage FROM cpu").unwrap();
    assert_eq!(r[0].error.as_deref(), Some("database name required"));
}
