//! `publisher build [DIR | --flags DIR] --env ENV -o FILE`: compile one environment and write
//! the gzipped blob (version 0: a local build, never pushed).

use std::path::PathBuf;
use std::process::ExitCode;

use flags_compile::CompileOptions;
use flags_compile::blob_file::{Provenance, encode_gzip, seal};

use super::{FlagsDir, compile_or_report, plural};

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: FlagsDir,
    /// Environment to compile (required: a blob is for exactly one environment).
    #[arg(long)]
    pub env: String,
    /// Where to write the gzipped blob.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Author recorded in the header (default: `git config user.name`).
    #[arg(long)]
    pub author: Option<String>,
}

/// Exit 0 when written, 1 on compile errors or I/O failure.
pub fn run(args: Args) -> ExitCode {
    let dir = args.flags.path();
    let Some(compiled) = compile_or_report(dir, &CompileOptions::new(&args.env), "build", "")
    else {
        return ExitCode::FAILURE;
    };
    let flags = compiled.body.flags.len();
    let provenance = Provenance::detect(dir, args.author.as_deref());
    let blob = seal(compiled.body, &args.env, 0, None, &provenance);
    let bytes = match encode_gzip(&blob) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("build failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&args.output, &bytes) {
        eprintln!("build failed: cannot write {}: {e}", args.output.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {}: {} for {}, {} bytes gzipped, {}",
        args.output.display(),
        plural(flags, "flag"),
        args.env,
        bytes.len(),
        blob.header.content_hash
    );
    ExitCode::SUCCESS
}
