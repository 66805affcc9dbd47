//! The client's TLS for `https://` and `wss://`: rustls with the ring provider, trusting the
//! system's certificate authorities plus, for a team's private CA, the certificates of `--ca-cert`
//! (or `RTCHAT_CA_CERT`). One configuration serves both the HTTP client and the WebSocket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::CliError;

/// What the client trusts: the system's roots, and the certificates of one extra PEM file.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, CliError> {
    let mut roots = RootCertStore::empty();
    // A file the system store cannot parse is skipped: one bad certificate in /etc/ssl/certs should
    // not stop a client that trusts the others.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = extra_ca {
        for cert in read_certificates(path)? {
            roots.add(cert).map_err(|e| {
                CliError::Usage(format!(
                    "--ca-cert {}: not a CA certificate: {e}",
                    path.display()
                ))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(CliError::Local(
            "no trusted certificate authorities: install the system's CA certificates \
             (ca-certificates) or give --ca-cert FILE"
                .into(),
        ));
    }
    trusting(roots).map_err(|e| CliError::Local(format!("TLS: {e}")))
}

/// A client configuration (ring, TLS 1.2 and 1.3) that trusts `roots` and nothing else: the one
/// TLS setup of the client, the load generator and the tests.
pub fn trusting(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Makes ring the process's rustls provider: reqwest builds its (unused) TLS setup even for an
/// `http://` server and would otherwise look for aws-lc-rs, which is not built.
pub fn install_provider() {
    // An error only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificates of a PEM file (a CA bundle may hold several).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, CliError> {
    let unreadable =
        |e: &dyn std::fmt::Display| CliError::Usage(format!("--ca-cert {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(unreadable(&"no PEM certificate in the file"));
    }
    Ok(certs)
}

/// What went wrong, in the user's terms, when a TLS error is somewhere in `error`'s causes.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        // io::Error's `source` skips the error it wraps (rustls' is wrapped, twice over by hyper).
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

fn describe(error: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its TLS certificate is not signed by an authority this machine trusts \
             (for a private CA, give --ca-cert FILE)"
                .into()
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "its TLS certificate is for another name than the one in --server".into(),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its TLS certificate has expired".into(),
        Error::InvalidMessage(_) => "it does not answer in TLS (is it http://?)".into(),
        other => format!("TLS: {other}"),
    }
}

/// A CA file as given on the command line, made absolute so that a saved login still finds it when
/// `rtchat` runs from another directory.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether the server at `base` (an `http://` URL) answers in TLS: a plain HTTP request to a TLS
/// port is answered with a TLS alert (or handshake) record, whose first byte is 0x15 (or 0x16).
pub async fn speaks_tls(base: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((host, port)) = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?)))
    else {
        return false;
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .ok()?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: rtchat\r\n\r\n")
            .await
            .ok()?;
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.ok()?;
        Some(matches!(first[0], 0x15 | 0x16))
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
