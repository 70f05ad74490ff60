//! The body of `POST /api/v1/restores`.

use std::collections::BTreeMap;

use serde::Deserialize;
use strata_backup::restore::RestoreFilter;
use strata_backup::restore::online::OnlineRequest;
use strata_backup::settings::RepoSettings;

/// A time: RFC 3339, or an integer of ns since the epoch.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Time {
    Ns(i64),
    Text(String),
}

impl Time {
    fn ns(&self, what: &str) -> Result<i64, String> {
        match self {
            Time::Ns(n) => Ok(*n),
            Time::Text(s) => s.parse::<i64>().or_else(|_| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|e| format!("{what}: {s:?} is not an RFC 3339 time or ns ({e})"))?
                    .timestamp_nanos_opt()
                    .ok_or_else(|| format!("{what}: {s:?} is out of range"))
            }),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestoreRequest {
    /// Repository URL; unset: the server's.
    pub repo: Option<String>,
    pub snapshot: String,
    pub groups: Vec<String>,
    pub measures: Vec<String>,
    /// Tag equalities, ANDed.
    pub tags: BTreeMap<String, String>,
    pub from: Option<Time>,
    pub to: Option<Time>,
    pub shards: Option<u32>,
    pub into_group: Option<String>,
    pub replace: bool,
    /// Plan only: answer the plan, start nothing.
    pub dry_run: bool,
    pub parallel: Option<usize>,
    #[serde(skip)]
    filter: RestoreFilter,
}

impl Default for RestoreRequest {
    fn default() -> Self {
        RestoreRequest {
            repo: None,
            snapshot: "latest".into(),
            groups: Vec::new(),
            measures: Vec::new(),
            tags: BTreeMap::new(),
            from: None,
            to: None,
            shards: None,
            into_group: None,
            replace: false,
            dry_run: false,
            parallel: None,
            filter: RestoreFilter::default(),
        }
    }
}

impl RestoreRequest {
    /// Parses and checks a body (JSON, whatever its `Content-Type`); one line of error.
    pub fn parse(body: &[u8]) -> Result<RestoreRequest, String> {
        let mut r: RestoreRequest = if body.iter().all(u8::is_ascii_whitespace) {
            RestoreRequest::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| format!("restore request is not valid JSON: {e}"))?
        };
        r.filter = RestoreFilter {
            groups: r.groups.clone(),
            measures: r.measures.clone(),
            tags: r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            from: r.from.as_ref().map(|t| t.ns("from")).transpose()?,
            to: r.to.as_ref().map(|t| t.ns("to")).transpose()?,
            shards: r.shards,
        };
        r.filter.validate().map_err(|e| e.to_string())?;
        if r.snapshot.is_empty() {
            return Err("snapshot: give an id, a unique prefix or \"latest\"".into());
        }
        if r.parallel == Some(0) {
            return Err("parallel: at least 1".into());
        }
        Ok(r)
    }

    /// The repository: the server's settings when the URL is the server's (or unset).
    pub fn settings(&self, server: Option<&RepoSettings>) -> Result<RepoSettings, String> {
        let s = match (&self.repo, server) {
            (Some(url), Some(s)) if *url == s.url => s.clone(),
            (Some(url), _) => RepoSettings::new(url.clone()),
            (None, Some(s)) => s.clone(),
            (None, None) => RepoSettings::new(""),
        };
        if s.url.is_empty() {
            return Err(
                "no backup repository configured: start the server with --repo URL or name one in \"repo\""
                    .into(),
            );
        }
        Ok(s)
    }

    pub fn online(&self) -> OnlineRequest {
        OnlineRequest {
            snapshot: self.snapshot.clone(),
            filter: self.filter.clone(),
            into_group: self.into_group.clone(),
            replace: self.replace,
            parallelism: self.parallel.unwrap_or(8),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_in_one_line() {
        let r = RestoreRequest::parse(
            br#"{"groups":["g"],"measures":["cpu"],"tags":{"host":"h1"},"from":"2026-01-01T00:00:00Z","to":1767229200000000000,"into_group":"g_restored"}"#,
        )
        .unwrap();
        let o = r.online();
        assert_eq!(o.snapshot, "latest");
        assert_eq!(o.filter.tags, [("host".to_string(), "h1".to_string())]);
        assert_eq!(o.filter.from, Some(1_767_225_600_000_000_000));
        assert_eq!(o.filter.to, Some(1_767_229_200_000_000_000));
        assert_eq!(o.into_group.as_deref(), Some("g_restored"));
        assert!(RestoreRequest::parse(b"").is_ok());
        for (body, what) in [
            (&br#"{"from":"yesterday"}"#[..], "RFC 3339"),
            (br#"{"from":10,"to":5}"#, "before --to"),
            (br#"{"shards":0}"#, "shards"),
            (br#"{"password":"x"}"#, "unknown field"),
            (br#"{"snapshot":""}"#, "snapshot"),
            (b"{", "not valid JSON"),
        ] {
            let e = RestoreRequest::parse(body).unwrap_err();
            assert!(e.contains(what), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_servers_repository_settings_apply_to_its_url_only() {
        let mut server = RepoSettings::new("file:///r");
        server.password_file = Some("/etc/strata/pw".into());
        let r = RestoreRequest::parse(br#"{}"#).unwrap();
        assert_eq!(
            r.settings(Some(&server)).unwrap().password_file,
            server.password_file
        );
        let r = RestoreRequest::parse(br#"{"repo":"file:///other"}"#).unwrap();
        let s = r.settings(Some(&server)).unwrap();
        assert_eq!(s.url, "file:///other");
        assert!(s.password_file.is_none());
        assert!(r.settings(None).is_ok());
        let r = RestoreRequest::parse(br#"{}"#).unwrap();
        assert!(r.settings(None).unwrap_err().contains("--repo"));
    }
}
