//! Where things live: the state directory and the API address, from flags, environment or defaults,
//! found the same way by every command.

use clap::Args;
use std::path::PathBuf;

/// Default API address.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7878";

/// Options every command takes.
#[derive(Args, Clone, Debug)]
pub struct Global {
    /// State directory [default: $XDG_STATE_HOME/berth, ~/.local/state/berth, or /var/lib/berth].
    #[arg(long, env = "BERTH_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// API address of the server [default: the address the running server wrote to
    /// <state-dir>/run/api.addr, else 127.0.0.1:7878].
    #[arg(long, env = "BERTH_API_ADDR", global = true)]
    pub api_addr: Option<String>,
    /// Cluster the command works on.
    #[arg(long, env = "BERTH_CLUSTER", global = true, default_value = "default")]
    pub cluster: String,
    /// CA certificate (PEM) to trust for an https:// API address, e.g. one made by `berth cert ca`.
    #[arg(long, env = "BERTH_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Bearer token for the API [default: the one `berth up` or `berth auth login` saved in
    /// the credentials file for this API address].
    #[arg(long, env = "BERTH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Output format: table or json.
    #[arg(long, short = 'o', global = true, default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

impl Global {
    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("berth");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".local/state/berth");
        }
        PathBuf::from("/var/lib/berth")
    }

    /// Where the running server says it listens.
    pub fn addr_file(&self) -> PathBuf {
        self.state_dir().join("run/api.addr")
    }

    /// The API address: flag/env, else the running server's address file, else the default.
    pub fn api_addr(&self) -> String {
        if let Some(a) = &self.api_addr {
            return a.clone();
        }
        if let Ok(a) = std::fs::read_to_string(self.addr_file()) {
            let a = a.trim();
            if !a.is_empty() {
                return a.to_string();
            }
        }
        DEFAULT_API_ADDR.to_string()
    }

    /// Base URL of the API (`http://` unless the address names its scheme, e.g. `https://`).
    pub fn api_url(&self) -> String {
        let addr = self.api_addr();
        if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        }
    }

    pub fn json(&self) -> bool {
        self.output == "json"
    }

    /// The bearer token: `--token`/`BERTH_TOKEN`, else the credentials file's for this API.
    pub fn bearer_token(&self) -> Option<String> {
        if let Some(t) = self.token.as_ref().filter(|t| !t.is_empty()) {
            return Some(t.clone());
        }
        credentials::load().get(&self.api_url()).cloned()
    }
}

/// The client's credentials file: bearer tokens by API URL, JSON, mode 0600, at
/// `$BERTH_CONFIG_DIR/credentials`, else `$XDG_CONFIG_HOME/berth/credentials`, else
/// `~/.config/berth/credentials`. Like `~/.aws/credentials`, it belongs to the user, not to the
/// server's state directory (which keeps only hashes).
pub mod credentials {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    pub fn path() -> PathBuf {
        if let Some(d) = std::env::var_os("BERTH_CONFIG_DIR").filter(|v| !v.is_empty()) {
            return PathBuf::from(d).join("credentials");
        }
        if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("berth/credentials");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".config/berth/credentials");
        }
        PathBuf::from("/root/.config/berth/credentials")
    }

    pub fn load() -> BTreeMap<String, String> {
        std::fs::read(path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saves `token` for `api_url` (atomically, mode 0600).
    pub fn save(api_url: &str, token: &str) -> anyhow::Result<PathBuf> {
        use anyhow::Context;
        let mut all = load();
        all.insert(api_url.to_string(), token.to_string());
        let p = path();
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        berth_secrets::write_private(&p, serde_json::to_string_pretty(&all)?.as_bytes())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        Ok(p)
    }
}
