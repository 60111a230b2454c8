//! TLS to PostgreSQL as libpq configures it: `sslmode` and `sslrootcert` from the connection
//! string, else from `PGSSLMODE` and `PGSSLROOTCERT` (which the caller reads, as [`LibpqEnv`]);
//! spoken with rustls, never OpenSSL.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and no root certificates, so
//! both settings are taken out of the connection string here and carried out by the rustls
//! configuration, with libpq's meanings:
//! - `disable`: plain.
//! - `prefer` (the default): TLS when the server offers it, its certificate unchecked; plain
//!   when it does not.
//! - `require`: TLS or no connection, the certificate unchecked; but checked as by `verify-ca`
//!   when a root certificate is given (`sslrootcert`, or `~/.postgresql/root.crt`).
//! - `verify-ca`: the server's certificate must chain to a root; its host name is not checked.
//! - `verify-full`: it must also name the host connected to.
//!
//! The roots: `sslrootcert=PATH` (PEM), `sslrootcert=system`, or, unset, libpq's
//! `~/.postgresql/root.crt` when it exists and the system's roots otherwise (webpki's when the
//! system has none). There libpq would refuse `verify-*`; the system's roots are what a
//! managed service signed by a public authority needs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// The keys taken out of the connection string.
const MODE: &str = "sslmode";
const ROOT_CERT: &str = "sslrootcert";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(StoreError::BadUrl(
                    "sslmode=allow is not supported; use disable, prefer, require, verify-ca or \
                     verify-full"
                        .to_owned(),
                ));
            }
            other => {
                return Err(StoreError::BadUrl(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                )));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    File(PathBuf),
    System,
}

/// The TLS half of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    /// As given; `None` when neither the string nor the environment names one.
    pub roots: Option<Roots>,
}

/// What libpq would read from the environment for TLS, read by the caller: the store reads no
/// environment.
#[derive(Debug, Clone, Default)]
pub struct LibpqEnv {
    /// `PGSSLMODE`.
    pub sslmode: Option<String>,
    /// `PGSSLROOTCERT`.
    pub sslrootcert: Option<String>,
    /// The home folder, for `~/.postgresql/root.crt`.
    pub home: Option<PathBuf>,
}

/// How connections are opened; tokio-postgres's own `SslMode` says whether TLS is required.
#[derive(Clone)]
pub enum Connector {
    Plain,
    Rustls(MakeRustlsConnect),
}

impl Connector {
    pub fn connect(&self, config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
        match self {
            Connector::Plain => config.connect(postgres::NoTls),
            Connector::Rustls(make) => config.connect(make.clone()),
        }
    }
}

impl Tls {
    /// Splits `url` (a `postgres://` URL or libpq's `key=value` words) into the string
    /// tokio-postgres reads, without the two TLS keys, and the TLS settings; `env` is
    /// consulted for what the string leaves unset.
    pub fn split(url: &str, env: &LibpqEnv) -> Result<(String, Self), StoreError> {
        let (rest, found) = take(url, &[MODE, ROOT_CERT])?;
        let value = |key: &str, from_env: &Option<String>| {
            found
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| from_env.clone().filter(|v| !v.is_empty()))
        };
        let mode = match value(MODE, &env.sslmode) {
            Some(text) => SslMode::parse(&text)?,
            None => SslMode::Prefer,
        };
        let roots = value(ROOT_CERT, &env.sslrootcert).map(|text| {
            if text == "system" {
                Roots::System
            } else {
                Roots::File(PathBuf::from(text))
            }
        });
        Ok((rest, Self { mode, roots }))
    }

    /// What tokio-postgres is told, and the connector that carries out the rest.
    pub fn connector(
        &self,
        home: Option<&Path>,
    ) -> Result<(postgres::config::SslMode, Connector), StoreError> {
        use postgres::config::SslMode as Pg;
        let default_root = home
            .map(|home| home.join(".postgresql/root.crt"))
            .filter(|path| path.is_file());
        let roots = match (&self.roots, default_root) {
            (Some(roots), _) => Some(roots.clone()),
            (None, Some(path)) => Some(Roots::File(path)),
            (None, None) => None,
        };
        let check = match self.mode {
            SslMode::Disable => return Ok((Pg::Disable, Connector::Plain)),
            SslMode::Prefer => Check::Nothing,
            SslMode::Require if roots.is_some() => Check::Chain,
            SslMode::Require => Check::Nothing,
            SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::ChainAndName,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_setup(&e.to_string()))?;
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::Nothing => Arc::new(Lenient {
                chain: None,
                algorithms,
            }),
            Check::Chain | Check::ChainAndName => {
                let store = root_store(roots.as_ref().unwrap_or(&Roots::System))?;
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                    .build()
                    .map_err(|e| tls_setup(&e.to_string()))?;
                if check == Check::Chain {
                    Arc::new(Lenient {
                        chain: Some(webpki),
                        algorithms,
                    })
                } else {
                    webpki
                }
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let mode = if self.mode == SslMode::Prefer {
            Pg::Prefer
        } else {
            Pg::Require
        };
        Ok((mode, Connector::Rustls(MakeRustlsConnect::new(config))))
    }
}

/// Why a connection failed in its TLS handshake, said for the person who set `sslmode`; `None`
/// for every other failure. A refused certificate or a server without TLS is final: trying
/// again would meet the same certificate.
pub fn failure(error: &postgres::Error, mode: SslMode) -> Option<String> {
    let mode = mode.name();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        if current.to_string() == "server does not support TLS" {
            return Some(format!(
                "the server does not offer TLS, and sslmode={mode} requires it; turn on ssl in \
                 the server's postgresql.conf, or use sslmode=prefer on a network you trust"
            ));
        }
        let rustls = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls) = rustls {
            use rustls::{CertificateError, Error};
            return Some(match rustls {
                Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => format!(
                    "the server's certificate is not issued for the host name in the URL \
                     (sslmode={mode} checks it): connect by a name the certificate lists, or \
                     use sslmode=verify-ca to check only who signed it ({rustls})"
                ),
                Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                    "the server's certificate is not signed by a root this process trusts \
                     (sslmode={mode}): set sslrootcert to the PEM file of the CA that signed it \
                     ({rustls})"
                ),
                other => format!("the TLS handshake failed (sslmode={mode}): {other}"),
            });
        }
        cause = current.source();
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

fn tls_setup(reason: &str) -> StoreError {
    StoreError::BadUrl(format!("TLS cannot be set up: {reason}"))
}

fn root_store(roots: &Roots) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let unreadable = |reason: String| {
                StoreError::BadUrl(format!(
                    "sslrootcert={}: {reason}; name a PEM file of the CA that signed the \
                     server's certificate, or sslrootcert=system",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(e.to_string()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(unreadable("no certificate in it".to_owned()));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
        }
    }
    Ok(store)
}

/// What `prefer`, `require` and `verify-ca` check of the server's certificate: nothing
/// (`chain: None`; libpq's meaning of the first two without a root), or the chain as
/// `verify-full` does, accepting a certificate issued for another name. The handshake's
/// signatures are checked either way.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `url` (a `postgres://` URL or libpq's `key=value` words) without `keys`, which this
/// program reads itself, and their values.
pub fn take(url: &str, keys: &[&str]) -> Result<(String, Vec<(String, String)>), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(split_url(url, keys))
    } else {
        split_words(url, keys)
    }
}

/// A URL's query without `keys`, and their percent-decoded values.
fn split_url(url: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut found = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if keys.contains(&key) {
            found.push((key.to_owned(), percent_decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, found)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's `key=value` words without `keys`, and their values. A value is a run of
/// non-blank characters or a single-quoted string with `\'` and `\\` escapes.
fn split_words(text: &str, keys: &[&str]) -> Result<(String, Vec<(String, String)>), StoreError> {
    let mut kept = Vec::new();
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    let bad = |reason: &str| StoreError::BadUrl(format!("{reason} in the connection string"));
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(bad(&format!("'{key}' has no '='")));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("an unfinished escape")),
                    },
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(bad("an unclosed quote")),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        if keys.contains(&key.as_str()) {
            found.push((key, value));
        } else {
            kept.push(text[start..end].trim_end());
        }
    }
    Ok((kept.join(" "), found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> LibpqEnv {
        LibpqEnv::default()
    }

    #[test]
    fn the_tls_keys_leave_the_url_and_the_rest_stays() {
        let (rest, tls) = Tls::split(
            "postgres://u:p@db.example:5432/coord?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
            &no_env(),
        )
        .expect("split");
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/coord?application_name=x&connect_timeout=3"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca.pem".into())));
        let (rest, tls) =
            Tls::split("postgresql://db/coord?sslmode=require", &no_env()).expect("split");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgresql://db/coord", SslMode::Require)
        );
    }

    #[test]
    fn keyword_strings_are_read_as_libpq_reads_them() {
        let (rest, tls) = Tls::split(
            "host=db.example  sslmode = verify-ca dbname=coord sslrootcert='/my certs/ca.pem' user=team",
            &no_env(),
        )
        .expect("split");
        assert_eq!(rest, "host=db.example dbname=coord user=team");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.roots, Some(Roots::File("/my certs/ca.pem".into())));
        assert!(Tls::split("host=db sslmode", &no_env()).is_err());
        assert!(Tls::split("host=db password='open", &no_env()).is_err());
    }

    #[test]
    fn the_environment_fills_what_the_string_leaves_unset() {
        let env = LibpqEnv {
            sslmode: Some("require".to_owned()),
            sslrootcert: Some("system".to_owned()),
            home: None,
        };
        let (_, tls) = Tls::split("postgres://db/coord", &env).expect("split");
        assert_eq!(
            tls,
            Tls {
                mode: SslMode::Require,
                roots: Some(Roots::System)
            }
        );
        let (_, tls) = Tls::split("postgres://db/coord?sslmode=disable", &env).expect("split");
        assert_eq!(tls.mode, SslMode::Disable);
        let (_, tls) = Tls::split("postgres://db/coord", &no_env()).expect("split");
        assert_eq!(tls.mode, SslMode::Prefer, "libpq's default");
    }

    #[test]
    fn an_unknown_mode_names_the_allowed_ones() {
        let err = Tls::split("postgres://db/coord?sslmode=verify_full", &no_env())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("sslmode=verify_full"), "{err}");
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn a_root_file_that_is_missing_or_empty_is_refused_before_connecting() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        for path in [dir.path().join("missing.pem"), empty] {
            let tls = Tls {
                mode: SslMode::VerifyFull,
                roots: Some(Roots::File(path.clone())),
            };
            let err = tls.connector(None).err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn modes_map_to_what_tokio_postgres_is_told() {
        use postgres::config::SslMode as Pg;
        let mode = |mode| {
            let tls = Tls {
                mode,
                roots: Some(Roots::System),
            };
            let (pg, connector) = tls.connector(None).expect("connector");
            (pg, matches!(connector, Connector::Rustls(_)))
        };
        assert_eq!(mode(SslMode::Disable), (Pg::Disable, false));
        assert_eq!(mode(SslMode::Prefer), (Pg::Prefer, true));
        assert_eq!(mode(SslMode::Require), (Pg::Require, true));
        assert_eq!(mode(SslMode::VerifyCa), (Pg::Require, true));
        assert_eq!(mode(SslMode::VerifyFull), (Pg::Require, true));
    }
}
