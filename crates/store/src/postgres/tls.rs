//! TLS for PostgreSQL connections, configured from the connection URL the way
//! libpq does it.
//!
//! - `sslmode` is `disable`, `prefer` (the default, as in libpq), `require`,
//!   `verify-ca` or `verify-full`. `prefer` and `require` encrypt without
//!   checking who answers (libpq's meaning): they stop passive eavesdropping,
//!   not an active man in the middle. `verify-ca` checks the certificate chain,
//!   `verify-full` the chain and the host name.
//! - `sslrootcert` names a PEM file of trusted roots. Without it the verifying
//!   modes trust the Mozilla root set compiled into the binary (`webpki-roots`);
//!   `sslrootcert=system` says so explicitly and, as in libpq, makes
//!   `verify-full` the default and anything weaker an error. As in libpq, a root
//!   file given with `prefer` or `require` makes them check the chain.
//! - Client certificates (`sslcert`, `sslkey`) are refused with a clear error
//!   rather than ignored.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require` and rejects
//! unknown parameters, so these are taken out of the URL here ([`split_url`])
//! and the rest goes to its parser unchanged.
//!
//! rustls runs on the ring provider, passed explicitly to every config: the
//! process-wide default provider is ambiguous (and rustls panics) when another
//! crate in the build enables aws-lc-rs as well.

use std::{path::PathBuf, sync::Arc};

use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::WebPkiSupportedAlgorithms,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// How much TLS a connection insists on (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain otherwise; the server is not checked.
    Prefer,
    /// TLS or no connection; the server is not checked.
    Require,
    /// TLS, and the server's certificate chains to a trusted root.
    VerifyCa,
    /// `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // `allow` (plain first, TLS only if refused) has no use here.
            _ => {
                return Err(invalid(
                    "sslmode must be disable, prefer, require, verify-ca or verify-full".into(),
                ));
            }
        })
    }
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// `sslrootcert=system`: the compiled-in Mozilla roots.
    System,
    /// A PEM file.
    File(PathBuf),
}

/// The TLS parameters taken out of a connection URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// The effective mode (defaults applied).
    pub(crate) mode: SslMode,
    /// `sslrootcert`, when given.
    pub(crate) root_cert: Option<RootCert>,
}

/// Parameters handled here and never passed to tokio-postgres.
const SSL_MODE: &str = "sslmode";
const SSL_ROOT_CERT: &str = "sslrootcert";
/// Parameters for client certificates, which are not supported.
const CLIENT_CERT: [&str; 4] = ["sslcert", "sslkey", "sslpassword", "sslcertmode"];

fn invalid(problem: String) -> StoreError {
    StoreError::InvalidInput {
        field: "store.url",
        problem,
    }
}

/// Splits a connection string (a `postgres://` URL or libpq's `key=value`
/// form) into the string tokio-postgres should parse and the TLS settings.
/// Errors name the parameter, never the string (it holds a password).
pub(crate) fn split_url(url: &str) -> Result<(String, TlsSettings), StoreError> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> Result<bool, StoreError> {
        if key == SSL_MODE {
            mode = Some(SslMode::parse(&value)?);
        } else if key == SSL_ROOT_CERT {
            root = Some(if value == "system" {
                RootCert::System
            } else {
                RootCert::File(PathBuf::from(value))
            });
        } else if CLIENT_CERT.contains(&key) {
            return Err(invalid(format!(
                "{key}: client certificates are not supported; authenticate with a password"
            )));
        } else {
            return Ok(false);
        }
        Ok(true)
    };
    let rest = if is_url(url) {
        strip_url_params(url, &mut take)?
    } else {
        strip_keyword_params(url, &mut take)?
    };
    let mode = match (mode, &root) {
        (Some(mode), _) => mode,
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (None, _) => SslMode::Prefer,
    };
    if root == Some(RootCert::System) && mode != SslMode::VerifyFull && mode != SslMode::Disable {
        return Err(invalid(
            "sslrootcert=system needs sslmode=verify-full (as in libpq)".into(),
        ));
    }
    Ok((
        rest,
        TlsSettings {
            mode,
            root_cert: root,
        },
    ))
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL without the parameters `take` claims. Mirrors tokio-postgres'
/// reading of a URL: credentials end at the first `@`, the query starts at the
/// first `?` after them.
fn strip_url_params(
    url: &str,
    take: &mut impl FnMut(&str, String) -> Result<bool, StoreError>,
) -> Result<String, StoreError> {
    let after_creds = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_creds..].find('?').map(|q| q + after_creds) else {
        return Ok(url.to_owned());
    };
    let mut kept = Vec::new();
    for pair in url[q + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_decoded = percent_decode(key).map_err(|()| {
            invalid("a parameter name in the URL's query is not valid percent-encoded UTF-8".into())
        })?;
        let value = if is_ours(&key_decoded) {
            percent_decode(value).map_err(|()| {
                invalid(format!(
                    "{key_decoded}: the value is not valid percent-encoded UTF-8"
                ))
            })?
        } else {
            String::new()
        };
        if !take(&key_decoded, value)? {
            kept.push(pair);
        }
    }
    let mut out = url[..q].to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Ok(out)
}

fn is_ours(key: &str) -> bool {
    key == SSL_MODE || key == SSL_ROOT_CERT || CLIENT_CERT.contains(&key)
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The `key=value` string without the parameters `take` claims. libpq's
/// syntax: pairs separated by whitespace, optional spaces around `=`, values
/// bare or in single quotes, `\` escaping the next character.
fn strip_keyword_params(
    s: &str,
    take: &mut impl FnMut(&str, String) -> Result<bool, StoreError>,
) -> Result<String, StoreError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while chars.get(i).is_some_and(|(_, c)| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        let Some(&(start, _)) = chars.get(i) else {
            break;
        };
        let mut key = String::new();
        while let Some(&(_, c)) = chars.get(i) {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            i += 1;
        }
        i = skip_ws(i);
        if chars.get(i).map(|(_, c)| *c) != Some('=') {
            return Err(invalid(format!(
                "connection string: `{key}` is not followed by `=`"
            )));
        }
        i = skip_ws(i + 1);
        let mut value = String::new();
        if chars.get(i).map(|(_, c)| *c) == Some('\'') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(invalid(format!(
                            "connection string: the quoted value of `{key}` is not closed"
                        )));
                    }
                    Some((_, '\'')) => {
                        i += 1;
                        break;
                    }
                    Some((_, '\\')) => {
                        if let Some(&(_, c)) = chars.get(i + 1) {
                            value.push(c);
                        }
                        i += 2;
                    }
                    Some(&(_, c)) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&(_, c)) = chars.get(i) {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    if let Some(&(_, c)) = chars.get(i + 1) {
                        value.push(c);
                    }
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        let end = chars.get(i).map_or(s.len(), |(at, _)| *at);
        if !take(&key, value)? {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&s[start..end]);
        }
    }
    Ok(out)
}

/// The tokio-postgres mode for the handshake; the checks beyond it are the
/// connector's.
pub(crate) fn driver_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as Driver;
    match mode {
        SslMode::Disable => Driver::Disable,
        SslMode::Prefer => Driver::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
    }
}

/// The rustls connector for `settings`, or `None` for `disable`. Reads the
/// root file now, so a missing or empty one fails at startup.
pub(crate) fn connector(settings: &TlsSettings) -> Result<Option<MakeRustlsConnect>, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Database(format!("TLS setup: {e}")))?;
    let roots = || -> Result<Arc<RootCertStore>, StoreError> {
        match &settings.root_cert {
            Some(RootCert::File(path)) => load_roots(path).map(Arc::new),
            Some(RootCert::System) | None => Ok(Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })),
        }
    };
    let chain_only = |roots: Arc<RootCertStore>| -> Result<Arc<ChainOnly>, StoreError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| invalid(format!("sslrootcert: {e}")))?;
        Ok(Arc::new(ChainOnly(inner)))
    };
    let has_root_file = matches!(settings.root_cert, Some(RootCert::File(_)));
    let config = match settings.mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require if !has_root_file => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(
                provider.signature_verification_algorithms,
            ))),
        SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => builder
            .dangerous()
            .with_custom_certificate_verifier(chain_only(roots()?)?),
        SslMode::VerifyFull => builder.with_root_certificates(roots()?),
    };
    Ok(Some(MakeRustlsConnect::new(config.with_no_client_auth())))
}

fn load_roots(path: &PathBuf) -> Result<RootCertStore, StoreError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| invalid(format!("sslrootcert: cannot read `{shown}`: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("sslrootcert: `{shown}`: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("sslrootcert: `{shown}`: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!(
            "sslrootcert: `{shown}` holds no PEM certificate"
        )));
    }
    Ok(roots)
}

/// `prefer` and `require` without a root file: any certificate is accepted
/// (libpq's behaviour), but the handshake signatures are still checked, so
/// the session key is bound to the certificate the server presented.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI check, except that a certificate for another
/// name is accepted. rustls checks the name last, after the chain, so a name
/// error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
