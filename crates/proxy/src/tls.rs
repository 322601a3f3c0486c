//! TLS termination of HTTPS listeners: each listener's certificates loaded from PEM files, the
//! one matching the client's SNI name presented (the default certificate otherwise), TLS 1.2
//! and 1.3 only, ALPN h2 and http/1.1.

use berth_model::protocol::proxy as wire;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// A listener's certificates, chosen per handshake by SNI name.
#[derive(Debug)]
struct SniResolver {
    /// In listener order; the first one valid for the SNI name is presented.
    certificates: Vec<Arc<CertifiedKey>>,
    /// Presented without SNI or when no certificate matches.
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// The first certificate whose end-entity certificate is valid for `name` (SAN DNS names,
    /// wildcards included, or IP addresses).
    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = ServerName::try_from(name).ok()?;
        self.certificates
            .iter()
            .find(|c| {
                c.end_entity_cert()
                    .ok()
                    .and_then(|der| webpki::EndEntityCert::try_from(der).ok())
                    .is_some_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
            })
            .cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.find(name))
            .or_else(|| Some(self.default.clone()))
    }
}

/// Loads one certificate: its chain and private key, checked to go together.
fn load(
    c: &wire::ListenerCertificate,
    path: &str,
    provider: &rustls::crypto::CryptoProvider,
    errors: &mut Vec<String>,
) -> Option<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(&c.cert_pem_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>());
    let chain = match chain {
        Ok(chain) if !chain.is_empty() => chain,
        Ok(_) => {
            errors.push(format!(
                "{path}.cert_pem_path: expected a PEM file with a CERTIFICATE, found none in {:?}",
                c.cert_pem_path
            ));
            return None;
        }
        Err(e) => {
            errors.push(format!(
                "{path}.cert_pem_path: expected a readable PEM certificate file, found {:?}: {e}",
                c.cert_pem_path
            ));
            return None;
        }
    };
    let key = match PrivateKeyDer::from_pem_file(&c.key_pem_path) {
        Ok(key) => key,
        Err(e) => {
            errors.push(format!(
                "{path}.key_pem_path: expected a readable PEM private key file, found {:?}: {e}",
                c.key_pem_path
            ));
            return None;
        }
    };
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            errors.push(format!(
                "{path}: expected a certificate and the private key of its public key, found {:?} and {:?}: {e}",
                c.cert_pem_path, c.key_pem_path
            ));
            None
        }
    }
}

/// Builds the TLS server config of an HTTPS listener at `path` from its certificates;
/// problems are pushed to `errors` as `path.field: expected, found`.
pub(crate) fn server_config(
    certificates: &[wire::ListenerCertificate],
    path: &str,
    errors: &mut Vec<String>,
) -> Option<Arc<rustls::ServerConfig>> {
    if certificates.is_empty() {
        errors.push(format!(
            "{path}.certificates: an HTTPS listener needs at least one certificate, found none"
        ));
        return None;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let n_errors = errors.len();
    let loaded: Vec<_> = certificates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| load(c, &format!("{path}.certificates[{i}]"), &provider, errors))
        .collect();
    if errors.len() > n_errors {
        return None;
    }
    let default = certificates.iter().position(|c| c.default).unwrap_or(0);
    let resolver = SniResolver {
        default: loaded.get(default)?.clone(),
        certificates: loaded,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    let mut config = match builder {
        Ok(b) => b
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver)),
        Err(e) => {
            errors.push(format!("{path}: TLS setup failed: {e}"));
            return None;
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Some(Arc::new(config))
}
