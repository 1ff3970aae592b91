//! TLS to PostgreSQL (`sslmode` in `database_url`), against the local
//! server's own certificate: Debian's PostgreSQL serves the snakeoil
//! certificate (CN and SAN `localhost`), or the one `FERRY_TEST_POSTGRES_CA`
//! names. `require` encrypts; `verify-full` also checks the name dialled.

use ferry::store::postgres::PgStore;

/// The server URL with `host` and the query replaced, or `None` (skipped,
/// with a note) when no PostgreSQL is configured.
fn url(test: &str, host: &str, query: &str) -> Option<String> {
    let server = crate::common::postgres_test_url(test)?;
    let (scheme, rest) = server.split_once("://").expect("a postgres:// URL");
    let rest = rest.split('?').next().unwrap_or(rest);
    let (user, hostpart) = rest.split_once('@').expect("user@host in the URL");
    let (_, path) = hostpart.split_once(':').expect("host:port in the URL");
    Some(format!("{scheme}://{user}@{host}:{path}?{query}"))
}

fn ca() -> String {
    std::env::var("FERRY_TEST_POSTGRES_CA")
        .unwrap_or_else(|_| "/etc/ssl/certs/ssl-cert-snakeoil.pem".into())
}

#[tokio::test]
async fn sslmode_require_encrypts_and_disable_does_not() {
    let test = "sslmode_require_encrypts_and_disable_does_not";
    let Some(require) = url(test, "127.0.0.1", "sslmode=require") else {
        return;
    };
    let store = PgStore::open(&require).await.expect("TLS connection");
    assert!(
        store.encrypted().await.unwrap(),
        "sslmode=require must encrypt"
    );
    let plain = url(test, "127.0.0.1", "sslmode=disable").unwrap();
    let store = PgStore::open(&plain).await.expect("plain connection");
    assert!(!store.encrypted().await.unwrap());
}

#[tokio::test]
async fn verify_full_checks_the_certificate_and_its_name() {
    let test = "verify_full_checks_the_certificate_and_its_name";
    let Some(good) = url(
        test,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    ) else {
        return;
    };
    let store = PgStore::open(&good).await.expect("verified TLS connection");
    assert!(store.encrypted().await.unwrap());

    // The certificate names `localhost`, not the address.
    let wrong_name = url(
        test,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    )
    .unwrap();
    let err = PgStore::open(&wrong_name).await.err().expect("refused");
    // As `ferry serve` prints it: the error with its causes.
    let said = ferry::model::Chain(&err).to_string();
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    // verify-ca checks the chain only, so the address is fine.
    let chain_only = url(
        test,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", ca()),
    )
    .unwrap();
    assert!(PgStore::open(&chain_only).await.is_ok());
    // The public CAs do not vouch for a self-signed certificate.
    let public = url(test, "localhost", "sslmode=verify-full&sslrootcert=system").unwrap();
    assert!(PgStore::open(&public).await.is_err());
}
