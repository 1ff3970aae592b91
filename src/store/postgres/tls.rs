//! TLS to PostgreSQL: how `database_url` asks for it and the rustls connector
//! every store connection (pool, listener, scratch schemas) is made with.
//! Managed databases require TLS, so ferry speaks libpq's `sslmode` words:
//!
//! * `disable`, `prefer` or none: plain TCP. `prefer` gives no protection
//!   against anyone able to intercept (it falls back silently and checks no
//!   certificate), so ferry does not pretend: ask for one of the modes below.
//! * `require`: encrypted; the certificate is checked only when `sslrootcert`
//!   names a CA (then as `verify-ca`), as libpq does.
//! * `verify-ca`: the server's chain must lead to `sslrootcert`'s CAs.
//! * `verify-full`: that, and the certificate must name the host dialled.
//!
//! `sslrootcert` is a PEM file, or `system` for the bundled public CAs
//! (webpki roots); without it `verify-*` use the public CAs too. tokio-postgres
//! knows only `disable`/`prefer`/`require`, so both words are taken out of the
//! URL here before it parses the rest.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What `sslmode` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// Encrypted, certificate unchecked.
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed `database_url`: the connection settings and the TLS connector
/// they are used with.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: Mode,
}

/// Parses a `postgres://` URL (or a `key=value` string) with libpq's TLS
/// words; loads the CA file it names, so a missing file is a config error.
pub fn target(url: &str) -> Result<Target, String> {
    let (rest, sslmode, rootcert) = split_tls_params(url);
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| e.to_string())?;
    let mode = match sslmode.as_deref() {
        None | Some("disable") | Some("prefer") => Mode::Plain,
        Some("require") if rootcert.is_some() => Mode::VerifyCa,
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some("allow") => {
            return Err("sslmode=allow is not supported: use disable, require, \
                        verify-ca or verify-full"
                .into());
        }
        Some(other) => return Err(format!("unknown sslmode `{other}`")),
    };
    config.ssl_mode(if mode == Mode::Plain {
        SslMode::Disable
    } else {
        SslMode::Require
    });
    let tls = connector(&mode, rootcert.as_deref())?;
    Ok(Target { config, tls, mode })
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

fn connector(mode: &Mode, rootcert: Option<&str>) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        Mode::Plain | Mode::Require => Arc::new(Unchecked(provider)),
        Mode::VerifyCa | Mode::VerifyFull => {
            let roots = roots(rootcert)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("the CA certificates are not usable: {e}"))?;
            if *mode == Mode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
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

/// `sslmode=require` without a CA: the link is encrypted and the handshake's
/// signatures are checked, but nothing says whose certificate it is.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
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
        let mode = |url: &str| target(url).map(|t| t.mode);
        assert_eq!(mode("postgres://u@h/db").unwrap(), Mode::Plain);
        assert_eq!(
            mode("postgres://u@h/db?sslmode=prefer").unwrap(),
            Mode::Plain
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require").unwrap(),
            Mode::Require
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=verify-full").unwrap(),
            Mode::VerifyFull
        );
        assert!(mode("postgres://u@h/db?sslmode=allow").is_err());
        assert!(mode("postgres://u@h/db?sslmode=nonsense").is_err());
        let missing = target("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem");
        assert!(missing.err().unwrap().contains("cannot be read"));
    }
}
