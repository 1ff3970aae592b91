//! The `database_url` as configured: libpq's URL (or `key=value` string) with
//! its TLS words read and checked when the config loads, so `check-config`
//! reports a bad URL, an unknown `sslmode` or an unreadable CA file with its
//! location. `store::postgres` connects with what this gives (the TLS
//! connector is built there); the config needs nothing from the store.
//!
//! tokio-postgres knows only `disable`/`prefer`/`require`, so `sslmode` and
//! `sslrootcert` are taken out of the URL here before it parses the rest.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;

/// What `sslmode` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Plain,
    /// Encrypted, certificate unchecked.
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed `database_url`.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// The connection settings (TLS requested unless the mode is plain).
    pub settings: tokio_postgres::Config,
    pub mode: TlsMode,
    /// The CAs a `verify-*` mode trusts: `sslrootcert`'s, or the bundled
    /// public ones (empty for the other modes).
    pub roots: Arc<rustls::RootCertStore>,
}

/// Parses a `postgres://` URL (or a `key=value` string) with libpq's TLS
/// words; loads the CA file it names, so a missing file is a config error.
pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
    let (rest, sslmode, rootcert) = split_tls_params(url);
    let mut settings = tokio_postgres::Config::from_str(&rest).map_err(|e| e.to_string())?;
    if settings.get_dbname().is_none() {
        return Err("the URL names no database (postgres://user@host/DATABASE)".into());
    }
    let mode = match sslmode.as_deref() {
        None | Some("disable") | Some("prefer") => TlsMode::Plain,
        Some("require") if rootcert.is_some() => TlsMode::VerifyCa,
        Some("require") => TlsMode::Require,
        Some("verify-ca") => TlsMode::VerifyCa,
        Some("verify-full") => TlsMode::VerifyFull,
        Some("allow") => {
            return Err("sslmode=allow is not supported: use disable, require, \
                        verify-ca or verify-full"
                .into());
        }
        Some(other) => return Err(format!("unknown sslmode `{other}`")),
    };
    settings.ssl_mode(if mode == TlsMode::Plain {
        SslMode::Disable
    } else {
        SslMode::Require
    });
    let roots = match mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => roots(rootcert.as_deref())?,
        TlsMode::Plain | TlsMode::Require => rustls::RootCertStore::empty(),
    };
    Ok(DatabaseUrl {
        settings,
        mode,
        roots: Arc::new(roots),
    })
}

/// Takes `sslmode` and `sslrootcert` out of the URL's query (or the
/// key=value string), leaving the rest exactly as written.
fn split_tls_params(url: &str) -> (String, Option<String>, Option<String>) {
    let mut sslmode = None;
    let mut rootcert = None;
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            sslmode = Some(value);
            true
        }
        "sslrootcert" => {
            rootcert = Some(value);
            true
        }
        _ => false,
    };
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), None, None);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                !take(k, v.into_owned())
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, sslmode, rootcert)
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim_matches('\'').to_owned())
            })
            .collect();
        (kept.join(" "), sslmode, rootcert)
    }
}

fn roots(rootcert: Option<&str>) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    match rootcert {
        None | Some("system") => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            for cert in read_pem(Path::new(path))? {
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert `{path}`: {e}"))?;
            }
        }
    }
    Ok(store)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = PathBuf::from(path).display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert `{shown}` cannot be read: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert `{shown}` is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("sslrootcert `{shown}` holds no certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_leave_the_rest_as_written() {
        let (rest, mode, root) = split_tls_params(
            "postgres://u@h/db?options=-csearch_path%3Dx&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(rest, "postgres://u@h/db?options=-csearch_path%3Dx");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, _) = split_tls_params("host=h dbname=d sslmode=require");
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(mode.as_deref(), Some("require"));
        let (rest, mode, _) = split_tls_params("postgres://u@h/db?sslmode=disable");
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("postgres://u@h/db", Some("disable"))
        );
    }

    #[test]
    fn modes_follow_libpq() {
        let mode = |url: &str| parse(url).map(|t| t.mode);
        assert_eq!(mode("postgres://u@h/db").unwrap(), TlsMode::Plain);
        assert_eq!(
            mode("postgres://u@h/db?sslmode=prefer").unwrap(),
            TlsMode::Plain
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require").unwrap(),
            TlsMode::Require
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=verify-full").unwrap(),
            TlsMode::VerifyFull
        );
        assert!(mode("postgres://u@h/db?sslmode=allow").is_err());
        assert!(mode("postgres://u@h/db?sslmode=nonsense").is_err());
        let missing = parse("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem");
        assert!(missing.err().unwrap().contains("cannot be read"));
    }
}
