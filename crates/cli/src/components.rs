//! Running the components in this process: `berth server`, `berth agent`, `berth proxy`,
//! `berth demo-app`, and the `berth probe` health-check helper.

use crate::config::Global;
use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Writes a file atomically (temp file + rename).
pub fn write_atomic(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

/// `berth server`; with `tls` (certificate and key PEM files) the API and dashboard are HTTPS.
pub fn server(g: &Global, tls: Option<(PathBuf, PathBuf)>) -> anyhow::Result<i32> {
    init_tracing();
    let state_dir = g.state_dir();
    let addr = g
        .api_addr
        .clone()
        .unwrap_or_else(|| crate::config::DEFAULT_API_ADDR.to_string());
    // The address may carry the scheme clients use (`https://127.0.0.1:7878`).
    let addr = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let tls = match tls {
        Some((cert, key)) => Some(std::sync::Arc::new(berth_server::tls_server_config(
            &cert, &key,
        )?)),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let arns = berth_model::Arns {
        region: std::env::var("BERTH_REGION").unwrap_or_else(|_| "us-east-1".into()),
        account: std::env::var("BERTH_ACCOUNT_ID").unwrap_or_else(|_| "000000000000".into()),
    };
    let config = berth_control::ControlConfig {
        state_dir: state_dir.clone(),
        arns,
        listen_host: std::env::var("BERTH_LISTEN_HOST").unwrap_or_else(|_| "127.0.0.1".into()),
    };
    let arns = config.arns.clone();
    let cp = berth_control::ControlPlane::open(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding the API address {addr}"))?;
        let local = listener.local_addr()?;
        let registry =
            berth_registry::Registry::open(state_dir.join("registry"), arns, local.to_string())
                .map_err(|e| anyhow::anyhow!("opening the image registry: {e}"))?;
        let api_addr = if tls.is_some() {
            format!("https://{local}")
        } else {
            local.to_string()
        };
        write_atomic(&state_dir.join("run/api.addr"), &api_addr)?;
        write_atomic(
            &state_dir.join("run/server.pid"),
            &std::process::id().to_string(),
        )?;
        tracing::info!(api = %local, state_dir = %state_dir.display(), "berth server listening");
        let endpoints = berth_server::Endpoints {
            api: format!("{scheme}://{local}"),
            dashboard: format!("{scheme}://{local}/dashboard"),
        };
        let cloudwatch = berth_metrics::CloudWatch::open(
            state_dir.join("cloudwatch"),
            berth_metrics::Retention::default(),
        )
        .map_err(|e| anyhow::anyhow!("opening the metrics store: {e}"))?;
        let autoscaling = berth_autoscaling::AutoScaling::open(
            state_dir.join("autoscaling"),
            cp.clone(),
            cloudwatch.clone(),
        )
        .map_err(|e| anyhow::anyhow!("opening the auto scaling state: {e}"))?;
        let secrets = open_secrets(&state_dir, &cp)?;
        let iam = open_iam(&state_dir, &secrets)?;
        let backends = berth_server::Backends {
            iam: Some(iam),
            registry: Some(registry),
            cloudwatch: Some(cloudwatch),
            autoscaling: Some(autoscaling),
            secrets: Some(secrets),
        };
        match tls {
            Some(tls) => {
                berth_server::serve_tls(cp, backends, listener, tls, endpoints, termination())
                    .await?
            }
            None => berth_server::serve(cp, backends, listener, endpoints, termination()).await?,
        }
        tracing::info!("berth server stopped");
        Ok(0)
    })
}

/// The node credential's file: `BERTH_NODE_TOKEN_FILE`, else `<state>/run/node.token`.
fn node_token_file(state_dir: &std::path::Path) -> PathBuf {
    std::env::var_os("BERTH_NODE_TOKEN_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join("run/node.token"))
}

/// Opens the identity store at `<state>/iam`. On a fresh state directory it creates the admin
/// user with the token in `BERTH_BOOTSTRAP_TOKEN` (as `berth up` does, after saving it in the
/// user's credentials file), or with a new token printed here, once. It also makes sure this
/// machine's node credential exists for the agent and the proxy.
fn open_iam(
    state_dir: &std::path::Path,
    secrets: &berth_secrets::Secrets,
) -> anyhow::Result<berth_iam::Iam> {
    let iam = berth_iam::Iam::open(state_dir.join("iam"), secrets.clone())
        .map_err(|e| anyhow::anyhow!("opening the identity store: {e}"))?;
    let given = std::env::var("BERTH_BOOTSTRAP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let from_env = given.is_some();
    if let Some(token) = iam
        .bootstrap_admin(given)
        .map_err(|e| anyhow::anyhow!("creating the admin credential: {e}"))?
    {
        if from_env {
            tracing::info!("created the admin user with the token from BERTH_BOOTSTRAP_TOKEN");
        } else {
            eprintln!(
                "berth: created the admin user. Its token is shown only this once:\n\n    {token}\n\nUse it with `berth auth login` or BERTH_TOKEN."
            );
        }
    }
    iam.ensure_node_token(&node_token_file(state_dir))
        .map_err(|e| anyhow::anyhow!("creating the node credential: {e}"))?;
    Ok(iam)
}

/// Opens Secrets Manager at `<state>/secrets`, resolves task secrets through it, and redeploys
/// the services that use a secret after it rotates.
fn open_secrets(
    state_dir: &std::path::Path,
    cp: &berth_control::ControlPlane,
) -> anyhow::Result<berth_secrets::Secrets> {
    let secrets = berth_secrets::Secrets::open(
        state_dir.join("secrets"),
        berth_secrets::MasterKeySource::from_env(),
    )
    .map_err(|e| anyhow::anyhow!("opening the secret store: {e}"))?;
    let resolver = secrets.clone();
    cp.set_secret_resolver(std::sync::Arc::new(
        move |value_from: &str, task_id: &str| {
            resolver
                .resolve_value_from(value_from, task_id)
                .map(|v| v.to_string())
                .map_err(|e| format!("{}: {e}", e.code()))
        },
    ));
    let (cp2, lookup) = (cp.clone(), secrets.clone());
    secrets.on_rotated(std::sync::Arc::new(move |arn: &str| {
        let name = lookup.name_of(arn).unwrap_or_default();
        cp2.force_deployments_using_secret(arn, &name);
    }));
    Ok(secrets)
}

pub fn agent(g: &Global, node_id: Option<String>) -> anyhow::Result<i32> {
    init_tracing();
    let state_dir = g.state_dir();
    write_atomic(
        &state_dir.join("run/agent.pid"),
        &std::process::id().to_string(),
    )?;
    let config = berth_agent::AgentConfig {
        node_id: node_id.unwrap_or_else(|| "local".into()),
        server_url: g.api_url(),
        state_dir: state_dir.join("agent"),
        host_ip: std::env::var("BERTH_HOST_IP").unwrap_or_else(|_| "127.0.0.1".into()),
        shim_exe: std::env::current_exe().context("finding the berth executable")?,
        node_token_file: Some(node_token_file(&state_dir)),
        ca_cert_pem: crate::client::ca_pem(g.ca_cert.as_deref())?,
    };
    runtime()?.block_on(async move {
        berth_agent::run(config, termination())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(0)
    })
}

pub fn proxy(g: &Global, config: Option<PathBuf>) -> anyhow::Result<i32> {
    init_tracing();
    let standalone = config.is_some();
    let state_dir = g.state_dir();
    if !standalone {
        write_atomic(
            &state_dir.join("run/proxy.pid"),
            &std::process::id().to_string(),
        )?;
        std::fs::create_dir_all(state_dir.join("proxy"))
            .context("creating the proxy's state directory")?;
    }
    let opts = berth_proxy::ProxyOptions {
        control_plane: (!standalone).then(|| g.api_url()),
        config_file: config,
        proxy_id: std::env::var("BERTH_PROXY_ID").unwrap_or_else(|_| "proxy-local".into()),
        access_log: (!standalone).then(|| state_dir.join("proxy/access.log")),
        state_dir: (!standalone).then(|| state_dir.join("proxy")),
        node_token_file: (!standalone).then(|| node_token_file(&state_dir)),
        ca_cert_pem: crate::client::ca_pem(g.ca_cert.as_deref())?,
    };
    let rt = berth_proxy::runtime()?;
    rt.block_on(async move {
        berth_proxy::run(opts, termination())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(0)
    })
}

pub fn demo_app() -> anyhow::Result<i32> {
    let opts = berth_demo_app::DemoOptions::from_env();
    runtime()?.block_on(async move {
        berth_demo_app::run_until_signal(opts).await?;
        Ok(0)
    })
}

pub fn probe(url: &str, timeout: f64) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(timeout.max(0.01)))
        .build()?;
    let status = rt.block_on(async { client.get(url).send().await.map(|r| r.status()) });
    match status {
        Ok(s) if s.is_success() || s.is_redirection() => Ok(0),
        Ok(s) => {
            eprintln!("{url}: HTTP {s}");
            Ok(1)
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            Ok(1)
        }
    }
}

/// `berth image build`: builds an OCI image and (with --tag) pushes it.
pub fn image_build(a: crate::ImageBuildArgs) -> anyhow::Result<i32> {
    use berth_registry::{AddFile, Base, BuildOptions, ImageConfig};
    let add = a
        .add
        .iter()
        .map(|s| AddFile::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = BuildOptions {
        base: Base::parse(&a.from),
        add,
        config: ImageConfig {
            entrypoint: (!a.entrypoint.is_empty()).then(|| a.entrypoint.clone()),
            cmd: (!a.cmd.is_empty()).then(|| a.cmd.clone()),
            env: a.env.clone(),
            user: a.user.clone(),
            working_dir: a.workdir.clone(),
            exposed_ports: a.expose.clone(),
            labels: Default::default(),
        },
        push: a.tag.clone(),
        layout: a.layout.clone(),
    };
    let built = berth_registry::build_image(opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = serde_json::json!({
        "manifestDigest": built.manifest_digest.to_string(),
        "configDigest": built.config_digest.to_string(),
        "layers": built.layers.len(),
        "pushed": built.pushed,
        "layout": built.layout,
    });
    if a.json {
        crate::output::json(&out);
    } else {
        println!("built {}", built.manifest_digest);
        if let Some(p) = &built.pushed {
            println!("pushed {p}");
        }
    }
    Ok(0)
}
