//! The `berth` binary: every component (server, agent, proxy) and the CLI, dispatched by subcommand.

/// mimalloc (see `alloc.rs`).
#[global_allocator]
static GLOBAL: alloc::Mimalloc = alloc::Mimalloc;

// The one place of the binary with unsafe code: a global allocator is an unsafe trait.
#[allow(unsafe_code)]
mod alloc;
mod client;
mod client_elb;
mod cmd_apply;
mod cmd_auth;
mod cmd_cert;
mod cmd_deploy;
mod cmd_ecs;
mod cmd_up;
mod components;
mod config;
mod output;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit code when the command itself failed (server refused, invalid input).
pub const EXIT_FAILED: i32 = 1;
/// Exit code when the server cannot be reached.
pub const EXIT_UNREACHABLE: i32 = 3;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "ECS/Fargate's operating model on your own machines",
    after_help = "Examples:\n  berth up examples/shop        start a cluster here and deploy the example stack\n  berth services                list services\n  berth logs web -f             follow a service's logs\n  berth scale web 4             change a service's desired count\n  aws ecs list-services --endpoint-url http://127.0.0.1:7878\n\nExit codes: 0 success, 1 failed (refused, invalid input), 2 bad usage, 3 server unreachable."
)]
struct Cli {
    #[command(flatten)]
    global: config::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a single-node cluster (server, agent, proxy) and apply the stack in DIR.
    #[command(
        after_help = "Examples:\n  berth up                  apply ./berth.yaml, stay in the foreground\n  berth up -d examples/shop start detached"
    )]
    Up {
        /// Directory holding berth.yaml (or a stack file path).
        dir: Option<PathBuf>,
        /// Detach: start the components in the background and return.
        #[arg(short, long)]
        detach: bool,
    },
    /// Stop the cluster started by `berth up`: tasks, proxy, agent and server.
    Down,
    /// Endpoints and health of the components.
    Status,
    /// Show the plan for a stack file and apply it.
    #[command(
        after_help = "Examples:\n  berth apply examples/shop/berth.yaml\n  berth apply --output json berth.yaml"
    )]
    Apply {
        /// Stack file or a directory holding berth.yaml.
        file: Option<PathBuf>,
    },
    /// Show the plan for a stack file without applying it.
    Diff { file: Option<PathBuf> },
    /// List services.
    Services,
    /// List tasks, optionally of one service.
    Tasks {
        service: Option<String>,
        /// Include stopped tasks.
        #[arg(long)]
        all: bool,
    },
    /// Describe a service, task or task definition (JSON as ECS returns it).
    Describe {
        /// service, task or task-definition
        kind: String,
        name: String,
    },
    /// A service's logs, merged over its tasks.
    Logs {
        service: String,
        /// Keep following new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only lines from the last N seconds.
        #[arg(long)]
        since: Option<u64>,
    },
    /// Set a service's desired count.
    Scale { service: String, count: u32 },
    /// Stop a task (its service starts a replacement).
    StopTask {
        task: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List task definition revisions.
    TaskDefinitions { family: Option<String> },
    /// A service's events, newest first.
    Events {
        service: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Start a deployment of a service and (with --wait) wait until it is stable or failed.
    #[command(
        after_help = "Examples:\n  berth deploy web --image registry.local/web:abc123 --wait\n  berth deploy web --env DEMO_VERSION=v2 --wait\n  berth deploy web --revision 3\n  berth deploy web --force\n\nWith --wait: exit 0 once the service is stable, 1 when the deployment failed or rolled back."
    )]
    Deploy {
        service: String,
        /// New image for the container (registers a new task definition revision).
        #[arg(long)]
        image: Option<String>,
        /// Container the --image/--env applies to (default: the first).
        #[arg(long)]
        container: Option<String>,
        /// Set an environment variable (NAME=VALUE), registering a new revision.
        #[arg(long = "env")]
        env: Vec<String>,
        /// Deploy this revision of the service's task definition family.
        #[arg(long)]
        revision: Option<u32>,
        /// Replace every task with the same task definition.
        #[arg(long)]
        force: bool,
        /// Wait for the service to be stable (exit 0) or the deployment to fail (exit 1).
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Roll a service back to its previous successful revision (or --to REVISION).
    Rollback {
        service: String,
        #[arg(long)]
        to: Option<u32>,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// A service's deployment history: who, what, when, outcome.
    Deployments { service: String },
    /// Users, access keys, bearer tokens and policies (IAM).
    #[command(subcommand)]
    Auth(cmd_auth::AuthCommand),
    /// The audit log: every change and every denied request, newest first.
    Audit {
        /// Only this user's calls.
        #[arg(long)]
        user: Option<String>,
        /// Only this operation (e.g. UpdateService).
        #[arg(long)]
        action: Option<String>,
        /// Only the last N seconds.
        #[arg(long)]
        since: Option<u64>,
        /// At most this many events (1-50).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Build OCI images without a Docker engine.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Run the control plane (API, store, scheduler).
    #[command(
        after_help = "Examples:\n  berth server\n  berth server --tls-cert certs/web.local.pem --tls-key certs/web.local-key.pem   (serve https://)"
    )]
    Server {
        /// PEM certificate (chain) to serve the API and dashboard over HTTPS (TLS 1.2/1.3).
        #[arg(long, env = "BERTH_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "BERTH_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Development certificates: a local CA and server certificates it signs.
    #[command(subcommand)]
    Cert(cmd_cert::CertCommand),
    /// Run the node agent.
    Agent {
        /// Node id (default: the host name).
        #[arg(long)]
        node_id: Option<String>,
    },
    /// Run the proxy (load balancer), fed by the server or by a static config file.
    Proxy {
        /// Static ProxyConfig JSON file (standalone mode, no server).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The built-in demo HTTP app (configured by PORT and DEMO_* variables).
    DemoApp,
    /// GET a URL; exit 0 on a 2xx/3xx answer (for health checks).
    Probe {
        url: String,
        #[arg(long, default_value_t = 2.0)]
        timeout: f64,
    },
    /// Internal: the per-container shim the agent starts.
    #[command(hide = true, disable_help_flag = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build an image from a base (rootfs dir, tarball or `scratch`) plus files, and push it.
    #[command(
        after_help = "Examples:\n  berth image build --from rootfs/ --add app:/usr/local/bin/app --entrypoint /usr/local/bin/app --tag 127.0.0.1:7878/web:$(git rev-parse --short HEAD)\n  berth image build --from scratch --add ./static:/bin/hello --cmd /bin/hello --tag 127.0.0.1:7878/hello:latest"
    )]
    Build(ImageBuildArgs),
}

/// Options of `berth image build`.
#[derive(clap::Args)]
pub struct ImageBuildArgs {
    /// Base: a root filesystem directory, a tarball, or `scratch`.
    #[arg(long, default_value = "scratch")]
    pub from: String,
    /// Add a file or directory: SRC:DEST (repeatable).
    #[arg(long)]
    pub add: Vec<String>,
    /// One ENTRYPOINT argument (repeat for more).
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Vec<String>,
    /// One CMD argument (repeat for more).
    #[arg(long, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub workdir: Option<String>,
    /// Exposed port, e.g. 8080/tcp (repeatable).
    #[arg(long)]
    pub expose: Vec<String>,
    /// Push to host:port/repo:tag (HTTPS when it is the https:// API's address, else plain HTTP).
    #[arg(long)]
    pub tag: Option<String>,
    /// Also write the OCI image layout to this directory.
    #[arg(long)]
    pub layout: Option<PathBuf>,
    #[arg(skip)]
    pub json: bool,
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let unreachable = e
                .chain()
                .any(|c| c.downcast_ref::<client::Unreachable>().is_some());
            eprintln!("error: {e:#}");
            if unreachable {
                EXIT_UNREACHABLE
            } else {
                EXIT_FAILED
            }
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = cli.global;
    if let Some(ca) = &g.ca_cert {
        client::trust_ca(ca.clone());
    }
    // berth's registry is served by the API: image pushes and pulls to it use the API's scheme.
    if matches!(cli.command, Command::Agent { .. } | Command::Image(_)) {
        if let Some(host) = g.api_url().strip_prefix("https://") {
            berth_registry::use_https(
                host.trim_end_matches('/'),
                client::ca_pem(g.ca_cert.as_deref())?,
            )?;
        }
    }
    let is_component = matches!(
        cli.command,
        Command::Server { .. }
            | Command::Agent { .. }
            | Command::Proxy { .. }
            | Command::Shim { .. }
            | Command::DemoApp
            | Command::Probe { .. }
    );
    if !is_component {
        if let Some(token) = g.bearer_token() {
            client::use_token(token);
        }
    }
    match cli.command {
        Command::Shim { args } => Ok(berth_agent::shim_main(args)),
        Command::Server { tls_cert, tls_key } => components::server(&g, tls_cert.zip(tls_key)),
        Command::Cert(c) => cmd_cert::run(c),
        Command::Image(ImageCommand::Build(mut a)) => {
            a.json = g.json();
            components::image_build(a)
        }
        Command::Agent { node_id } => components::agent(&g, node_id),
        Command::Proxy { config } => components::proxy(&g, config),
        Command::DemoApp => components::demo_app(),
        Command::Probe { url, timeout } => components::probe(&url, timeout),
        Command::Up { dir, detach } => cmd_up::up(&g, dir, detach),
        Command::Down => cmd_up::down(&g),
        Command::Status => cmd_up::status(&g),
        Command::Apply { file } => cmd_apply::apply(&g, file, true),
        Command::Diff { file } => cmd_apply::apply(&g, file, false),
        Command::Services => cmd_ecs::services(&g),
        Command::Tasks { service, all } => cmd_ecs::tasks(&g, service, all),
        Command::Describe { kind, name } => cmd_ecs::describe(&g, &kind, &name),
        Command::Logs {
            service,
            follow,
            since,
        } => cmd_ecs::logs(&g, &service, follow, since),
        Command::Scale { service, count } => cmd_ecs::scale(&g, &service, count),
        Command::StopTask { task, reason } => cmd_ecs::stop_task(&g, &task, reason),
        Command::TaskDefinitions { family } => cmd_ecs::task_definitions(&g, family),
        Command::Events { service, limit } => cmd_ecs::events(&g, &service, limit),
        Command::Deploy {
            service,
            image,
            container,
            env,
            revision,
            force,
            wait,
            timeout,
        } => cmd_deploy::deploy(
            &g,
            cmd_deploy::DeployArgs {
                service,
                image,
                container,
                revision,
                env,
                force,
                wait,
                timeout,
            },
        ),
        Command::Rollback {
            service,
            to,
            wait,
            timeout,
        } => cmd_deploy::rollback(&g, &service, to, wait, timeout),
        Command::Deployments { service } => cmd_deploy::deployments(&g, &service),
        Command::Auth(c) => cmd_auth::run(&g, c),
        Command::Audit {
            user,
            action,
            since,
            limit,
        } => cmd_auth::audit(&g, user, action, since, limit),
    }
}
