//! Where the PostgreSQL tests find their server: `FERRY_TEST_POSTGRES_URL`.
//! Without it they are skipped with a note, except under CI (`CI` set), where
//! a skipped PostgreSQL test would report `ok` for a backend never tried:
//! there they fail.

/// The server URL, or `None` (and a note) when none is configured outside CI.
pub fn postgres_test_url(test: &str) -> Option<String> {
    match std::env::var("FERRY_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: CI is set but FERRY_TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI (.ci/run sets it)"
        ),
        _ => {
            eprintln!("{test}: FERRY_TEST_POSTGRES_URL is not set; skipped on PostgreSQL");
            None
        }
    }
}
