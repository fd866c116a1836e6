//! `publisher serve`: the control-plane service (`flags_serve`). Settings come from
//! `--config serve.yaml`, overridden by `FLAGS_SERVE_*` variables and then by flags, so
//! `publisher serve --listen 127.0.0.1:8080 --store DIR --flags DIR --tokens FILE` needs no file.
//! Logs are JSON lines on stderr (`RUST_LOG` filters, default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use flags_serve::config::{Overrides, ServeConfig};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML configuration (see examples/serve.yaml); flags and env variables override it.
    #[arg(long, env = "FLAGS_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address.
    #[arg(long, env = "FLAGS_SERVE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The store: a directory or `s3://bucket/prefix`.
    #[arg(long, env = "FLAGS_SERVE_STORE")]
    pub store: Option<String>,
    /// The flags repository's checkout that `push` compiles.
    #[arg(long, env = "FLAGS_SERVE_FLAGS")]
    pub flags: Option<PathBuf>,
    /// The token file (YAML: name, sha256 of the secret, roles per environment).
    #[arg(long, env = "FLAGS_SERVE_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// CDN to purge after a publish (as `push --purge`).
    #[arg(long, env = "FLAGS_PURGE")]
    pub purge: Option<String>,
    /// An environment to serve (repeatable); default: those of the config, else of the token file.
    #[arg(long = "env")]
    pub environments: Vec<String>,
    /// An older version's telemetry file (JSON) to import into the store once at startup
    /// (renamed to FILE.imported after); telemetry lives in the store.
    #[arg(long, env = "FLAGS_SERVE_TELEMETRY_FILE")]
    pub telemetry_file: Option<PathBuf>,
    /// An older version's approvals file (JSON) to import into the store once at startup
    /// (renamed to FILE.imported after); pending approvals live in the store.
    #[arg(long, env = "FLAGS_SERVE_APPROVALS_FILE")]
    pub approvals_file: Option<PathBuf>,
    /// An edge serving an environment, as ENV=URL (repeatable): the page shows its version.
    #[arg(long = "edge", value_parser = flags_serve::config::parse_edge)]
    pub edges: Vec<(String, String)>,
}

/// Runs until SIGINT/SIGTERM; 0 after a clean shutdown, 1 if it cannot start.
pub fn run(args: Args) -> ExitCode {
    flags_serve::init_logging();
    let overrides = Overrides {
        listen: args.listen,
        store: args.store,
        flags: args.flags,
        tokens: args.tokens,
        purge: args.purge,
        environments: args.environments,
        telemetry_file: args.telemetry_file,
        approvals_file: args.approvals_file,
        edges: args.edges,
    };
    let config = match ServeConfig::load(args.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flags_serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
