//! A certificate authority made for one test, and a server that speaks TLS with its certificate.

use std::path::PathBuf;
use std::sync::Arc;

use rtchat::server::Config;
use uuid::Uuid;

use super::app::{TestApp, spawn_app_with, test_config};

/// A certificate authority made for one test, and a server certificate it signed for 127.0.0.1 and
/// localhost, as PEM files in a directory of their own.
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(format!("rtchat-ca-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rtchat test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let ca = TestCa {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            ca_der: ca_cert.der().to_vec(),
            dir,
        };
        std::fs::write(&ca.ca_file, ca_cert.pem()).unwrap();
        std::fs::write(&ca.cert_file, cert.pem()).unwrap();
        std::fs::write(&ca.key_file, key.serialize_pem()).unwrap();
        ca
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone().into()).unwrap();
        rtchat::client::tls::trusting(roots).unwrap()
    }

    /// The server configuration that serves this CA's certificate.
    pub fn server_config(&self) -> Config {
        let mut config = test_config();
        config.tls_cert = Some(self.cert_file.clone());
        config.tls_key = Some(self.key_file.clone());
        config
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server that terminates TLS with a certificate of `ca`, and clients that trust it.
pub async fn spawn_tls_app(ca: &TestCa) -> TestApp {
    let mut app = spawn_app_with(ca.server_config()).await;
    app.trust(ca);
    app
}
