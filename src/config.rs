//! Run-time configuration shared by every command: where the database is and how to reach it.
//!
//! `DatabaseUrl` is parsed once at the edge so a bad URL ends the process with one clear line
//! instead of surfacing later as a connection error.

use std::fmt;
use std::path::PathBuf;

/// The default database: a SQLite file beside the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/gatehouse.db";

/// Which SQL dialect a URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database URL whose scheme Gatehouse supports.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid database URL {0}: expected sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    DatabaseUrl(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        let redacted = || ConfigError::DatabaseUrl(redact(raw));
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(redacted());
            }
            return Ok(Self {
                raw: raw.to_string(),
                backend: Backend::Sqlite,
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let parsed = url::Url::parse(raw).map_err(|_| redacted())?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(redacted());
            }
            return Ok(Self {
                raw: raw.to_string(),
                backend: Backend::Postgres,
            });
        }
        Err(redacted())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to hand to sqlx. Secrets included: never log this, log `Display` instead.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// For SQLite, the file the URL points at (`None` for in-memory databases).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self.raw.strip_prefix("sqlite:")?.trim_start_matches("//");
        let path = rest.split('?').next()?;
        (path != ":memory:" && !path.is_empty()).then(|| PathBuf::from(path))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Hides the password of a URL so it can appear in messages and logs.
fn redact(raw: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(raw) else {
        return raw.to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    // libpq-style URLs may carry the password as a query parameter too.
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let hidden = k.eq_ignore_ascii_case("password");
                (
                    k.into_owned(),
                    if hidden { "***".to_string() } else { v.into_owned() },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_the_user_part_and_in_the_query_are_hidden() {
        let url =
            DatabaseUrl::parse("postgres://app:s3cret@db:5432/g?password=other&sslmode=require").unwrap();
        let shown = url.to_string();
        assert!(!shown.contains("s3cret") && !shown.contains("other"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        let url = DatabaseUrl::parse("postgres://app@db/g?PASSWORD=hunter2").unwrap();
        assert!(!url.to_string().contains("hunter2"), "{url}");
    }

    #[test]
    fn sqlite_and_postgres_urls_select_their_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/g.db").unwrap().backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().backend(),
            Backend::Sqlite
        );
        let pg = DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
    }

    #[test]
    fn unknown_schemes_and_empty_paths_are_rejected() {
        for bad in ["mysql://x/y", "sqlite://", "", "postgres://", "nonsense"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn passwords_never_reach_the_display_form() {
        let url = DatabaseUrl::parse("postgres://alice:hunter2@db:5432/gh").unwrap();
        assert!(!url.to_string().contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
    }

    #[test]
    fn sqlite_path_is_the_file_part() {
        let url = DatabaseUrl::parse("sqlite://data/g.db?mode=rwc").unwrap();
        assert_eq!(url.sqlite_path(), Some(PathBuf::from("data/g.db")));
        assert_eq!(DatabaseUrl::parse("sqlite::memory:").unwrap().sqlite_path(), None);
    }
}
