//! `publisher token --sub ID [--claim NAME=VALUE]... [--claim-json NAME=JSON]... [--ttl 24h]`:
//! prints one HS256 identity token signed with the secret in `--secret-env` (default
//! `IDENTITY_SECRET`). The secret is read from the environment, never from the command line,
//! where `ps` and shell history would show it.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flags_compile::token::{build_claims, mint, parse_json_claim, parse_string_claim};
use serde_json::Value;

/// Arguments of `token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the environment variable holding the HMAC secret (the worker's identity secret).
    #[arg(long, default_value = "IDENTITY_SECRET", value_name = "VAR")]
    pub secret_env: String,
    /// The subject: the edge uses it as the OpenFeature targeting key.
    #[arg(long)]
    pub sub: String,
    /// A signed string attribute, e.g. `--claim plan=premium` (repeatable).
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_string_claim)]
    pub claims: Vec<(String, Value)>,
    /// A signed attribute whose value is JSON, e.g. `--claim-json internal=true` (repeatable).
    #[arg(long = "claim-json", value_name = "NAME=JSON", value_parser = parse_json_claim)]
    pub json_claims: Vec<(String, Value)>,
    /// How long the token stays valid, e.g. `30m`, `24h`, `7days`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// Exit 0 with the token on stdout; 1 when the secret is missing or a claim is refused.
pub fn run(args: Args) -> ExitCode {
    let Ok(secret) = std::env::var(&args.secret_env) else {
        eprintln!(
            "token: environment variable {} (the identity secret) is not set",
            args.secret_env
        );
        return ExitCode::FAILURE;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let extra = args.claims.into_iter().chain(args.json_claims);
    match build_claims(&args.sub, extra, now, args.ttl)
        .and_then(|claims| mint(secret.as_bytes(), &claims))
    {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("token: {e}");
            ExitCode::FAILURE
        }
    }
}
