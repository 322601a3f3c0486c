//! `berth cert`: a local certificate authority for development, and server certificates signed
//! by it (for `berth server --tls-cert` and the load balancer's HTTPS listeners).

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Subcommands of `berth cert`.
#[derive(clap::Subcommand)]
pub enum CertCommand {
    /// Make a local certificate authority: DIR/ca.pem and DIR/ca-key.pem (mode 0600).
    #[command(
        after_help = "Examples:\n  berth cert ca --out ~/.berth-ca\n  aws ecs list-clusters --endpoint-url https://127.0.0.1:7878 --ca-bundle ~/.berth-ca/ca.pem"
    )]
    Ca {
        /// Directory to write the CA into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing CA in DIR.
        #[arg(long)]
        force: bool,
    },
    /// Issue a server certificate signed by a CA made with `berth cert ca`:
    /// DIR/<first name>.pem and DIR/<first name>-key.pem (mode 0600).
    #[command(
        after_help = "Examples:\n  berth cert issue --ca ~/.berth-ca --name web.local --name 127.0.0.1 --out certs/\n  berth server --tls-cert certs/web.local.pem --tls-key certs/web.local-key.pem"
    )]
    Issue {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long)]
        ca: PathBuf,
        /// A DNS name or IP address the certificate is for (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Directory to write the certificate and key into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
}

/// Runs `berth cert ...`.
pub fn run(command: CertCommand) -> anyhow::Result<i32> {
    match command {
        CertCommand::Ca { out, force } => {
            let written = make_ca(&out, force)?;
            println!("CA certificate {}", written.0.display());
            println!("CA key         {}", written.1.display());
        }
        CertCommand::Issue {
            ca,
            names,
            out,
            days,
        } => {
            let written = issue(&ca, &names, &out, days)?;
            println!("certificate {}", written.0.display());
            println!("key         {}", written.1.display());
        }
    }
    Ok(0)
}

/// The CA's subject: fixed text plus a short fingerprint of its key, so the same key always
/// yields the same name (how `issue` rebuilds the issuer from ca-key.pem alone).
fn ca_params(key: &KeyPair) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "berth development");
    dn.push(
        DnType::CommonName,
        format!("berth local CA {:016x}", fnv1a(key.public_key_raw())),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    params.serial_number = Some(SerialNumber::from(1u64));
    Ok(params)
}

/// Writes DIR/ca.pem and DIR/ca-key.pem; returns their paths.
pub fn make_ca(out: &Path, force: bool) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert_path, key_path) = (out.join("ca.pem"), out.join("ca-key.pem"));
    if key_path.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace the CA (certificates it issued stop being trusted)",
            key_path.display()
        );
    }
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = ca_params(&key)?
        .self_signed(&key)
        .context("signing the CA certificate")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_file(&key_path, &key.serialize_pem(), 0o600)?;
    write_file(&cert_path, &cert.pem(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Reads the CA in `ca_dir` back as an issuer.
fn load_ca(ca_dir: &Path) -> anyhow::Result<(Certificate, KeyPair)> {
    let key_path = ca_dir.join("ca-key.pem");
    let pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading the CA key {}", key_path.display()))?;
    let key = KeyPair::from_pem(&pem)
        .with_context(|| format!("{}: expected a PEM private key", key_path.display()))?;
    let cert = ca_params(&key)?
        .self_signed(&key)
        .context("rebuilding the CA certificate")?;
    Ok((cert, key))
}

/// Issues a server certificate for `names` (DNS names and IP addresses) signed by the CA in
/// `ca_dir`; writes `<out>/<first name>.pem` and `<out>/<first name>-key.pem`.
pub fn issue(
    ca_dir: &Path,
    names: &[String],
    out: &Path,
    days: u32,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let Some(first) = names.first() else {
        bail!("--name: at least one DNS name or IP address was expected, found none");
    };
    let bad: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.is_empty() || n.contains(['/', ' ', ':']) && n.parse::<std::net::IpAddr>().is_err()
        })
        .collect();
    if !bad.is_empty() {
        bail!("--name: DNS names or IP addresses were expected, found {bad:?}");
    }
    let (ca_cert, ca_key) = load_ca(ca_dir)?;
    let mut params = CertificateParams::new(names.to_vec()).context("--name")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    params.serial_number = Some(SerialNumber::from(now.as_nanos() as u64));
    let start = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(now.as_secs());
    params.not_before = start - std::time::Duration::from_secs(3600);
    params.not_after = start + std::time::Duration::from_secs(u64::from(days.max(1)) * 86_400);
    let key = KeyPair::generate().context("generating the server key")?;
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .context("signing the server certificate")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (cert_path, key_path) = (
        out.join(format!("{first}.pem")),
        out.join(format!("{first}-key.pem")),
    );
    write_file(&key_path, &key.serialize_pem(), 0o600)?;
    write_file(&cert_path, &cert.pem(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Writes `contents` to `path` with `mode` (replacing the file, so a key never sits readable).
fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn this_year() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_signs_with_the_ca_and_keeps_keys_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (ca, ca_key) = make_ca(dir.path(), false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca_key), 0o600);
        assert!(
            make_ca(dir.path(), false).is_err(),
            "an existing CA is kept"
        );
        let names = vec!["web.local".to_string(), "127.0.0.1".to_string()];
        let (cert, key) = issue(dir.path(), &names, &dir.path().join("out"), 30).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert!(cert.ends_with("out/web.local.pem"));
        let ca_pem = std::fs::read_to_string(&ca).unwrap();
        let leaf_pem = std::fs::read_to_string(&cert).unwrap();
        assert!(ca_pem.contains("BEGIN CERTIFICATE") && leaf_pem.contains("BEGIN CERTIFICATE"));
        assert!(issue(&dir.path().join("none"), &names, dir.path(), 30).is_err());
        assert!(issue(dir.path(), &[], dir.path(), 30).is_err());
        assert!(issue(dir.path(), &["a b".into()], dir.path(), 30).is_err());
    }
}
