//! In-process HTTPS listener tests: certificates chosen by SNI (default otherwise), TLS 1.2/1.3
//! only, ALPN, forwarded headers over TLS, the HTTP→HTTPS redirect, and bad certificate files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use berth_model::protocol::proxy as w;
use berth_proxy::{Proxy, ProxyOptions, Tuning};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTTPS_LISTENER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/test/0123456789abcdef/2";

/// A CA and two server certificates (`a.test` + 127.0.0.1, and `b.test`) as PEM files.
struct Certs {
    ca: CertificateDer<'static>,
    a: (CertificateDer<'static>, w::ListenerCertificate),
    b: (CertificateDer<'static>, w::ListenerCertificate),
}

fn make_certs(dir: &Path) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str, sans: &[&str], default: bool| {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (
            cert.der().clone(),
            w::ListenerCertificate {
                cert_pem_path: cert_path.display().to_string(),
                key_pem_path: key_path.display().to_string(),
                default,
            },
        )
    };
    Certs {
        a: leaf("a", &["a.test", "127.0.0.1"], true),
        b: leaf("b", &["b.test", "*.b.test"], false),
        ca: ca.der().clone(),
    }
}

/// An HTTP listener redirecting to HTTPS, and an HTTPS listener with `certificates` forwarding
/// to `backend`.
fn https_config(certificates: Vec<w::ListenerCertificate>, backend: &Backend) -> w::ProxyConfig {
    let redirect = w::Action::Redirect {
        protocol: Some("HTTPS".into()),
        host: None,
        port: Some("443".into()),
        path: None,
        query: None,
        status_code: "HTTP_301".into(),
    };
    let mut cfg = config(
        1,
        "127.0.0.1:0",
        vec![],
        redirect,
        vec![group("web", &[backend])],
    );
    let mut https = cfg.listeners[0].clone();
    https.arn = HTTPS_LISTENER.into();
    // Binds must be unique: a port that was just free (the first listener keeps :0).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    https.bind = free.local_addr().unwrap().to_string();
    drop(free);
    https.protocol = "HTTPS".into();
    https.default_actions = vec![forward(&[("web", 1)])];
    https.certificates = certificates;
    cfg.listeners.push(https);
    cfg
}

async fn start_proxy(cfg: &w::ProxyConfig, dir: &Path) -> Result<Proxy, String> {
    let path = dir.join("proxy.json");
    std::fs::write(&path, serde_json::to_vec(cfg).unwrap()).unwrap();
    let opts = ProxyOptions {
        config_file: Some(path),
        proxy_id: "test".into(),
        ..Default::default()
    };
    Proxy::start(opts, Tuning::default())
        .await
        .map_err(|e| e.to_string())
}

fn client_config(
    ca: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Handshakes as `name`; returns the stream (the presented certificate is in its session).
async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .unwrap()
}

fn presented(s: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn https_listener_picks_the_certificate_by_sni_and_forwards_as_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let web = backend("web").await;
    let cfg = https_config(vec![certs.a.1.clone(), certs.b.1.clone()], &web);
    let proxy = start_proxy(&cfg, dir.path()).await.unwrap();
    let addr = proxy.listener_addr(HTTPS_LISTENER).unwrap();
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];

    // Each SNI name gets its own certificate (the client also checks it names the host).
    let tls = client_config(&certs.ca, &both, &[b"http/1.1"]);
    for (name, expected) in [
        ("a.test", &certs.a.0),
        ("b.test", &certs.b.0),
        ("x.b.test", &certs.b.0),
    ] {
        let s = connect(addr, tls.clone(), name).await.unwrap();
        assert!(&presented(&s) == expected, "{name}: wrong certificate");
    }
    // No SNI (clients send none for an IP address) gets the default certificate.
    let s = connect(addr, tls.clone(), "127.0.0.1").await.unwrap();
    assert!(
        presented(&s) == certs.a.0,
        "no SNI: the default certificate"
    );
    // An unknown name also gets the default, which the client refuses for that name.
    let err = connect(addr, tls.clone(), "c.test").await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");

    // TLS 1.2 alone is accepted.
    let tls12 = client_config(&certs.ca, &[&rustls::version::TLS12], &[]);
    let s = connect(addr, tls12, "b.test").await.unwrap();
    assert_eq!(
        s.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    // ALPN: h2 is offered and chosen; the request is forwarded with X-Forwarded-Proto https.
    let h2 = client_config(&certs.ca, &both, &[b"h2", b"http/1.1"]);
    let s = connect(addr, h2, "a.test").await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(s),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://a.test/headers")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).to_lowercase();
    assert!(body.contains("x-forwarded-proto: https"), "{body}");
    assert!(
        body.contains(&format!("x-forwarded-port: {}", addr.port())),
        "{body}"
    );
    assert_eq!(web.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_listener_refuses_tls_1_1_and_http_redirects_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let web = backend("web").await;
    let cfg = https_config(vec![certs.a.1.clone()], &web);
    let proxy = start_proxy(&cfg, dir.path()).await.unwrap();
    let https = proxy.listener_addr(HTTPS_LISTENER).unwrap();
    let http = proxy.listener_addr(LISTENER).unwrap();

    // A ClientHello offering only TLS 1.1 (no supported_versions extension) gets an alert.
    let mut hello = vec![0x03, 0x02];
    hello.extend([7u8; 32]); // random
    hello.push(0); // session id
    hello.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1 cipher suites
    hello.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0, 0, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
    record.extend(handshake);
    let mut s = TcpStream::connect(https).await.unwrap();
    s.write_all(&record).await.unwrap();
    let mut answer = [0u8; 7];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer[0], 0x15, "an alert record, found {answer:?}");
    assert_eq!(answer[5], 2, "a fatal alert, found {answer:?}");
    assert_eq!(web.hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // The HTTP listener answers with ALB's redirect to https (port 443 is left out).
    let cl = client();
    let (status, _, _, headers) = get(
        &cl,
        http,
        "/shop/cart?item=1",
        &[("host", "www.example.com")],
    )
    .await;
    assert_eq!(status, 301);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://www.example.com/shop/cart?item=1"
    );
}

#[tokio::test]
async fn https_listener_without_usable_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let web = backend("web").await;
    let missing = w::ListenerCertificate {
        cert_pem_path: dir.path().join("nope.pem").display().to_string(),
        ..certs.a.1.clone()
    };
    let swapped = w::ListenerCertificate {
        key_pem_path: certs.b.1.key_pem_path.clone(),
        ..certs.a.1.clone()
    };
    let err = start_proxy(&https_config(vec![missing, swapped], &web), dir.path())
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("listeners[1].certificates[0].cert_pem_path: expected a readable PEM"),
        "{err}"
    );
    assert!(
        err.contains("listeners[1].certificates[1]: expected a certificate and the private key"),
        "{err}"
    );
    let err = start_proxy(&https_config(vec![], &web), dir.path())
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("listeners[1].certificates: an HTTPS listener needs at least one certificate"),
        "{err}"
    );
}
