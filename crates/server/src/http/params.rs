//! Query-string parameters with each name at most once.
//!
//! `?group=a&group=b` used to be accepted with one of the two silently winning (a write landed
//! in a group the client may not have meant; issue 18's "duplicated query parameters"). A
//! repeated name is now a 400 that names it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;

/// The request's query parameters, each name once.
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn parse(query: &str) -> Result<Params, ApiError> {
        unique(query).map(Params).map_err(ApiError::bad_request)
    }
}

/// The parameters of a query string, or the one-line reason a name is repeated.
pub fn unique(query: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match out.entry(k.into_owned()) {
            Entry::Occupied(e) => {
                let name: String = e.key().chars().take(64).collect();
                return Err(format!("query parameter '{name}' is given more than once"));
            }
            Entry::Vacant(e) => {
                e.insert(v.into_owned());
            }
        }
    }
    Ok(out)
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Params::parse(parts.uri.query().unwrap_or_default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_refused_and_named() {
        let p = Params::parse("group=g&precision=s&x=").unwrap();
        assert_eq!(p.0["group"], "g");
        assert_eq!(p.0["x"], "");
        let err = Params::parse("group=a&precision=s&group=b").err().unwrap();
        assert!(err.body.to_string().contains("'group'"), "{:?}", err.body);
        assert!(Params::parse("").unwrap().0.is_empty());
    }
}
