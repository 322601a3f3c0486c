//! A thin `berth proxy` stand-in until the CLI wires it: `standalone --config proxy.json`
//! (or `--control-plane URL`, `--state-dir DIR`, `--access-log FILE`, `--id ID`). Stops on Ctrl-C.

use berth_proxy::{run, runtime, ProxyOptions};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = ProxyOptions {
        proxy_id: "standalone".into(),
        ..ProxyOptions::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => opts.config_file = Some(PathBuf::from(value)),
            "--control-plane" => opts.control_plane = Some(value),
            "--state-dir" => opts.state_dir = Some(PathBuf::from(value)),
            "--access-log" => opts.access_log = Some(PathBuf::from(value)),
            "--id" => opts.proxy_id = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    runtime()?.block_on(run(opts, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(())
}
